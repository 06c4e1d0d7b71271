"""Acting on a reviewed refunds workbook: each "approve" through the back office, exactly once.

The same acting protocol as the robot: settle items an earlier run left *acting*, re-read the
live record, make sure it is the record the person reviewed, mark *acting* (with the
reviewer) in the ledger, press approve, verify, mark *done*. Running the same workbook again
finds the items done and does nothing new.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger
from playwright.async_api import Page

from robots.errors import BusinessException, PageError, StaleRecord
from robots.ledger import State, new_run_id
from robots.refunds.model import RefundRequest
from robots.refunds.policy import MOVES_MONEY, STATUS_AFTER, reviewed_action
from robots.refunds.review import ReviewedRow, ReviewedWorkbook
from robots.refunds.robot import ROBOT, RefundsRobot, cents
from robots.reports.apply import RESULTS, ApplyRow, write_apply_report
from robots.runtime.browser import BrowserSession, ItemPage, browser_session
from robots.runtime.logs import run_logging
from robots.runtime.redaction import Redactor
from robots.runtime.retry import TEMPORARY
from robots.runtime.stopping import exit_code


@dataclass
class ApplyResult:
    run_id: str
    report: Path
    run_dir: Path
    counts: dict[str, int]

    @property
    def exit_code(self) -> int:
        return exit_code(self.counts)


class ReviewedApprovals(RefundsRobot):
    """One `robots apply` of one reviewed workbook against one shop."""

    def __init__(self, *args: Any, review: ReviewedWorkbook, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.review = review
        self.run_id = new_run_id("apply")
        self.run_dir = self.ws.path(self.ws.config.paths.logs) / self.run_id
        self.evidence_dir = self.run_dir / "evidence"
        self.rows: list[ApplyRow] = []

    def run(self) -> ApplyResult:  # type: ignore[override]
        credential = self.ws.credentials().get(self.scenario.shop.credential)
        self.credential = credential
        started = datetime.now()
        with run_logging(
            self.run_dir,
            Redactor(credential.secrets),
            console=self.console,
            console_level=self.console_level,
        ):
            logger.info(
                "applying {} (run {}): {} decisions",
                self.review.file,
                self.review.run_id,
                len(self.review.rows),
            )
            self.ledger.begin_run(
                self.run_id,
                ROBOT,
                str(self.scenario_file),
                dry_run=False,
                summary={"kind": "apply", "workbook": str(self.review.file)},
            )
            try:
                asyncio.run(self._apply())
            finally:
                self.ledger.end_run(
                    self.run_id,
                    {
                        "kind": "apply",
                        "workbook": str(self.review.file),
                        "reviewed_run": self.review.run_id,
                        "counts": self.counts,
                    },
                )
            report = self.ws.path(self.ws.config.paths.reports) / f"apply-{self.run_id}.xlsx"
            write_apply_report(
                report,
                source=self.review.file,
                reviewed_run=self.review.run_id,
                run_id=self.run_id,
                started=started,
                rows=self.rows,
            )
            logger.info("result workbook {}; counts {}", report, self.counts)
        self.real_ledger.close()
        return ApplyResult(self.run_id, report, self.run_dir, dict(self.counts))

    async def _apply(self) -> None:
        b = self.ws.config.browser
        assert self.credential is not None
        async with browser_session(
            executable=b.executable, headless=b.headless, timeout_ms=b.timeout_ms, trace=False
        ) as session:
            async for attempt in self.retry.retrying("login"):
                with attempt:
                    await session.login(self.bo.login_form, self.credential)
            context = await session.new_context()
            page = await context.new_page()
            await self._settle_interrupted(session, page)
            for row in self.review.rows:
                if self.stop.requested:
                    self._count("not_started", len(self.review.rows) - len(self.rows))
                    break
                with logger.contextualize(item=row.item_key):
                    page = await self._one(session, context, page, row)
            await session.close_context(context)

    async def _one(
        self, session: BrowserSession, context: Any, page: Page, row: ReviewedRow
    ) -> Page:
        review = {
            "decision": row.decision,
            "reviewer": row.reviewer,
            "note": row.note,
            "workbook": str(self.review.file),
            "row": row.row,
            "reviewed_run": self.review.run_id,
            "applied_by_run": self.run_id,
            "at": datetime.now().isoformat(timespec="seconds"),
        }
        item = self.ledger.get(ROBOT, row.item_key)
        assert item is not None  # checked when the workbook was read
        if item.state == State.DONE:
            earlier = item.details.get("review", {})
            how = (
                f"applied by run {earlier['applied_by_run']} ({earlier['reviewer']})"
                if earlier.get("applied_by_run") and earlier.get("decision") == "approve"
                else "done before the review was applied"
            )
            return self._result(row, "ALREADY_DONE", how, page)
        if row.decision == "hold":
            self.ledger.note_review(ROBOT, row.item_key, run_id=self.run_id, review=review)
            return self._result(row, "HELD", f"held by {row.reviewer}", page)

        refund_id, stage = row.item_key.split("@", 1)
        outcome: dict[str, str] = {}
        tries = ItemPage(context, page, self.evidence_dir, row.item_key)
        try:
            await self._with_session(
                session,
                f"applying {row.item_key}",
                lambda: tries.attempt(
                    lambda p: self._approve(p, row, refund_id, stage, review, outcome)
                ),
            )
        except BusinessException as exc:
            current = self.ledger.get(ROBOT, row.item_key)
            if current is not None and current.state == State.ACTING:  # the shop said no (409)
                self.ledger.finish(
                    ROBOT,
                    row.item_key,
                    State.BUSINESS_EXCEPTION,
                    run_id=self.run_id,
                    reason_code=exc.code,
                    message=str(exc),
                    acted=False,
                )
            self.ledger.note_review(ROBOT, row.item_key, run_id=self.run_id, review=review)
            return self._result(row, "CHANGED_SINCE_REVIEW", str(exc), tries.page)
        except TEMPORARY as exc:
            message = self.ledger.give_up(
                ROBOT, row.item_key, exc, run_id=self.run_id, evidence=tries.evidence
            )
            self._count("system_exception")
            return self._result(row, "FAILED", message, tries.page)
        return self._result(row, outcome["result"], outcome["message"], tries.page)

    async def _approve(
        self,
        page: Page,
        row: ReviewedRow,
        refund_id: str,
        stage: str,
        review: dict[str, Any],
        outcome: dict[str, str],
    ) -> None:
        """Re-read, check it is the reviewed record, act, verify. Safe to repeat."""
        live: RefundRequest = await self.bo.read(page, refund_id)
        item = self.ledger.get(ROBOT, row.item_key)
        assert item is not None
        if item.state == State.ACTING and live.status == STATUS_AFTER.get(item.action):
            self._reviewed_done(row, live, item.action, review, outcome)  # an earlier try landed
            return
        if live.status != stage:
            self.ledger.finish(
                ROBOT,
                row.item_key,
                State.DONE,
                run_id=self.run_id,
                acted=False,
                fingerprint=live.fingerprint,
                details={"handled_elsewhere": live.status, "review": review},
            )
            outcome.update(result="HANDLED_ELSEWHERE", message=f"now {live.status}")
            return
        if live.fingerprint != item.fingerprint:
            raise StaleRecord(
                f"the refund changed after the report was written (was {item.fingerprint}, "
                f"now {live.fingerprint}); review it again",
                item_id=row.item_key,
            )
        action = reviewed_action(live)
        if action is None:
            raise BusinessException("NOT_PENDING", f"nothing to approve in status {live.status}")
        amount = cents(live.refund_fee) if action in MOVES_MONEY else 0
        if not self.ledger.start_reviewed(
            ROBOT,
            row.item_key,
            run_id=self.run_id,
            action=action,
            amount_cents=amount,
            fingerprint=live.fingerprint,
            review=review,
        ):
            outcome.update(result="ALREADY_DONE", message="another run acted on it meanwhile")
            return
        after = await self.bo.approve(page, live)
        if after.status != STATUS_AFTER[action]:
            raise PageError(
                f"after approving, the page shows {after.status}, not {STATUS_AFTER[action]}",
                url=page.url,
                item_id=row.item_key,
            )
        self._reviewed_done(row, after, action, review, outcome)

    def _reviewed_done(
        self,
        row: ReviewedRow,
        refund: RefundRequest,
        action: str,
        review: dict[str, Any],
        outcome: dict[str, str],
    ) -> None:
        self.ledger.finish(
            ROBOT,
            row.item_key,
            State.DONE,
            run_id=self.run_id,
            fingerprint=refund.fingerprint,
            details={"verified_as": refund.status, "action": action, "review": review},
        )
        logger.info("{} {} as reviewed by {}", action, row.refund_id, row.reviewer)
        outcome.update(result="APPLIED", message=f"{action} → {refund.status}")

    def _result(self, row: ReviewedRow, code: str, message: str, page: Page) -> Page:
        assert code in RESULTS
        self._count(code.lower())
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
        return page
