"""The back office's side of returns, through Playwright: look up candidate orders, and read
what a parcel is linked to (the check after every link). Read-only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin

from playwright.async_api import Page

from robots.engine.fields import FieldReader
from robots.engine.pages import ROWS_JS
from robots.errors import PageError, ScenarioUnreadable
from robots.returns.export import parse_items
from robots.returns.fields import ROW_FIELDS
from robots.returns.lookup import Found, Lookup
from robots.returns.matching import Candidate
from robots.returns.scenario import ReturnsScenario
from robots.runtime.browser import LoginForm, goto
from robots.runtime.clock import ShopClock


def naive(t: datetime | None) -> datetime | None:
    """The shop's wall time, as the matcher compares it with the terminal's export."""
    return t.replace(tzinfo=None) if t is not None else None


class ReturnsBackOffice:
    def __init__(
        self, scenario: ReturnsScenario, *, tally: Callable[[str], None] | None = None
    ) -> None:
        """``tally``: the run's count, told of every search row read and every field that
        could not be read in it (the run's field health)."""
        self.scenario = scenario
        self.base = str(scenario.shop.base_url)
        self.login_form = LoginForm.at(self.base, scenario.login)
        clock = ShopClock(scenario.shop.timezone)
        s = scenario.search
        self.row_reader = FieldReader(
            s.row_fields,
            ROW_FIELDS,
            clock,
            label_selector=s.label_selector,
            name="search",
            tally=tally,
        )

    def parcel_url(self, parcel_id: str) -> str:
        return urljoin(self.base, self.scenario.parcel_page.path.format(parcel_id=quote(parcel_id)))

    async def search(self, page: Page, lookup: Lookup) -> Found:
        """Every page of one search (up to ``max_pages``), each row read as a candidate."""
        s = self.scenario.search
        url = urljoin(self.base, lookup.path(s))
        await goto(page, url, login_path=self.scenario.login.path)
        rows: list[Candidate] = []
        for n in range(s.max_pages):
            raw_rows = await page.evaluate(ROWS_JS, [s.row, self.row_reader.js_specs])
            if n == 0 and not raw_rows and s.empty and not await page.query_selector(s.empty):
                raise ScenarioUnreadable(
                    f"the scenario's search.row selector {s.row!r} matched nothing on "
                    f"{page.url}, nor its empty marker search.empty {s.empty!r}; fix the scenario"
                )
            rows += [self._candidate(raw) for raw in raw_rows]
            if s.next_page is None:  # no way to page: a full page may hide more
                return Found(rows, cut=len(raw_rows) >= s.page_rows)
            more = await page.query_selector(s.next_page)
            if more is None:
                return Found(rows)
            if n + 1 == s.max_pages:
                break
            href = await more.get_attribute("href")
            if href:
                await goto(page, urljoin(page.url, href), login_path=self.scenario.login.path)
            else:
                await more.click()
                await page.wait_for_load_state()
        return Found(rows, cut=True)

    def _candidate(self, raw: dict[str, Any]) -> Candidate:
        row = self.row_reader.read(raw)  # UnreadableField: this parcel goes to a person
        try:
            lines = parse_items(row["lines"])
            refunded = parse_items(row["refunded"]) if row["refunded"] else ()
        except ValueError as exc:
            field = self.row_reader.fields["lines"]
            raise field.unreadable(str(raw.get("lines")), str(exc)) from None
        return Candidate(
            order_id=row["order_id"],
            refund_id=row["refund_id"] or "",
            buyer_name=row["buyer_name"] or "",
            buyer_nick=row["buyer_nick"] or "",
            phone=row["phone"] or "",
            district=row["district"] or "",
            lines=lines,
            refunded=refunded,
            return_waybill=row["return_waybill"] or "",
            outbound_waybill=row["outbound_waybill"] or "",
            refund_created_at=naive(row["refund_created_at"]),
            signed_at=naive(row["signed_at"]),
            linked=row["linked"],
        )

    async def linked_to(self, page: Page, parcel_id: str) -> str:
        url = self.parcel_url(parcel_id)
        await goto(page, url, login_path=self.scenario.login.path)
        spec = self.scenario.parcel_page.linked_to
        assert spec.selector is not None  # PositionalFieldSpec: a selector, always
        element = await page.query_selector(spec.selector)
        if element is None:
            raise PageError(f"no link status on the parcel page of {parcel_id}", url=url)
        value = await (
            element.get_attribute(spec.attribute) if spec.attribute else element.text_content()
        )
        return (value or "").strip()
