"""The refunds robot: list pending refunds, decide each with the policy, approve or hand over.

It stands on the engine (``robots.engine``): the run, each item's lifecycle and the acting
protocol are the engine's, so a crash, kill, dropped connection or restart never pays a
refund twice, never loses one and never overruns the daily cap. This module only says what
a refund is worked like: read the live record, decide, approve.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path

from loguru import logger
from playwright.async_api import Page

from robots.engine.item import (
    Acted,
    ActingRules,
    Action,
    Count,
    Item,
    Outcome,
    Verdict,
    settle_acting,
)
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult, Web
from robots.errors import BusinessException
from robots.ledger import ItemView
from robots.refunds.backoffice import RecordState, RefundBackOffice
from robots.refunds.model import ListedRefund, RefundRequest
from robots.refunds.policy import (
    MOVES_MONEY,
    REASONS,
    STATUS_AFTER,
    STATUS_BEFORE,
    Approve,
    HandOver,
    decide,
    is_urgent,
)
from robots.refunds.report import ApprovedRow, ExceptionRow, RunSummary, write_refund_report
from robots.refunds.scenario import RefundScenario

ROBOT = "refunds"


class RefundCount(enum.StrEnum):
    APPROVED = "approved"


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
        return await web.retried(f"settling {view.item_key}", lambda: bo.read(lane.page, refund_id))

    return read


ACTING = ActingRules[RefundRequest | RecordState](
    judge=judge, describe=lambda r: r.status, fingerprint=lambda r: r.fingerprint
)


@dataclass
class RefundsReport:
    """What the run's workbook holds, gathered as items finish."""

    exceptions: list[ExceptionRow]
    approved: list[ApprovedRow]
    money: Decimal = Decimal("0")


