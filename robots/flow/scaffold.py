"""`robots flow new`: a flow file started from a live list page.

The page is opened (logged in as an existing target's scenario logs in) and its list found:
the table with the most data rows, else the most repeated element with data attributes. The
file gets the list as its ``[source]`` (the rows' ``data-*`` attributes and the table's
columns by header as fields, the pager when the page has a ``rel=next`` link), the first
field as the item key, a ``[page]`` to fill in, and one rule that records every item: a
file that passes `robots config check` and runs read-only, for the specialist to edit.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from robots.engine.pages import page_url

# the list on the page, found as a person would point at it (tables first)
FIND_JS = r"""
() => {
  const cls = (e) => [...e.classList].filter((c) => /^[A-Za-z_][\w-]*$/.test(c));
  const tables = [...document.querySelectorAll("table")].map((t) => {
    const rows = [...t.querySelectorAll("tbody tr")]
      .filter((r) => r.querySelectorAll("td").length > 1);
    return { t, rows };
  }).filter((x) => x.rows.length > 0).sort((a, b) => b.rows.length - a.rows.length);
  let rows = [], row = "", headers = [], labelSelector = "";
  if (tables.length) {
    const { t, rows: found } = tables[0];
    rows = found;
    const shared = cls(rows[0]).filter((c) => rows.every((r) => r.classList.contains(c)));
    const table = t.id ? `#${t.id}` : "table";
    row = shared.length ? `tr.${shared[0]}` : `${table} tbody tr`;
    headers = [...t.querySelectorAll("thead th, tr:first-child th")]
      .map((h) => h.textContent.trim());
    labelSelector = headers.length ? "th" : "";
  } else {
    const counts = new Map();
    for (const e of document.querySelectorAll("body *")) {
      if (![...e.attributes].some((a) => a.name.startsWith("data-"))) continue;
      for (const c of cls(e)) {
        const sel = `${e.tagName.toLowerCase()}.${c}`;
        counts.set(sel, (counts.get(sel) || 0) + 1);
      }
    }
    const best = [...counts.entries()].filter(([, n]) => n >= 2).sort((a, b) => b[1] - a[1])[0];
    if (best) { row = best[0]; rows = [...document.querySelectorAll(row)]; }
  }
  if (!rows.length) return null;
  const data = [...rows[0].attributes].filter((a) => a.name.startsWith("data-")).map((a) => a.name);
  const next = document.querySelector("a[rel=next]") ? "a[rel=next]" : "";
  return { row, rows: rows.length, data, headers, labelSelector, next };
}
"""


def field_name(text: str, taken: set[str]) -> str:
    """A CEL-usable name (letters, digits, _) for a data attribute or a column."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", text.removeprefix("data-")).strip("_").lower()
    if not name or not name[0].isalpha():
        name = f"col_{len(taken) + 1}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def flow_text(title: str, list_url: str, found: dict[str, Any], shop: str, login: str) -> str:
    """The flow file for the list ``found`` (``FIND_JS``) at ``list_url``; ``shop`` and
    ``login``: the TOML of those tables, from the scenario the page was logged in with."""
    parts = urlsplit(list_url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    taken: set[str] = set()
    fields = [
        (field_name(a, taken), f'{{ selector = ":scope", attribute = {q(a)} }}')
        for a in found["data"]
    ]
    fields += [
        (
            field_name(h if re.search(r"[A-Za-z]", h) else f"col_{i}", taken),
            # the row's i-th cell, read only while its column's header says h
            f'{{ selector = ":scope > :nth-child({i})", label = {q(h)}, required = false }}',
        )
        for i, h in enumerate(found["headers"], 1)
        if h
    ]
    key = fields[0][0]
    lines = [
        f"# {title}: a flow started by `robots flow new` from {list_url}",
        f"# ({found['rows']} rows there). Edit it, then: robots config check; robots scenario",
        "# probe; robots run flow. docs/flows.md explains each part.",
        "",
        f"title = {q(title)}",
        "",
        shop.rstrip(),
        "",
        login.rstrip(),
        "",
        "[source]",
        f"path = {q(path)}",
        f"row = {q(found['row'])}",
        '# empty = "…"                  # what the page shows when there are no rows',
    ]
    if found["next"]:
        lines.append(f"next_page = {q(found['next'])}")
    else:
        lines.append('# next_page = "…"              # how more rows are reached, if they are')
    if found["labelSelector"]:
        lines.append(f"label_selector = {q(found['labelSelector'])}")
    lines += [f'key = "{{{key}}}@{{today}}"        # one item per {key} a day', ""]
    lines += [f"fields.{name} = {spec}" for name, spec in fields]
    lines += [
        "",
        "# each item's page, filled from its row; read fields there with selectors and labels",
        "# [page]",
        f'# path = "/…/{{{key}}}"',
        '# label_selector = "dt"',
        "# [page.fields]",
        '# state = { selector = "dd.state", label = "状态" }',
        "",
        "# the first rule that holds decides: hand_over (to a person), record or skip",
        "[[rules]]",
        'when = "true"',
        "record = true",
        "",
    ]
    return "\n".join(lines)


def q(text: str) -> str:
    """A TOML basic string."""
    return json.dumps(text, ensure_ascii=False)


def table_text(name: str, values: dict[str, Any]) -> str:
    """``[name]`` with its plain values (strings, numbers, booleans), as TOML."""
    lines = [f"[{name}]"]
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value}")
        elif isinstance(value, str):
            lines.append(f"{key} = {q(value)}")
    return "\n".join(lines)


def list_address(base: str, list_url: str) -> str:
    """``list_url`` as given, or on the shop's address when it is a path."""
    return list_url if urlsplit(list_url).scheme else page_url(base, list_url)
