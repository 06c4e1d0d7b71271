"""`robots scenario probe` for the refunds robot: the list's first rows, then one refund's
page (``--item``, ``--url`` or the first listed refund), every field read as the robot would."""

from __future__ import annotations

from typing import Any

from robots.engine.probe import ProbeTable, probe_list, probe_page
from robots.refunds.backoffice import RefundBackOffice
from robots.refunds.scenario import RefundScenario
from robots.runtime.browser import BrowserSession, goto


async def probe(
    scenario: RefundScenario,
    session: BrowserSession,
    credential: Any,
    *,
    item: str | None = None,
    url: str | None = None,
) -> list[ProbeTable]:
    bo = RefundBackOffice(scenario)
    await session.login(bo.login_form, credential)
    context = await session.new_context()
    page = await context.new_page()
    login = scenario.login.path

    async def open_(u: str) -> None:
        await goto(page, u, login_path=login)

    tables: list[ProbeTable] = []
    if url is None and item is None:
        lp = scenario.list
        first, _ = lp.lists(scenario.shop.pending_statuses)[0]
        path = lp.path.format(status=first) if first is not None else lp.path
        listed, _ = await probe_list(page, lp, bo.row_reader, url=bo.url(path), goto=open_)
        tables += listed
        ids = [
            r.value
            for t in listed[1:]
            for r in t.rows
            if r.field == "refund_id" and not r.failed and r.value
        ]
        if not ids:
            return tables
        item = ids[0]
    target = url if url is not None else bo.detail_url(item or "")
    await open_(target)
    tables.append(await probe_page(page, bo.reader, f"refund page {item or ''}".strip()))
    return tables
