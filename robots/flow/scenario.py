"""A flow file (``scenarios/<shop>/flows/<name>.toml``): a job declared in TOML that the engine
runs like a robot (``robots run flow``).

- ``title``: the job as ops read it (物流异常);
- ``[shop]``, ``[login]``: as in every scenario;
- ``[source]``: where the items come from, a list page in the robots' list vocabulary (rows,
  fields inside each row, pager, empty marker), and ``key``, the item key template from its
  row fields (``{today}``: the shop's day, for a daily check);
- ``[page]``: each item's page (``path`` filled from its row) and the fields read on it, each
  typed (``type``: text, int, money, bool, datetime) and read fail-closed;
- ``[[rules]]``: the decision in CEL (``robots.flow.rules``).

A field's ``map`` names every value it may read: a word the map does not know is unreadable,
never a value a rule could take for another. ``problems()`` is what `robots config check`
says about the file, all at once.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from pydantic import Field

from robots import config
from robots.engine.fields import FieldKind, field_problems
from robots.flow.rules import Rules, RuleSpec

Problems = list[tuple[str, str]]
KEY_VALUES = ("today",)  # what a key template may name besides the row's fields


class FlowSource(config.ListSpec):
    """The list the items come from, and each item's key."""

    key: str = Field(min_length=1)  # "{order_id}@{today}"


class FlowFile(config.Strict):
    title: str = Field(min_length=1)
    shop: config.Shop
    login: config.LoginPage | None = None
    source: FlowSource
    page: config.PageSpec | None = None
    rules: list[RuleSpec] = Field(min_length=1)

    @property
    def row_kinds(self) -> dict[str, FieldKind]:
        return kinds_of(self.source.fields)

    @property
    def page_kinds(self) -> dict[str, FieldKind]:
        return kinds_of(self.page.fields) if self.page is not None else {}

    def problems(self) -> Problems:
        found = field_problems(self.source.fields, self.row_kinds, key="source.fields")
        if self.page is not None:
            found += field_problems(self.page.fields, self.page_kinds, key="page.fields")
        found += self._key_problems()
        if self.page is not None:
            try:
                unknown = sorted(set(path_names(self.page.path)) - set(self.source.fields))
            except ValueError as exc:
                return [*found, ("page.path", f"not a path template: {exc}")]
            if unknown:
                found.append(
                    ("page.path", f"names {', '.join(unknown)}, which the source rows do not have")
                )
        types = {
            "page": {n: k.type for n, k in self.page_kinds.items()},
            "row": {n: k.type for n, k in self.row_kinds.items()},
        }
        return found + Rules(self.rules).check(types, set())

    def _key_problems(self) -> Problems:
        known = set(self.source.fields) | set(KEY_VALUES)
        try:
            named = [n for _, n, _, _ in string.Formatter().parse(self.source.key) if n]
        except ValueError as exc:
            return [("source.key", f"not a key template: {exc}")]
        if not named:
            return [("source.key", "names no field: two items would share one key")]
        unknown = sorted(set(named) - known)
        if unknown:
            say = ", ".join(sorted(known))
            return [("source.key", f"names {', '.join(unknown)}; it may name {say}")]
        return []


def kinds_of(specs: dict[str, config.FieldSpec]) -> dict[str, FieldKind]:
    """What the flow declares of each field: its type, whether it must be read, and (from
    its ``map``) the only values it may read."""
    return {
        name: FieldKind(
            type=spec.type or "text",
            required=True if spec.required is None else spec.required,
            choices=tuple(dict.fromkeys(spec.map.values())) if spec.map else (),
        )
        for name, spec in specs.items()
    }


def path_names(path: str) -> list[str]:
    """The ``{name}`` a page path fills in from an item's row."""
    return [n for _, n, _, _ in string.Formatter().parse(path) if n]


def item_key(flow: FlowFile, name: str, row: dict[str, Any], today: str) -> str:
    """The ledger key of a row's item: the flow's name, then its key template filled in."""
    values = {k: _text(v) for k, v in row.items()}
    return f"{name}:{flow.source.key.format(**values, today=today)}"


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def load(file: Path, *, base_url: str | None = None) -> FlowFile:
    return config.load_scenario_file(FlowFile, file, base_url=base_url)


FIELD_TABLES: dict[str, dict[str, FieldKind]] = {}  # a flow declares its own fields