class RefundsRobot(BaseRobot):
    """One run of the refunds robot against one shop."""

    NAME, REASONS = ROBOT, REASONS
    scenario: RefundScenario

    def setup(self) -> None:
        self.bo = RefundBackOffice(self.scenario, self.run.clock)
        self.rules = self.scenario.policy
        self.daily_cap_cents = cents(self.rules.daily_auto_total)
        self.report = RefundsReport([], [])

    # -- entry point ----------------------------------------------------------------------
    def perform(self) -> RunResult:
        credential = self.ws.credentials().get(self.scenario.shop.credential)
        self.run.secrets += credential.secrets
        run = self.run

        async def work() -> None:
            async with run.browser(login=self.bo.login_form, credential=credential) as web:
                async with web.lane() as lane:
                    await settle_acting(run, ACTING, live_reader(self.bo, web, lane))
                    todo = await self._pending_items(web, lane.page)
                if not todo:
                    logger.info("nothing to do")
                    return
                await run.work(
                    todo,
                    self._item,
                    lanes=self.ws.config.browser.parallel_pages,
                    lane=web.lane,
                )

        return run.run(
            work,
            where=f"the shop at {self.bo.base}",
            report=self._write_report,
            details=lambda: {"money": self.report.money},
        )

    async def _pending_items(self, web: Web, page: Page) -> list[ListedRefund]:
        """The pending refunds: one list per pending status when the list path names one,
        else the one list, keeping rows whose status is pending or could not be read."""
        pending = self.scenario.shop.pending_statuses
        listed: list[ListedRefund] = []
        for status in pending if self.scenario.list.per_status else [None]:
            rows: list[ListedRefund] = await web.retried(
                f"listing {status or 'refunds'}", partial(self.bo.list_refunds, page, status)
            )
            kept = [r for r in rows if r.problem or r.status in pending]
            logger.info("{} refunds listed as {}", len(kept), status or "pending")
            listed.extend(kept)
        todo = self.run.claim(
            listed,
            lambda r: (item_key(r.refund_id, r.status), r.fingerprint, {"refund_id": r.refund_id}),
        )
        logger.info("{} items to work on", len(todo))
        return todo

    # -- one refund -----------------------------------------------------------------------
    async def _item(self, listed: ListedRefund, lane: Lane) -> None:
        key = item_key(listed.refund_id, listed.status)
        seen: dict[str, RefundRequest] = {}
        async with self.run.item(key, lane=lane, acting=ACTING) as item:
            if listed.problem is not None:  # the list showed a status nobody mapped
                raise listed.problem
            await item.attempt(lambda p: self._attempt(p, item, listed, seen), f"refund {key}")
        if item.outcome in (Outcome.HANDED_OVER, Outcome.SYSTEM_EXCEPTION):
            self._hand_over(listed, seen.get("live"), item)

    async def _attempt(
        self, page: Page, item: Item, listed: ListedRefund, seen: dict[str, RefundRequest]
    ) -> None:
        """Re-read the live record, decide, act, verify. Safe to repeat after any failure."""
        refund = seen["live"] = await self.bo.read(page, listed.refund_id)
        item.fingerprint = refund.fingerprint
        verdict = item.verdict(refund)  # acting: an earlier attempt pressed
        if verdict == Verdict.LANDED:
            self._done(item, refund, item.acting_action, verified_as=refund.status)
            return
        if verdict == Verdict.ELSEWHERE or refund.status != listed.status:
            self._handled_elsewhere(item, refund, listed.status)
            return
        decision = decide(refund, self.rules, self.run.clock.now())
        if isinstance(decision, HandOver):
            raise BusinessException(decision.code, decision.reason, item_id=item.key)
        assert isinstance(decision, Approve)
        acted: Acted = await item.act(
            Action(
                decision.action,
                refund.fingerprint,
                amount_cents=cents(refund.refund_fee) if decision.action in MOVES_MONEY else 0,
                daily_cap_cents=self.daily_cap_cents,
            ),
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
        item.done(
            acted=False,
            fingerprint=refund.fingerprint,
            details={"handled_elsewhere": refund.status},
        )
        self.run.count(Count.HANDLED_ELSEWHERE)

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
        item.done(
            details={"verified_as": verified_as, "action": action},
            fingerprint=fingerprint or refund.fingerprint,
        )
        self.report.money += refund.refund_fee if action in MOVES_MONEY else Decimal("0")
        self.run.count(RefundCount.APPROVED)
        self.report.approved.append(
            ApprovedRow(
                refund.refund_id,
                refund.order_id,
                refund.buyer_nick,
                action,
                refund.refund_fee,
                self.run.clock.wall(self.run.clock.now()),
                self.bo.detail_url(refund.refund_id),
            )
        )
        logger.info(
            "{} {} ({}), now {}",
            "would " + action if self.run.dry_run else action,
            refund.refund_id,
            refund.refund_fee,
            verified_as,
        )

    def _hand_over(self, listed: ListedRefund, refund: RefundRequest | None, item: Item) -> None:
        code = item.reason_code or "SYSTEM_ERROR"
        evidence = item.evidence[0] if code == "SYSTEM_ERROR" and item.evidence else ""
        reports = self.ws.path(self.ws.config.paths.reports)
        clock = self.run.clock
        self.report.exceptions.append(
            ExceptionRow(
                refund_id=listed.refund_id,
                order_id=refund.order_id if refund else "",
                buyer=refund.buyer_nick if refund else "",
                amount=refund.refund_fee if refund else Decimal("0"),
                reason_code=code,
                reason=item.message if code == "UNREADABLE_FIELD" else REASONS.get(code, code),
                deadline=clock.wall(refund.deadline) if refund else None,
                urgent=bool(refund and is_urgent(refund, self.rules, clock.now())),
                link=self.bo.detail_url(listed.refund_id),
                evidence=os.path.relpath(evidence, reports) if evidence else "",
                item_key=item.key,
            )
        )

    def _write_report(self, result: RunResult) -> Path:
        run = self.run
        summary = RunSummary(
            run.run_id,
            str(run.scenario_file),
            *self.run_times(),
            run.dry_run,
            dict(result.counts),
            self.report.money,
        )
        return write_refund_report(
            self.report_path("refunds"), summary, self.report.exceptions, self.report.approved
        )


Robot = RefundsRobot  # what the registry builds (robots.engine.spec)
