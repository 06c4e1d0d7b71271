"""`robots scenario probe` for a flow: its source list's first rows, one item's page field by
field, then each rule on what was read: true, false or why it cannot judge, and which one
decides the item."""

from __future__ import annotations

from typing import Any

from robots.engine.fields import FieldReader
from robots.engine.pages import page_url
from robots.engine.probe import ProbeRow, ProbeTable, probe_list, probe_page
from robots.errors import ConfigError
from robots.flow import words
from robots.flow.rules import Rules
from robots.flow.scenario import FileSource, FlowFile, list_days, path_names
from robots.flow.source import read_rows


async def probe(
    flow: FlowFile,
    session: Any,
    credential: Any,
    *,
    item: str | None = None,
    url: str | None = None,
) -> list[ProbeTable]:
    """``item``: the value of the page path's first ``{name}`` (an order id); ``url``: a page
    to open instead; neither: the first row of the source list."""
    from robots.runtime.browser import LoginForm, goto
    from robots.runtime.clock import ShopClock

    base = str(flow.shop.base_url)
    login_path = flow.login.path if flow.login is not None else "/login"
    if flow.login is not None:
        await session.login(LoginForm.at(base, flow.login), credential)
    page = await (await session.new_context(anonymous=flow.login is None)).new_page()
    clock = ShopClock(flow.shop.timezone)

    async def open_(u: str) -> None:
        await goto(page, u, login_path=login_path)

    tables: list[ProbeTable] = []
    row: dict[str, Any] = {}
    source = flow.source
    if isinstance(source, FileSource):  # its first row, read as a run reads the file
        head = ProbeTable(f"source: {source.file}", "")
        try:
            found = read_rows(
                source.file, source.sheet, source.fields, source.headers, flow.row_kinds, clock
            )
        except ConfigError as exc:
            head.problems.append(str(exc).splitlines()[0])
            found = []
        head.notes.append(f"{len(found)} rows")
        row = found[0] if found else {}
        head.rows = [ProbeRow(n, source.headers[n], str(v), value=v) for n, v in row.items()]
        tables.append(head)
    elif source.path is not None:
        rows = FieldReader.of(source, flow.row_kinds, clock, name="source")
        values = source.listings()[0]  # the first list a run reads
        days = list_days(clock.today())
        listed, _ = await probe_list(
            page, source, rows, url=page_url(base, source.path, **days, **values), goto=open_
        )
        tables += listed
        first = [r for t in listed[1:] for r in t.rows if r.row == 1 and not r.failed]
        row = {**values, **{r.field: r.value for r in first}}
    names = path_names(flow.page.path) if flow.page is not None else []
    if item is not None and names:  # that item, not the first row
        row = {names[0]: item}
    read: dict[str, Any] = {}
    if flow.page is not None and (url is not None or all(n in row for n in names)):
        await open_(url or page_url(base, flow.page.path, **{n: row[n] for n in names}))
        reader = FieldReader.of(flow.page, flow.page_kinds, clock, name="page")
        shown = await probe_page(page, reader, f"page {item or ''}".strip())
        tables.append(shown)
        read = {r.field: r.value for r in shown.rows if not r.failed}
    tables.append(rules_table(flow, read, row, clock.now()))
    return tables


def rules_table(flow: FlowFile, read: dict[str, Any], row: dict[str, Any], now: Any) -> ProbeTable:
    """Each rule on this item, in order, and the one that decides it (the run's decision)."""
    rules = Rules(flow.rules, now.tzinfo)
    found: list[dict[str, str]] = []
    if flow.words is not None:  # what a run finds in the text, as the rules see it
        found = words.hits(
            flow.words, words.matcher(flow.words), {**row, **read}.get(flow.words.text)
        )
    decision = rules.decide(read, row, now, hits=found)
    table = ProbeTable("rules", "")
    for n, (spec, holds) in enumerate(
        zip(flow.rules, rules.results(read, row, now, hits=found), strict=True), 1
    ):
        mark = "  ← decides" if n == decision.rule else ""
        if isinstance(holds, str):
            table.rows.append(ProbeRow(f"rule {n}", spec.when, "", error=f"{holds}{mark}"))
        else:
            shown = "true" if holds else "false"
            table.rows.append(
                ProbeRow(f"rule {n}", spec.when, shown, value=f"{spec.outcome}{mark}")
            )
    if decision.rule == 0:
        table.notes.append(f"no rule holds: {decision.text} ({decision.code})")
    else:
        said = f" {decision.code}: {decision.text}" if decision.code else f" {decision.action}"
        table.notes.append(f"the item ends in {decision.outcome}{said} (rule {decision.rule})")
    return table
