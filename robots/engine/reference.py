"""The field reference: every value a robot reads, written from the robot's own field tables
(``FieldKind``: type, whether required, what it means exactly, which rules read it) with an
example from each scenario that points it at a shop. `robots scenario fields` prints it;
docs/fields.md is the same text (a test keeps the two equal)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from robots.engine.fields import FieldKind

PREAMBLE = """\
# Scenario fields

Every value a robot reads off a page, what it is exactly and which rules read it, with the
spec each demo scenario gives it. Written by `robots scenario fields --markdown` from the
robots' own field tables: a field a robot gains is described here, or a test fails.

A field spec (`name = { ... }` in its table) says where the value is and how to read it:

- `selector`: the element's CSS selector (in a list: inside the row; `:scope` is the row).
- `label`: the words a person reads beside the value (`平台介入`). With a `selector`, the
  value must stand beside this label, or it is unreadable: a positional selector one row off
  reads the neighbouring row, whose label differs. Without a `selector`, the value is found
  by its label (the element after it). Compared with width, case, spaces and a trailing
  colon folded.
- `label_selector`: which elements are labels (`dt`, `th`, `.label`); the one in `[detail]`,
  `[list]` or `[search]` serves the table's fields that name none. With it, the label is the
  nearest such element before the value, walking up from it, or its table column's header;
  without it, the nearest text before the value.
- `attribute`: read this attribute instead of the text.
- `regex`: cut the value out of the text (group `value`, else the first group).
- `map`: the shop's words onto the robot's values (`"待商家处理" = "WAIT_SELLER_AGREE"`);
  text outside the map is unreadable; every target must be a value the robot knows
  (`robots config check` names the bad one).
- `true` / `false`: the words of a yes/no field. A yes/no field a rule reads must name its
  words or its label: the default words (是/否/有/无/1/0/yes/no) would read a neighbouring
  row's 无 as "no".
- `none`: texts that mean "no value" (—, 暂无, 未签收), read as empty.
- `formats`: datetime formats (strptime); each must read back the date it writes
  (`%m月%d日` without a year does not).
- `type`, `required`, `default`, `all`: the robot decides a field's type and whether it is
  required; `default` stands for an empty value; `all` reads every match.

Anything a field cannot read (no element, a label missing or different, text outside its
words or map, a value that does not parse) sends the item to a person naming the field, the
selector, the label and what the page showed; it never becomes a value. A run counts, per
field, how often it could not be read: the run summary, the workbook's 汇总 and the alert
show every such field, and above `[early_stop] field_share` of its reads the run exits 1.
"""


def inline(value: Any) -> str:
    """A TOML value as a scenario writes it on one line."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else inline(key)


def table_at(data: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The TOML table at a dotted ``path`` (``detail.fields``), or an empty one."""
    found: Any = data
    for part in path.split("."):
        found = found.get(part, {}) if isinstance(found, Mapping) else {}
    return found if isinstance(found, Mapping) else {}


def reference(
    robot: str,
    title: str,
    tables: Mapping[str, Mapping[str, FieldKind]],
    examples: Mapping[str, Mapping[str, Any]],
) -> str:
    """One robot's section: each table, each field with its type, whether required, what it
    means, the rules that read it, and its spec in each example scenario (``examples``: a
    name such as a target's, to the scenario file's data)."""
    lines = [f"## {title} · `{robot}`", ""]
    if not tables:  # a flow: its file declares and types its own fields
        lines += ["Its fields are declared, typed, in each of its files ([Flows](flows.md)).", ""]
    for path, kinds in tables.items():
        lines += [f"### `[{path}]`", ""]
        for name, kind in kinds.items():
            required = "required" if kind.required else "optional"
            choices = f"; one of {', '.join(kind.choices)}" if kind.choices else ""
            lines += [f"#### `{name}` — {kind.type}, {required}{choices}", "", kind.means, ""]
            if kind.rules:
                lines += [f"Rules that read it: {', '.join(kind.rules)}.", ""]
            shown = [(where, table_at(data, path).get(name)) for where, data in examples.items()]
            shown = [(where, spec) for where, spec in shown if spec is not None]
            for where, spec in shown:
                lines.append(f"- {where}: `{name} = {inline(spec)}`")
            if shown:
                lines.append("")
    return "\n".join(lines)
