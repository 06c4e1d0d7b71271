"""What a scenario reads on a live page, field by field: the specialist's check before a run.

``robots scenario probe`` opens a robot's pages in the real browser and, for every field of
the scenario, shows the selector, what the page showed there and the typed value, or the
exact reason it cannot be read (the same words a hand-over would carry). A robot package
offers ``probe.py`` with ``probe(scenario, session, workspace, item=…, url=…)`` returning
``ProbeTable``s; the helpers here read a page or a list through the robot's own readers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from playwright.async_api import Page

from robots.config import ListSpec
from robots.engine.fields import LABELS, READ_JS, FieldReader, UnreadableField, label_key
from robots.engine.pages import PAGER_JS, ROWS_JS, page_url

SHOWN = 80


@dataclass(frozen=True)
class ProbeRow:
    field: str
    selector: str
    shown: str  # what the page had there ("" when nothing matched)
    label: str = ""  # the label found beside the value (with " ≠ expected" when it differs)
    value: Any = None
    error: str = ""  # why the value cannot be read (the hand-over's words)
    matched: bool = True
    row: int = 0  # which list row (0: a page's field)

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass
class ProbeTable:
    title: str
    url: str
    rows: list[ProbeRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures outside the rows

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(r.failed for r in self.rows)


def probe_values(reader: FieldReader, raw: Mapping[str, Any]) -> list[ProbeRow]:
    """Every field of ``reader`` read from ``raw`` (``FieldReader.probe_specs``: with the
    label beside each value) on its own, so one failure hides none."""
    rows: list[ProbeRow] = []
    for name, f in reader.fields.items():
        found = raw.get(name) or []
        shown = " | ".join(" ".join((t or "").split()) for t in found)[:SHOWN]
        spec = f.where + (f" @{f.attribute}" if f.attribute else "")
        labels = raw.get(LABELS + name)
        label = " | ".join(" ".join(t.split()) if t else "（无）" for t in labels or [])[:SHOWN]
        if (
            f.label
            and labels is not None
            and any(t is None or label_key(t) != label_key(f.label) for t in labels)
        ):
            label = f"{label or '（无）'} ≠ {f.label}"
        try:
            value = f.value(found, reader.clock, labels if f.label else None)
        except UnreadableField as exc:
            problem = exc.problem or str(exc)  # the row names the field and selector
            rows.append(ProbeRow(name, spec, shown, label, error=problem, matched=bool(found)))
            continue
        rows.append(ProbeRow(name, spec, shown, label, value, matched=bool(found)))
    return rows


async def probe_page(page: Page, reader: FieldReader, title: str) -> ProbeTable:
    """The fields of the page ``page`` shows now."""
    raw = await page.evaluate(READ_JS, reader.probe_specs())
    return ProbeTable(title, page.url, probe_values(reader, raw))


async def probe_list(
    page: Page,
    spec: ListSpec,
    reader: FieldReader,
    *,
    url: str,
    goto: Callable[[str], Awaitable[None]],
    rows: int = 5,
) -> tuple[list[ProbeTable], list[dict[str, Any]]]:
    """The first ``rows`` rows of the list's first page, each read field by field, and
    what the page offers for more rows; also the raw rows (to pick an item to open)."""
    await goto(url)
    raw_rows: list[dict[str, Any]] = await page.evaluate(ROWS_JS, [spec.row, reader.probe_specs()])
    head = ProbeTable(f"list: {len(raw_rows)} rows of {spec.row!r} on the first page", page.url)
    pager = spec.next_page or spec.next_button or spec.load_more
    if pager:
        found = await page.evaluate(PAGER_JS, pager)
        head.notes.append(
            f"more rows: {pager!r} " + (f"found ({found})" if found else "not usable on this page")
        )
    if not raw_rows:
        empty = bool(spec.empty) and await page.evaluate(
            "(s) => document.querySelector(s) !== null", spec.empty
        )
        if empty:
            head.notes.append(f"the list is empty: its marker {spec.empty!r} is shown")
        else:
            head.problems.append(
                f"list.row {spec.row!r} matched nothing, and "
                + (
                    f"the empty marker {spec.empty!r} is not there"
                    if spec.empty
                    else "the scenario names no list.empty marker"
                )
            )
    tables = [head]
    if raw_rows:
        shown = ProbeTable(f"list rows 1-{min(rows, len(raw_rows))}", page.url)
        for i, raw in enumerate(raw_rows[:rows], 1):
            shown.rows += [replace(r, row=i) for r in probe_values(reader, raw)]
        tables.append(shown)
    return tables, raw_rows


async def probe_list_and_page(
    scenario: Any,
    session: Any,
    credential: Any,
    *,
    item: str | None = None,
    url: str | None = None,
    list_kinds: Mapping[str, Any],
    page_kinds: Mapping[str, Any],
    key: str,
    list_values: Callable[[Any], Mapping[str, str]] | None = None,
    what: str = "",
) -> list[ProbeTable]:
    """The probe of a robot whose scenario has ``login``, a ``list`` (``ListSpec``, its
    path filled with what ``list_values`` gives for the scenario) and a ``detail``
    (``PageSpec``, its path filled with the row field ``key``): the list's first rows, then
    the page of ``--item`` (or ``--url``, or the first row's), titled ``what`` and the item."""
    from robots.runtime.browser import LoginForm, goto
    from robots.runtime.clock import ShopClock

    base = str(scenario.shop.base_url)
    await session.login(LoginForm.at(base, scenario.login), credential)
    page = await (await session.new_context()).new_page()
    clock = ShopClock(scenario.shop.timezone)

    async def open_(u: str) -> None:
        await goto(page, u, login_path=scenario.login.path)

    tables: list[ProbeTable] = []
    if url is None and item is None:
        lp = scenario.list
        rows = FieldReader(
            lp.row_fields, list_kinds, clock, label_selector=lp.label_selector, name="list"
        )
        # ``list_values`` are the scenario's own words for the path (a status tab): as written
        path = lp.path.format(**list_values(scenario)) if list_values else lp.path
        listed, _ = await probe_list(page, lp, rows, url=page_url(base, path), goto=open_)
        tables += listed
        found = [
            r.value
            for t in listed[1:]
            for r in t.rows
            if r.field == key and not r.failed and r.value
        ]
        if not found:
            return tables
        item = str(found[0])
    detail = scenario.detail
    await open_(url or page_url(base, detail.path, **{key: item}))
    reader = FieldReader.of(detail, page_kinds, clock, name="detail")
    tables.append(await probe_page(page, reader, f"{what or key} {item or ''}".strip()))
    return tables
