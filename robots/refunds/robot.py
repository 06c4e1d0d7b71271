"""The refunds robot: list pending refunds, decide each with the policy, approve or hand over.

It stands on the engine (``robots.engine``): the run, each item's lifecycle and the acting
protocol are the engine's, so a crash, kill, dropped connection or restart never pays a
refund twice, never loses one and never overruns the daily cap. This module only says what
a refund is worked like: read the live record, decide, approve.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from loguru import logger
from playwright.async_api import Page

from robots.engine.batch import ActBatch, Queued
from robots.engine.fields import UnreadableField
from robots.engine.item import (
    Acted,
    ActingRules,
    Action,
    Item,
    Verdict,
    closed_elsewhere,
    settle_acting,
)
from robots.engine.pace import Pace
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult, Web
from robots.errors import BusinessException
from robots.ledger import ItemView, State
from robots.refunds.backoffice import RecordState, RefundBackOffice
from robots.refunds.model import ROBOT, ListedRefund, RefundRequest
from robots.refunds.policy import (
    MOVES_MONEY,
    REASONS,
    STATUS_AFTER,
    STATUS_BEFORE,
    Approve,
    HandOver,
    decide,
)
from robots.refunds.report import write_from_ledger, write_run
from robots.refunds.scenario import RefundScenario
from robots.runtime.retry import TEMPORARY


class RefundCount(enum.StrEnum):
    APPROVED = "approved"
    # waiting for a person, then handled in the back office by someone: out of the queue
    CLOSED_ELSEWHERE = "closed_elsewhere"
    IN_BATCH = "approved_in_batch"  # of the approved, those a batch approval carried


# hand-overs that time cures while the refund record stays the same: read again every run
# (the warehouse received the goods; a new day under the daily cap)
RECHECK = frozenset({"RETURN_NOT_RECEIVED", "DAILY_CAP_REACHED"})


def item_key(refund_id: str, stage: str) -> str:
    """One work item per refund per stage: agreeing to a return and paying it are two acts."""
    return f"{refund_id}@{stage}"


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def judge(action: str, live: RefundRequest | RecordState) -> Verdict:
    """Did ``action`` land? The status it produces says yes; the status it needs, no."""
    if live.status == STATUS_AFTER.get(action):
        return Verdict.LANDED
    if live.status == STATUS_BEFORE.get(action):
        return Verdict.NOT_LANDED
    return Verdict.ELSEWHERE


def live_reader(
    bo: RefundBackOffice, web: Web, lane: Lane
) -> Callable[[ItemView], Awaitable[RefundRequest]]:
    """How an item left *acting* is settled: its refund's live record, read with retries."""

    async def read(view: ItemView) -> RefundRequest:
        refund_id = view.item_key.split("@", 1)[0]
        return await web.run.retried(
            f"settling {view.item_key}", lambda: bo.read(lane.page, refund_id)
        )

    return read


ACTING = ActingRules[RefundRequest | RecordState](
    judge=judge, describe=lambda r: r.status, fingerprint=lambda r: r.fingerprint
)


def refund_row(read: Mapping[str, Any], link: str, clock: Any) -> dict[str, Any]:
    """What a workbook row shows of a refund (kept with its item in the ledger), from the
    values read off its page: all of them, or those that did read on a page with a field
    the robot could not read (the hand-over still shows its money and deadline)."""
    row = {"link": link}
    for name, key in (
        ("refund_id", "refund_id"),
        ("order_id", "order_id"),
        ("buyer_nick", "buyer"),
    ):
        if read.get(name):
            row[key] = read[name]
    if read.get("refund_fee") is not None:
        row["amount"] = str(read["refund_fee"])
    if read.get("deadline") is not None:
        row["deadline"] = clock.wall(read["deadline"]).isoformat(timespec="seconds")
    return row


