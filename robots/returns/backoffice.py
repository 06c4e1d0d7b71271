"""The back office's side of returns, through Playwright: look up candidate orders, and read
what a parcel is linked to (the check after every link). Read-only."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urljoin

from playwright.async_api import Page

from robots.errors import PageError
from robots.returns.export import parse_items
from robots.returns.matching import Candidate
from robots.returns.scenario import ReturnsScenario
from robots.runtime.browser import LoginForm, goto

_ROWS_JS = """
([row, attributes]) => Array.from(document.querySelectorAll(row), (r) =>
  Object.fromEntries(Object.entries(attributes).map(([k, a]) => [k, r.getAttribute(a) ?? ""])))
"""


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        raise PageError(f"{text!r} is not a date and time") from None


class ReturnsBackOffice:
    def __init__(self, scenario: ReturnsScenario) -> None:
        self.scenario = scenario
        self.base = str(scenario.shop.base_url)
        self.login_form = LoginForm.at(self.base, scenario.login)

    def parcel_url(self, parcel_id: str) -> str:
        return urljoin(self.base, self.scenario.parcel_page.path.format(parcel_id=quote(parcel_id)))

    async def search(self, page: Page, q: str) -> list[Candidate]:
        s = self.scenario.search
        await goto(
            page, urljoin(self.base, s.path.format(q=quote(q))), login_path=self.scenario.login.path
        )
        rows = await page.evaluate(_ROWS_JS, [s.row, s.attributes])
        out = []
        for row in rows:
            try:
                lines = parse_items(row["lines"])
                refunded = parse_items(row["refunded"]) if row["refunded"] else ()
            except ValueError as exc:
                raise PageError(f"order {row['order_id']}: {exc}", url=page.url) from None
            out.append(
                Candidate(
                    order_id=row["order_id"],
                    refund_id=row["refund_id"],
                    buyer_name=row["buyer_name"],
                    buyer_nick=row["buyer_nick"],
                    phone=row["phone"],
                    district=row["district"],
                    lines=lines,
                    refunded=refunded,
                    return_waybill=row["return_waybill"],
                    outbound_waybill=row["outbound_waybill"],
                    refund_created_at=_time(row["refund_created_at"]),
                    signed_at=_time(row["signed_at"]),
                    linked=row["linked"] in ("1", "true", "是"),
                )
            )
        return out

    async def linked_to(self, page: Page, parcel_id: str) -> str:
        url = self.parcel_url(parcel_id)
        await goto(page, url, login_path=self.scenario.login.path)
        spec = self.scenario.parcel_page.linked_to
        element = await page.query_selector(spec.selector)
        if element is None:
            raise PageError(f"no link status on the parcel page of {parcel_id}", url=url)
        value = await (
            element.get_attribute(spec.attribute) if spec.attribute else element.text_content()
        )
        return (value or "").strip()
