"""The refund pages of a seller back office, driven through Playwright.

Where things are on the page comes from the scenario file; this module only knows the
flow (list → detail → approve → confirm → verify) and how to read values. No business rules
live here: what to do with a refund is ``policy.decide``'s call.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin

from playwright.async_api import Page

from robots.config import RefundScenario
from robots.errors import PageError, StaleRecord
from robots.refunds.model import ListedRefund, RefundRequest, WarehouseReceipt
from robots.runtime.browser import LoginForm, check_page, goto, press

# one round trip reads every field: [selector, attribute|null] -> text or attribute value
_READ_FIELDS_JS = """
(specs) => {
  const out = {};
  for (const [name, [selector, attribute]] of Object.entries(specs)) {
    const el = document.querySelector(selector);
    out[name] = el === null ? null
      : (attribute ? el.getAttribute(attribute) : el.textContent);
  }
  return out;
}
"""
_READ_ROWS_JS = """
([row, idAttr, versionAttr, statusAttr, next]) => ({
  rows: Array.from(document.querySelectorAll(row)).map(r => [
    r.getAttribute(idAttr), r.getAttribute(versionAttr), r.getAttribute(statusAttr)]),
  next: (document.querySelector(next) || {}).href || null,
})
"""
_TRUE = {"1", "true", "yes", "y", "是"}
_BANNER = "__error_banner__"


class FieldError(PageError):
    """A value on the page could not be read as what the scenario says it is."""

    code = "UNREADABLE_FIELD"


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    return re.sub(r"\s+", " ", value).strip() if isinstance(value, str) else ""


def _decimal(raw: dict[str, Any], name: str) -> Decimal:
    text = _text(raw, name).replace("¥", "").replace("￥", "").replace(",", "")
    try:
        return Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise FieldError(f"field {name!r} is {text!r}, not an amount") from None


def _int(raw: dict[str, Any], name: str) -> int:
    text = _text(raw, name)
    if not re.fullmatch(r"-?\d+", text):
        raise FieldError(f"field {name!r} is {text!r}, not a whole number")
    return int(text)


def _bool(raw: dict[str, Any], name: str) -> bool:
    return _text(raw, name).lower() in _TRUE


def _time(raw: dict[str, Any], name: str, *, optional: bool = False) -> datetime | None:
    text = _text(raw, name)
    if not text and optional:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(f"field {name!r} is {text!r}, not a date and time") from None


def parse_refund(raw: dict[str, Any]) -> RefundRequest:
    """Turn the raw strings read off a detail page into a ``RefundRequest``."""
    receipt = None
    if _bool(raw, "receipt"):
        receipt = WarehouseReceipt(
            _text(raw, "receipt_waybill"), _text(raw, "receipt_sku"), _int(raw, "receipt_quantity")
        )
    created, deadline = _time(raw, "created_at"), _time(raw, "deadline")
    assert created is not None and deadline is not None
    return RefundRequest(
        refund_id=_text(raw, "refund_id"),
        version=_text(raw, "version"),
        status=_text(raw, "status"),
        order_id=_text(raw, "order_id"),
        buyer_nick=_text(raw, "buyer_nick"),
        has_good_return=_bool(raw, "has_good_return"),
        refund_type=_text(raw, "refund_type"),
        refund_fee=_decimal(raw, "refund_fee"),
        payment=_decimal(raw, "payment"),
        refund_sku=_text(raw, "refund_sku"),
        refund_quantity=_int(raw, "refund_quantity"),
        line_sku=_text(raw, "line_sku"),
        line_quantity=_int(raw, "line_quantity"),
        category=_text(raw, "category"),
        reason=_text(raw, "reason"),
        intervention=_bool(raw, "intervention"),
        open_refunds_on_line=_int(raw, "open_refunds_on_line"),
        order_status=_text(raw, "order_status"),
        signed_at=_time(raw, "signed_at", optional=True),
        created_at=created,
        deadline=deadline,
        has_gift=_bool(raw, "has_gift"),
        shared_discount=_bool(raw, "shared_discount"),
        buyer_orders_90d=_int(raw, "buyer_orders_90d"),
        buyer_refunds_90d=_int(raw, "buyer_refunds_90d"),
        buyer_blacklisted=_bool(raw, "buyer_blacklisted"),
        return_sid=_text(raw, "return_sid"),
        receipt=receipt,
    )


class RefundBackOffice:
    """The refund list and detail pages of one shop, as its scenario describes them."""

    def __init__(self, scenario: RefundScenario) -> None:
        self.s = scenario
        self.base = str(scenario.shop.base_url)
        self._specs = {
            name: [f.selector, f.attribute] for name, f in scenario.detail.fields.items()
        }

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    def detail_url(self, refund_id: str) -> str:
        return self.url(self.s.detail.path.format(refund_id=refund_id))

    @property
    def login_form(self) -> LoginForm:
        return LoginForm.at(self.base, self.s.login)

    async def list_refunds(self, page: Page, status: str) -> list[ListedRefund]:
        """Every refund in ``status``, following the pager to the last page."""
        lp = self.s.list
        url: str | None = self.url(lp.path.format(status=status))
        found: list[ListedRefund] = []
        seen_pages: set[str] = set()
        while url and url not in seen_pages:
            seen_pages.add(url)
            await goto(page, url, login_path=self.s.login.path)
            got = await page.evaluate(
                _READ_ROWS_JS,
                [
                    lp.row,
                    lp.refund_id_attribute,
                    lp.version_attribute,
                    lp.status_attribute,
                    lp.next_page,
                ],
            )
            for refund_id, version, row_status in got["rows"]:
                if not refund_id:
                    raise PageError(f"a list row on {url} has no {lp.refund_id_attribute}", url=url)
                found.append(ListedRefund(refund_id, version or "", row_status or status))
            url = got["next"]
        return found

    async def read(self, page: Page, refund_id: str) -> RefundRequest:
        """Open the refund's page and read the live record."""
        url = self.detail_url(refund_id)
        await goto(page, url, login_path=self.s.login.path)
        return await self.read_open_page(page, refund_id)

    async def read_open_page(self, page: Page, refund_id: str) -> RefundRequest:
        raw = await page.evaluate(_READ_FIELDS_JS, self._specs)
        return self._refund_from(raw, page.url, refund_id)

    def _refund_from(self, raw: dict[str, Any], url: str, refund_id: str) -> RefundRequest:
        missing = [n for n in ("refund_id", "status", "version") if not _text(raw, n)]
        if missing:
            raise PageError(
                f"refund page {url} shows no {', '.join(missing)}", url=url, item_id=refund_id
            )
        refund = parse_refund(raw)
        if refund.refund_id != refund_id:
            raise PageError(
                f"asked for refund {refund_id}, the page shows {refund.refund_id}",
                url=url,
                item_id=refund_id,
            )
        return refund

    async def approve(self, page: Page, refund: RefundRequest) -> RefundRequest:
        """Press approve and confirm on the page already showing ``refund``; return the result.

        The shop checks the record's version server-side; a refusal becomes ``StaleRecord``.
        """
        d = self.s.detail
        await press(page, d.approve_button)
        async with page.expect_navigation(wait_until="domcontentloaded") as nav:
            await press(page, d.confirm_button)
        response = await nav.value
        status = response.status if response else 0
        # one round trip: the error banner (if any) and every field of the resulting page
        raw = await page.evaluate(_READ_FIELDS_JS, {**self._specs, _BANNER: [d.error_banner, None]})
        message = _text(raw, _BANNER)
        if message:
            if status == 409:
                raise StaleRecord(
                    f"the shop refused the approval: {message}", item_id=refund.refund_id
                )
            raise PageError(
                f"the shop answered {status} to the approval: {message}",
                url=page.url,
                item_id=refund.refund_id,
            )
        check_page(page, status, page.url, login_path=self.s.login.path)
        return self._refund_from(raw, page.url, refund.refund_id)
