"""The refund pages of a seller back office, driven through Playwright.

Where things are on the page comes from the scenario file; this module only knows the
flow (list → detail → approve → confirm → verify) and how to read values. No business rules
live here: what to do with a refund is ``policy.decide``'s call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

from playwright.async_api import Page

from robots.engine.fields import READ_JS, FieldReader, UnreadableField
from robots.engine.pages import perform, read_list, read_rows, tick_rows
from robots.errors import PageError, ScenarioUnreadable
from robots.refunds.fields import FIELDS, ROW_FIELDS
from robots.refunds.model import (
    ListedRefund,
    RefundRequest,
    WarehouseReceipt,
)
from robots.refunds.scenario import RefundScenario
from robots.runtime.browser import LoginForm, goto
from robots.runtime.clock import ShopClock

IDENTITY = ["refund_id", "status", "version"]  # enough to verify an action: nothing else


def parse_refund(v: dict[str, Any]) -> RefundRequest:
    """A ``RefundRequest`` from the typed values of a detail page (``FieldReader.read``)."""
    receipt = None
    if v["receipt"]:
        receipt = WarehouseReceipt(v["receipt_waybill"], v["receipt_sku"], v["receipt_quantity"])
    return RefundRequest(
        **{
            name: v[name]
            for name in RefundRequest.__dataclass_fields__
            if name not in ("receipt", "return_sid")
        },
        return_sid=v["return_sid"] or "",
        receipt=receipt,
    )


@dataclass(frozen=True)
class RecordState:
    """What an action is verified by: the record's identity, status and version."""

    refund_id: str
    status: str
    version: str

    @property
    def fingerprint(self) -> str:
        return f"{self.status}/{self.version}"