class RefundsRobot(BaseRobot):
    """One run of the refunds robot against one shop."""

    NAME, REASONS = ROBOT, REASONS
    scenario: RefundScenario

    def setup(self) -> None:
        self.bo = RefundBackOffice(self.scenario, self.run.clock, tally=self.run.count)
        self.rules = self.scenario.policy
        self.daily_cap_cents = cents(self.rules.daily_auto_total)
        self.money = Decimal("0")  # approved by this run (the summary line)
        batch = self.scenario.batch_approve
        # 批量同意 where the scenario declares it; a dry run presses nothing, batched or not
        self.batch: ActBatch[RefundRequest, RefundRequest | RecordState] | None = None
        if batch is not None and not self.run.dry_run and not self.run.cluster:
            self.batch = ActBatch(
                self.run,
                ACTING,
                press=self.bo.batch_approve,
                shown_as=lambda refund: refund.refund_id,
                landed=self._landed_in_batch,
                size=batch.size,
                counts=(RefundCount.APPROVED, RefundCount.IN_BATCH),
            )
        self.batched = frozenset(batch.actions if batch is not None else ())

    # -- entry point ----------------------------------------------------------------------
    def open_browser(self) -> AbstractAsyncContextManager[Web]:
        credential = self.credential(self.scenario.shop.credential)
        return self.run.browser(login=self.bo.login_form, credential=credential)

    def encode_item(self, item: ListedRefund) -> dict[str, Any]:
        """A listed refund as a task message (its problem, an UnreadableField, as its parts)."""
        data: dict[str, Any] = {
            "refund_id": item.refund_id,
            "version": item.version,
            "status": item.status,
            "one_by_one": item.one_by_one,
        }
        problem = item.problem
        if problem is not None:
            data["problem"] = [
                getattr(problem, "field", ""),
                getattr(problem, "selector", ""),
                getattr(problem, "shown", ""),
                str(problem),
            ]
        return data

    def decode_item(self, data: dict[str, Any]) -> ListedRefund:
        problem = None
        if data.get("problem"):
            field, selector, shown, message = data["problem"]
            problem = UnreadableField(field, selector, shown, "")
            problem.args = (message,)
        return ListedRefund(
            data["refund_id"], data["version"], data["status"], problem, data["one_by_one"]
        )

    def perform(self) -> RunResult:
        run = self.run
        self.credential(self.scenario.shop.credential)  # before the run is recorded

        async def work() -> None:
            async with self.open_browser() as web:
                async with web.lane() as lane:
                    await settle_acting(run, ACTING, live_reader(self.bo, web, lane))
                    todo = await self._pending_items(lane.page)
                if not todo:
                    logger.info("nothing to do")
                    return
                lanes = Pace.of(
                    self.scenario.shop.parallel_pages or self.ws.config.browser.parallel_pages
                )
                if self.batch is None:
                    await run.work(todo, self._item, lanes=lanes, lane=web.lane)
                    return
                async with self.batch.serving(web.lane):
                    await run.work(todo, self._item, lanes=lanes, lane=web.lane)
                stats = self.batch.stats
                logger.info(
                    "batch approval: {} batches, {} of {} sent landed, {} worked one by one",
                    stats.batches,
                    stats.landed,
                    stats.sent,
                    stats.again,
                )
                await run.work(self.batch.again, self._item, lanes=lanes, lane=web.lane)

        return run.run(
            work,
            where=f"the shop at {self.bo.base}",
            report=self._write_report,
            details=lambda: {"money": self._money()},
            left_behind=lambda view: write_run(
                self.run.ledger,
                view,
                self.report_path("refunds", view.run_id),
                now=self.run.clock.wall(self.run.clock.now()),
            ),
        )

    async def _pending_items(self, page: Page) -> list[ListedRefund]:
        """The pending refunds: one list per pending status when the list path names one,
        else the one list, keeping rows whose status is pending or could not be read."""
        pending = self.scenario.shop.pending_statuses
        listed: list[ListedRefund] = []
        for value, statuses in self.scenario.list.lists(pending):
            rows: list[ListedRefund] = await self.run.retried(
                f"listing {value or 'refunds'}",
                partial(self.bo.list_refunds, page, value, statuses),
            )
            kept = [r for r in rows if r.problem or r.status in pending]
            logger.info("{} refunds listed as {}", len(kept), "/".join(statuses))
            listed.extend(kept)
        if not self.run.dry_run:
            await self._close_handled(page, {item_key(r.refund_id, r.status) for r in listed})
        todo = self.run.claim(
            listed,
            lambda r: (item_key(r.refund_id, r.status), r.fingerprint, {"refund_id": r.refund_id}),
            recheck=RECHECK,
        )
        logger.info("{} items to work on", len(todo))
        return todo

    async def _close_handled(self, page: Page, listed: set[str]) -> None:
        """Refunds waiting for a person that the list no longer shows at their stage: someone
        handled them in the back office. Each is read live; one that really moved on leaves
        the open set (and the open-exceptions queue); one still pending, unreadable, or whose
        page does not answer, stays (a run never fails for a hand-over it only looks in on)."""
        run, scenarios = self.run, {}
        for view in run.ledger.open_items(ROBOT):
            if view.item_key in listed or view.state == State.ACTING:
                continue
            if view.run_id not in scenarios:
                found = run.ledger.find_run(view.run_id)
                scenarios[view.run_id] = found.scenario if found else ""
            if scenarios[view.run_id] != str(run.scenario_file):
                continue  # another shop's refund
            refund_id, stage = view.item_key.split("@", 1)
            try:
                live = await self.run.retried(
                    f"re-reading {refund_id}", partial(self.bo.read, page, refund_id)
                )
            except BusinessException as exc:  # unreadable now: it stays with its person
                logger.info("{} stays open: {}", view.item_key, exc)
                continue
            except TEMPORARY as exc:  # its page does not answer (gone, or the shop away
                # after the retries): it stays with its person; the run goes on with the rest
                logger.warning("{} stays open, its page did not answer: {}", view.item_key, exc)
                continue
            if live.status == stage:
                continue
            closed_elsewhere(
                run,
                view.item_key,
                live.status,
                fingerprint=live.fingerprint,
                count=RefundCount.CLOSED_ELSEWHERE,
            )

    # -- one refund -----------------------------------------------------------------------
    async def _item(self, listed: ListedRefund, lane: Lane) -> None:
        key = item_key(listed.refund_id, listed.status)
        async with self.run.item(key, lane=lane, acting=ACTING) as item:
            item.row.update(refund_id=listed.refund_id, link=self.bo.detail_url(listed.refund_id))
            if listed.problem is not None:  # the list showed a status nobody mapped
                await self._row_as_far_as_it_reads(item, lane, listed.refund_id)
                raise listed.problem
            await item.attempt(lambda p: self._attempt(p, item, listed), f"refund {key}")

    async def _row_as_far_as_it_reads(self, item: Item, lane: Lane, refund_id: str) -> None:
        """A refund handed over for its list row: its workbook row from its own page, as far
        as the page reads (its money, its deadline). A page that does not answer leaves the
        row as it is: the hand-over stands either way."""
        try:
            await self._live_record(lane.page, item, refund_id)
        except UnreadableField:
            pass  # the row has what did read
        except TEMPORARY as exc:
            logger.info("{}: its page did not answer for its row ({})", item.key, exc)

    async def _live_record(self, page: Page, item: Item, refund_id: str) -> RefundRequest:
        """The live record, with its workbook row noted: from every field, or, when one
        cannot be read, from those that did (the hand-over still shows its money)."""
        link = self.bo.detail_url(refund_id)
        try:
            refund = await self.bo.read(page, refund_id)
        except UnreadableField as exc:
            item.row.update(refund_row(exc.values, link, self.run.clock))
            raise
        item.row.update(refund_row(vars(refund), link, self.run.clock))
        return refund

    async def _attempt(self, page: Page, item: Item, listed: ListedRefund) -> None:
        """Re-read the live record, decide, act, verify. Safe to repeat after any failure."""
        refund = await self._live_record(page, item, listed.refund_id)
        item.fingerprint = refund.fingerprint
        verdict = item.verdict(refund)  # acting: an earlier attempt pressed
        if verdict == Verdict.LANDED:
            self._done(item, refund, item.acting_action, verified_as=refund.status)
            return
        if verdict == Verdict.ELSEWHERE or refund.status != listed.status:
            self._handled_elsewhere(item, refund, listed.status)
            return
        decision = decide(refund, self.rules, self.run.clock.now())
        if isinstance(decision, HandOver):  # every rule it fails, for the person who decides
            item.row["reasons"] = list(decision.codes)
            raise BusinessException(decision.code, decision.reasons, item_id=item.key)
        assert isinstance(decision, Approve)
        action = Action(
            decision.action,
            refund.fingerprint,
            amount_cents=cents(refund.refund_fee) if decision.action in MOVES_MONEY else 0,
            daily_cap_cents=self.daily_cap_cents,
        )
        if self.batch is not None and decision.action in self.batched and not listed.one_by_one:
            item.queue(action, self.batch, refund, again=replace(listed, one_by_one=True))
            return
        acted: Acted = await item.act(
            action,
            press=lambda: self.bo.approve(page, refund),
            read_live=lambda: self.bo.read(page, refund.refund_id),
        )
        if acted.verdict == Verdict.ELSEWHERE:
            self._handled_elsewhere(item, acted.live, listed.status)
            return
        after = acted.live  # what the page shows of the record now (None in a dry run)
        verified = after.status if after is not None else "(dry run)"
        fingerprint = after.fingerprint if after is not None else refund.fingerprint
        self._done(item, refund, decision.action, verified_as=verified, fingerprint=fingerprint)

    # -- bookkeeping ----------------------------------------------------------------------
    def _handled_elsewhere(
        self, item: Item, refund: RefundRequest | RecordState, stage: str
    ) -> None:
        logger.info("no longer {} (now {}): handled elsewhere", stage, refund.status)
        item.handled_elsewhere(refund.status, fingerprint=refund.fingerprint)

    def _done(
        self,
        item: Item,
        refund: RefundRequest,
        action: str,
        *,
        verified_as: str,
        fingerprint: str | None = None,
    ) -> None:
        """Booked as the robot's: ``refund`` as it was decided on; ``fingerprint`` the
        record's as the page shows it now."""
        self._approved(item.row, refund, action, verified_as=verified_as)
        item.done(
            details={"verified_as": verified_as, "action": action},
            fingerprint=fingerprint or refund.fingerprint,
            counts=[RefundCount.APPROVED],
        )

    def _landed_in_batch(
        self, queued: Queued[RefundRequest], live: RefundRequest | RecordState
    ) -> None:
        """A refund a batch approved, as its row showed after (the ledger is written next)."""
        self._approved(queued.row, queued.payload, queued.action, verified_as=live.status)

    def _approved(
        self, row: dict[str, Any], refund: RefundRequest, action: str, *, verified_as: str
    ) -> None:
        """An approval of the robot's, one by one or in a batch: its time on the workbook
        row, its money in the run's total and its log line (its counts: its ending's)."""
        row["at"] = self.run.clock.wall(self.run.clock.now()).isoformat(timespec="seconds")
        self.money += refund.refund_fee if action in MOVES_MONEY else Decimal("0")
        logger.info(
            "{} {} ({}), now {}",
            "would " + action if self.run.dry_run else action,
            refund.refund_id,
            refund.refund_fee,
            verified_as,
        )

    def _money(self) -> Decimal:
        """What this run approved: counted here, or by the cluster's workers in the ledger."""
        if not self.run.cluster or self.run.dry_run:
            return self.money
        return Decimal(self.run.ledger.run_money(ROBOT, self.run.run_id)) / 100

    def _write_report(self, result: RunResult) -> Path:
        """The run's workbook, from the ledger (as `robots report` writes it later)."""
        run = self.run
        view = run.ledger.find_run(run.run_id)
        assert view is not None
        return write_from_ledger(
            run.ledger,
            view,
            self.report_path("refunds"),
            robot=ROBOT,
            now=run.clock.wall(run.clock.now()),
            escalate_within_hours=float(self.rules.escalate_within_hours),
        )
