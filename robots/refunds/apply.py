"""Acting on a reviewed refunds workbook: each "approve" through the back office, exactly once.

The engine's run, item lifecycle and acting protocol, as the robot uses them: settle items an
earlier run left *acting*, re-read the live record, make sure it is the record the person
reviewed, mark *acting* with the reviewer, press approve, verify, mark *done*. Running the
same workbook again finds the items done and does nothing new.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from playwright.async_api import Page

from robots.config import Workspace
from robots.engine.item import Action, AlreadyActing, Item, Outcome, Verdict, settle_acting
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunOptions, RunResult
from robots.errors import BusinessException, StaleRecord
from robots.ledger import State
from robots.refunds.apply_report import RESULTS, ApplyRow, write_apply_report
from robots.refunds.backoffice import RecordState, RefundBackOffice
from robots.refunds.model import RefundRequest
from robots.refunds.policy import MOVES_MONEY, REASONS, failures, reasons_text, reviewed_action
from robots.refunds.review import ReviewedRow, ReviewedWorkbook
from robots.refunds.robot import ACTING, ROBOT, cents, live_reader, refund_row
from robots.refunds.scenario import RefundScenario


class ApplyCount(enum.StrEnum):
    """One count per result code (lower-cased), as the result workbook shows them."""

    APPLIED = "applied"
    HELD = "held"
    ALREADY_DONE = "already_done"
    CHANGED_SINCE_REVIEW = "changed_since_review"
    REFUSED_HARD_RULE = "refused_hard_rule"
    HANDLED_ELSEWHERE = "handled_elsewhere"
    FAILED = "failed"


@dataclass
class Applying:
    """One reviewed decision being applied, and how it ended."""

    row: ReviewedRow
    review: dict[str, Any]  # what the ledger keeps of the person's decision
    result: str = ""
    message: str = ""

    def ended(self, result: str, message: str) -> None:
        self.result, self.message = result, message


class ReviewedApprovals(BaseRobot):
    """One `robots apply` of one reviewed workbook against one shop."""

    NAME, REASONS, RUN_PREFIX = ROBOT, REASONS, "apply"
    scenario: RefundScenario

    def __init__(
        self,
        ws: Workspace,
        scenario: RefundScenario,
        scenario_file: Path,
        *,
        review: ReviewedWorkbook,
        options: RunOptions | None = None,
    ) -> None:
        super().__init__(ws, scenario, scenario_file, options)
        self.review = review
        self.bo = RefundBackOffice(scenario, self.run.clock)
        self.rows: list[ApplyRow] = []

    def perform(self) -> RunResult:
        credential = self.credential(self.scenario.shop.credential)
        run = self.run
        logger.info(
            "applying {} (run {}): {} decisions",
            self.review.file,
            self.review.run_id or "the open-exceptions queue",
            len(self.review.rows),
        )

        async def work() -> None:
            async with run.browser(
                login=self.bo.login_form, credential=credential, trace=False
            ) as web:
                async with web.lane() as lane:
                    await settle_acting(run, ACTING, live_reader(self.bo, web, lane))
                await run.work(self.review.rows, self._one, lane=web.lane)

        return run.run(
            work,
            where=f"the shop at {self.bo.base}",
            report=self._write_report,
            summary={"kind": "apply", "workbook": str(self.review.file)},
            details=lambda: {"reviewed_run": self.review.run_id},
        )

    def _review_note(self, row: ReviewedRow) -> dict[str, Any]:
        return {
            "decision": row.decision,
            "reviewer": row.reviewer,
            "note": row.note,
            "workbook": str(self.review.file),
            "row": row.row,
            "reviewed_run": row.run_id or self.review.run_id,
            "applied_by_run": self.run.run_id,
            "at": self.run.clock.now().isoformat(timespec="seconds"),
        }

    async def _one(self, row: ReviewedRow, lane: Lane) -> None:
        run, review = self.run, self._review_note(row)
        item_view = run.ledger.get(ROBOT, row.item_key)
        assert item_view is not None  # checked when the workbook was read
        if item_view.state == State.DONE:
            earlier = item_view.details.get("review", {})
            how = (
                f"已由运行 {earlier['applied_by_run']} 按 {earlier['reviewer']} 的复核处理"
                if earlier.get("applied_by_run") and earlier.get("decision") == "approve"
                else "应用复核意见前已处理完毕"
            )
            self._result(row, "ALREADY_DONE", how)
            return
        if row.decision == "hold":
            run.ledger.note_review(ROBOT, row.item_key, run_id=run.run_id, review=review)
            self._result(row, "HELD", f"{row.reviewer} 暂缓")
            return
        outcome = Applying(row, review)
        async with run.item(row.item_key, lane=lane, acting=ACTING) as item:
            await item.attempt(
                lambda p: self._approve(p, item, outcome), f"applying {row.item_key}"
            )
        if item.outcome == Outcome.HANDED_OVER:
            run.ledger.note_review(ROBOT, row.item_key, run_id=run.run_id, review=review)
            if outcome.result == "REFUSED_HARD_RULE":
                self._result(row, outcome.result, outcome.message)
                return
            code = "ALREADY_DONE" if item.reason_code == "ALREADY_DONE" else "CHANGED_SINCE_REVIEW"
            self._result(row, code, item.message)
        elif item.outcome == Outcome.SYSTEM_EXCEPTION:
            self._result(row, "FAILED", item.message)
        else:
            self._result(row, outcome.result, outcome.message)

    async def _approve(self, page: Page, item: Item, applying: Applying) -> None:
        """Re-read, check it is the reviewed record, act, verify. Safe to repeat."""
        row = applying.row
        refund_id, stage = row.item_key.split("@", 1)
        live = await self.bo.read(page, refund_id)
        verdict = item.verdict(live)
        if verdict == Verdict.LANDED:  # an earlier attempt's press landed
            self._reviewed_done(item, live, item.acting_action, applying)
            return
        if verdict == Verdict.ELSEWHERE or live.status != stage:
            self._elsewhere(item, live, applying)
            return
        view = item.ledger_view
        assert view is not None
        if verdict is None and live.fingerprint != view.fingerprint:
            raise StaleRecord(
                f"报告写出后退款单已变化（原 {view.fingerprint}，现 {live.fingerprint}），"
                "请重新复核",
                item_id=row.item_key,
            )
        action = reviewed_action(live)
        if action is None:
            raise BusinessException("NOT_PENDING", f"当前状态 {live.status}，没有可同意的操作")
        # a reviewer waives soft rules (over the cap, a risky buyer...), never a hard one:
        # the live record is checked again, and the item stays with a person, its reasons
        # refreshed
        failed = failures(live, self.scenario.policy, self.run.clock.now())
        hard = [c for c in failed if c in self.scenario.review.hard_rules]
        if hard:
            item.row.update(refund_row(vars(live), self.bo.detail_url(refund_id), self.run.clock))
            item.row["reasons"] = failed
            applying.ended("REFUSED_HARD_RULE", f"{reasons_text(hard)}（{', '.join(hard)}）")
            raise BusinessException(failed[0], reasons_text(failed))
        try:
            acted = await item.act(
                Action(
                    action,
                    live.fingerprint,
                    amount_cents=cents(live.refund_fee) if action in MOVES_MONEY else 0,
                    review=applying.review,
                ),
                press=lambda: self.bo.approve(page, live),
                read_live=lambda: self.bo.read(page, refund_id),
            )
        except AlreadyActing:
            applying.ended("ALREADY_DONE", "另一运行同时已处理")
            return
        if acted.verdict == Verdict.ELSEWHERE:
            self._elsewhere(item, acted.live, applying)
            return
        self._reviewed_done(item, acted.live, action, applying)

    def _elsewhere(self, item: Item, live: RefundRequest | RecordState, applying: Applying) -> None:
        details = {"handled_elsewhere": live.status, "review": applying.review}
        item.done(acted=False, fingerprint=live.fingerprint, details=details)
        applying.ended("HANDLED_ELSEWHERE", f"现状态 {live.status}")

    def _reviewed_done(
        self, item: Item, refund: RefundRequest | RecordState, action: str, applying: Applying
    ) -> None:
        details = {"verified_as": refund.status, "action": action, "review": applying.review}
        item.done(fingerprint=refund.fingerprint, details=details)
        row = applying.row
        logger.info("{} {} as reviewed by {}", action, row.refund_id, row.reviewer)
        applying.ended("APPLIED", f"{action} → {refund.status}")

    def _result(self, row: ReviewedRow, code: str, message: str) -> None:
        assert code in RESULTS
        self.run.count(ApplyCount[code])
        self.rows.append(
            ApplyRow(
                row.row,
                row.refund_id,
                row.decision,
                row.reviewer,
                code,
                f"{RESULTS[code]}：{message}" if message else RESULTS[code],
                self.bo.detail_url(row.refund_id),
            )
        )

    def _write_report(self, result: RunResult) -> Path:
        return write_apply_report(
            self.report_path("apply"),
            source=self.review.file,
            reviewed_run=self.review.run_id or "待处理队列 open-exceptions",
            run_id=self.run.run_id,
            started=self.run_times()[0],
            rows=self.rows,
        )