class RefundBackOffice:
    """The refund list and detail pages of one shop, as its scenario describes them."""

    def __init__(
        self,
        scenario: RefundScenario,
        clock: ShopClock | None = None,
        *,
        tally: Callable[[str], None] | None = None,
    ) -> None:
        """``tally``: the run's count, told of every page and row read and every field that
        could not be read (the run's field health)."""
        self.s = scenario
        self.clock = clock or ShopClock(scenario.shop.timezone)
        self.base = str(scenario.shop.base_url)
        d, lp = scenario.detail, scenario.list
        self.reader = FieldReader.of(d, FIELDS, self.clock, name="detail", tally=tally)
        self.row_reader = FieldReader(
            lp.row_fields,
            ROW_FIELDS,
            self.clock,
            label_selector=lp.label_selector,
            name="list",
            tally=tally,
        )

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    def detail_url(self, refund_id: str) -> str:
        return self.url(self.s.detail.path.format(refund_id=refund_id))

    @property
    def login_form(self) -> LoginForm:
        return LoginForm.at(self.base, self.s.login)

    async def list_refunds(
        self, page: Page, value: str | None, statuses: tuple[str, ...] = ()
    ) -> list[ListedRefund]:
        """Every refund the list shows, through its pager to the end: with ``{status}`` in
        the path, the list of ``value`` (``statuses``: the statuses it must show; a row in
        another one stops the run, as the path did not filter); else the one list. A row
        whose status cannot be read is listed with its problem: it goes to a person, never
        dropped as "handled elsewhere"."""
        lp = self.s.list
        url = self.url(lp.path.format(status=value) if value is not None else lp.path)
        listed = await read_list(
            page,
            lp,
            self.row_reader,
            url=url,
            goto=lambda u: goto(page, u, login_path=self.s.login.path),
        )
        # the status a row is in when it shows none: the one its list was asked for
        asked = statuses[0] if value is not None and len(statuses) == 1 else None
        found: list[ListedRefund] = []
        for raw in listed.rows:
            try:
                refund_id = self.row_reader.read(raw, ["refund_id"])["refund_id"]
            except UnreadableField as exc:
                raise PageError(f"a row of the list at {url}: {exc}", url=url) from None
            try:
                values = self.row_reader.read(raw)
            except UnreadableField as exc:
                found.append(ListedRefund(refund_id, "", asked or "UNREADABLE", exc))
                continue
            status = values.get("status") or asked or ""
            if value is not None and status not in statuses:
                raise ScenarioUnreadable(
                    f"the list at {url} (list.path for {'/'.join(statuses)}) shows refund "
                    f"{refund_id} as {status}: the path does not filter by status; fix "
                    "list.path or list.status_values (robots scenario probe shows the list)"
                )
            found.append(ListedRefund(refund_id, values.get("version") or "", status))
        return found

    async def read(self, page: Page, refund_id: str) -> RefundRequest:
        """Open the refund's page and read the live record."""
        url = self.detail_url(refund_id)
        await goto(page, url, login_path=self.s.login.path)
        return await self.read_open_page(page, refund_id)

    async def read_open_page(self, page: Page, refund_id: str) -> RefundRequest:
        raw = await page.evaluate(READ_JS, self.reader.js_specs)
        self._check_identity(raw, page.url, refund_id)
        return self.parse(raw)

    def parse(self, raw: dict[str, Any]) -> RefundRequest:
        """Every field typed, failing closed (``UnreadableField``); the warehouse receipt's
        fields are required when the page says there is a receipt."""
        values = self.reader.read(raw)
        if values["receipt"]:
            for name in ("receipt_waybill", "receipt_sku", "receipt_quantity"):
                if values[name] is None:
                    raise self.reader.unreadable(name, "", "页面显示已入库，但没有入库明细", values)
        return parse_refund(values)

    def _check_identity(self, raw: dict[str, Any], url: str, refund_id: str) -> None:
        """Not the refund's page at all (an error page, another refund): a system exception,
        retried. Everything else the page shows is read fail-closed."""
        try:
            shown = self.reader.read(raw, ["refund_id"])["refund_id"]
        except UnreadableField as exc:
            raise PageError(f"refund page {url}: {exc}", url=url, item_id=refund_id) from None
        if shown != refund_id:
            raise PageError(
                f"asked for refund {refund_id}, the page shows {shown}", url=url, item_id=refund_id
            )

    async def batch_approve(
        self, page: Page, refunds: list[RefundRequest]
    ) -> dict[str, RecordState]:
        """批量同意 of ``refunds`` as ``[batch_approve]`` declares it: open the list of exactly
        these refunds, tick each row still showing the version the robot decided on (a row
        showing another version, or none, stays unticked: that refund changed since), do the
        steps, and return what the rows then show of each refund, by refund id. Refunds not
        ticked are absent from the answer."""
        batch = self.s.batch_approve
        assert batch is not None, "the scenario declares no batch_approve"
        decided = {r.refund_id: r.version for r in refunds}
        url = self.url(batch.path.format(ids=batch.separator.join(quote(i) for i in decided)))
        await goto(page, url, login_path=self.s.login.path)
        picks = [
            i
            for i, state in enumerate(
                self._row_states(await read_rows(page, self.s.list, self.row_reader))
            )
            if state is not None and decided.get(state.refund_id) == state.version
        ]
        if not picks:
            return {}
        ticked = await tick_rows(page, self.s.list.row, batch.pick, picks)
        if ticked != len(picks):
            raise PageError(
                f"ticked {ticked} of {len(picks)} rows with batch_approve.pick {batch.pick!r}",
                url=page.url,
            )
        await perform(
            page,
            batch.action,
            what=f"batch approving {len(picks)} refunds",
            item_id=",".join(decided),
            login_path=self.s.login.path,
        )
        if batch.action.reread:
            await goto(page, url, login_path=self.s.login.path)
        shown = self._row_states(await read_rows(page, self.s.list, self.row_reader))
        return {s.refund_id: s for s in shown if s is not None and s.refund_id in decided}

    def _row_states(self, rows: list[dict[str, Any]]) -> list[RecordState | None]:
        """Each list row as a record state; None for a row that cannot be read whole."""
        states: list[RecordState | None] = []
        for raw in rows:
            try:
                v = self.row_reader.read(raw)
            except UnreadableField:
                states.append(None)
                continue
            version, status = v.get("version"), v.get("status")
            states.append(
                RecordState(v["refund_id"], status, version) if version and status else None
            )
        return states

    async def approve(self, page: Page, refund: RefundRequest) -> RecordState:
        """Do the scenario's approve steps on the page already showing ``refund`` and return
        what the page then shows of the record: its identity, status and version, nothing
        else (a shop that hides other fields on finished refunds still verifies).

        The shop checks the record's version server-side; a refusal whose text says the
        record changed becomes ``StaleRecord``, whatever the HTTP status.
        """
        action = self.s.detail.approve_action
        identity = {n: self.reader.js_specs[n] for n in IDENTITY}
        done = await perform(
            page,
            action,
            what=f"approving {refund.refund_id}",
            item_id=refund.refund_id,
            login_path=self.s.login.path,
            then_read=None if action.reread else identity,
        )
        raw = done.read
        if action.reread:
            await goto(page, self.detail_url(refund.refund_id), login_path=self.s.login.path)
        if raw is None:
            raw = await page.evaluate(READ_JS, identity)
        self._check_identity(raw, page.url, refund.refund_id)
        values = self.reader.read(raw, IDENTITY)
        return RecordState(values["refund_id"], values["status"], values["version"])
