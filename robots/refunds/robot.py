"""The refunds robot: list pending refunds, decide each with the policy, approve or hand over.

Every item goes through the ledger's acting protocol, so a crash, kill or restart never pays a
refund twice and never loses one. Several browser contexts may work in parallel; one login
serves them all.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger
from playwright.async_api import BrowserContext, Page
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from robots.config import RefundScenario, Workspace
from robots.errors import BusinessException, PageError, SystemException
from robots.ledger import Ledger, State, new_run_id
from robots.refunds.backoffice import RefundBackOffice
from robots.refunds.model import ListedRefund, RefundRequest
from robots.refunds.policy import (
    MOVES_MONEY,
    REASONS,
    STATUS_AFTER,
    Approve,
    HandOver,
    decide,
    is_urgent,
)
from robots.reports.refunds import ApprovedRow, ExceptionRow, RunSummary, write_refund_report
from robots.runtime.browser import (
    BrowserSession,
    ItemPage,
    ItemTrace,
    browser_session,
    recycled,
)
from robots.runtime.credentials import Credential
from robots.runtime.logs import run_logging
from robots.runtime.redaction import Redactor
from robots.runtime.retry import TEMPORARY, RetryPolicy
from robots.runtime.stopping import StopRequest, exit_code

ROBOT = "refunds"


def item_key(refund_id: str, stage: str) -> str:
    """One work item per refund per stage: agreeing to a return and paying it are two acts."""
    return f"{refund_id}@{stage}"


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


@dataclass
class RunResult:
    run_id: str
    report: Path
    run_dir: Path
    counts: dict[str, int]
    money_approved: Decimal

    @property
    def exit_code(self) -> int:
        """Non-zero when something needs an operator: items left in a system exception."""
        return exit_code(self.counts)


class RefundsRobot:
    """One run of the refunds robot against one shop."""

    def __init__(
        self,
        ws: Workspace,
        scenario: RefundScenario,
        scenario_file: Path,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        console: Console | None = None,
        console_level: str = "WARNING",
        stop: StopRequest | None = None,
    ) -> None:
        self.ws, self.scenario, self.scenario_file = ws, scenario, scenario_file
        self.dry_run, self.limit = dry_run, limit
        self.stop = stop or StopRequest()
        self.console = console or Console(stderr=True)
        self.console_level = console_level
        self.bo = RefundBackOffice(scenario)
        self.rules = scenario.policy
        cfg = ws.config
        self.retry = RetryPolicy(cfg.retry.attempts, cfg.retry.wait_initial_s, cfg.retry.wait_max_s)
        self.run_id = new_run_id(ROBOT)
        self.run_dir = ws.path(cfg.paths.logs) / self.run_id
        self.evidence_dir = self.run_dir / "evidence"
        self.real_ledger = Ledger.at(ws.path(cfg.paths.ledger))
        self.ledger = self.real_ledger
        self.daily_cap_cents = cents(self.rules.daily_auto_total)
        if dry_run:  # decide everything, write nothing that a real run would read
            self.ledger = Ledger.in_memory()
            today = datetime.now().date()
            self.daily_cap_cents -= self.real_ledger.money_committed(ROBOT, today)
        self.counts: dict[str, int] = {}
        self.exceptions: list[ExceptionRow] = []
        self.approved: list[ApprovedRow] = []
        self.money = Decimal("0")
        self.credential: Credential | None = None

    # -- entry point ----------------------------------------------------------------------
    def run(self) -> RunResult:
        credential = self.ws.credentials().get(self.scenario.shop.credential)
        self.credential = credential
        redact = Redactor(credential.secrets)
        with run_logging(
            self.run_dir, redact, console=self.console, console_level=self.console_level
        ):
            logger.info(
                "run {} of {} against {} (dry run: {})",
                self.run_id,
                self.scenario_file,
                self.scenario.shop.base_url,
                self.dry_run,
            )
            started = datetime.now()
            self.ledger.begin_run(self.run_id, ROBOT, str(self.scenario_file), dry_run=self.dry_run)
            try:
                asyncio.run(self._run())
            finally:
                ended = datetime.now()
                summary = RunSummary(
                    self.run_id,
                    str(self.scenario_file),
                    started,
                    ended,
                    self.dry_run,
                    dict(self.counts),
                    self.money,
                )
                self.ledger.end_run(self.run_id, {"counts": self.counts, "money": str(self.money)})
            report = self.ws.path(self.ws.config.paths.reports) / (
                f"refunds-{self.run_id}{'-dry-run' if self.dry_run else ''}.xlsx"
            )
            write_refund_report(report, summary, self.exceptions, self.approved)
            logger.info("report written to {}; counts {}", report, self.counts)
        if self.ledger is not self.real_ledger:
            self.ledger.close()
        self.real_ledger.close()
        return RunResult(self.run_id, report, self.run_dir, dict(self.counts), self.money)

    async def _run(self) -> None:
        b = self.ws.config.browser
        assert self.credential is not None
        async with browser_session(
            executable=b.executable,
            headless=b.headless,
            timeout_ms=b.timeout_ms,
            trace=b.trace_on_failure,
        ) as session:
            credential = self.credential
            try:
                async for attempt in self.retry.retrying("login"):
                    with attempt:
                        await session.login(self.bo.login_form, credential)
                context = await session.new_context()
                page = await context.new_page()
                await self._settle_interrupted(session, page)
                todo = await self._pending_items(session, page)
                await session.close_context(context)
            except TEMPORARY as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SystemException(
                    f"could not work with the shop at {self.bo.base}: {first_line}",
                    url=self.bo.base,
                ) from exc
            if not todo:
                logger.info("nothing to do")
                return
            queue: asyncio.Queue[ListedRefund] = asyncio.Queue()
            for listed in todo:
                queue.put_nowait(listed)
            workers = min(b.parallel_pages, len(todo))
            with Progress(
                TextColumn("[bold]refunds"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self.console,
                transient=False,
                disable=not self.console.is_terminal,
            ) as progress:
                task = progress.add_task("", total=len(todo))
                await asyncio.gather(
                    *(self._worker(session, queue, progress, task) for _ in range(workers))
                )

    # -- phases ---------------------------------------------------------------------------
    async def _with_session(self, session: BrowserSession, what: str, step: Any) -> Any:
        assert self.credential is not None
        return await session.retried(self.retry, self.bo.login_form, self.credential, what, step)

    async def _settle_interrupted(self, session: BrowserSession, page: Page) -> None:
        """Items left *acting* by a killed run: read the live record, never act again here."""
        for item in self.ledger.items(ROBOT, state=State.ACTING):
            refund_id, stage = item.item_key.split("@", 1)
            live: RefundRequest = await self._with_session(
                session, f"settling {item.item_key}", lambda rid=refund_id: self.bo.read(page, rid)
            )
            if live.status == stage:
                logger.info(
                    "{}: interrupted before the approval landed; back to pending", item.item_key
                )
                self.ledger.finish(
                    ROBOT,
                    item.item_key,
                    State.PENDING,
                    run_id=self.run_id,
                    message="interrupted before acting landed; re-decided",
                )
                continue
            landed = live.status == STATUS_AFTER.get(item.action)
            logger.info(
                "{}: interrupted after acting; live status {} (ours: {})",
                item.item_key,
                live.status,
                landed,
            )
            self.ledger.finish(
                ROBOT,
                item.item_key,
                State.DONE,
                run_id=self.run_id,
                acted=landed,
                fingerprint=live.fingerprint,
                details={"settled_on_resume": live.status},
            )
            self._count("settled_on_resume")

    async def _pending_items(self, session: BrowserSession, page: Page) -> list[ListedRefund]:
        listed: list[ListedRefund] = []
        for status in self.scenario.shop.pending_statuses:
            rows = await self._with_session(
                session, f"listing {status}", lambda s=status: self.bo.list_refunds(page, s)
            )
            logger.info("{} refunds listed as {}", len(rows), status)
            listed.extend(rows)
        todo: list[ListedRefund] = []
        for row in listed:
            key = item_key(row.refund_id, row.status)
            if self.limit is not None and len(todo) >= self.limit:
                break
            if self.ledger.claim(
                ROBOT,
                key,
                run_id=self.run_id,
                fingerprint=row.fingerprint,
                details={"refund_id": row.refund_id},
            ):
                todo.append(row)
            else:
                self._count("unchanged_since_last_run")
        logger.info("{} items to work on", len(todo))
        return todo

    async def _worker(
        self,
        session: BrowserSession,
        queue: asyncio.Queue[ListedRefund],
        progress: Progress,
        task: Any,
    ) -> None:
        context = await session.new_context()
        page = await context.new_page()
        done = 0
        try:
            while True:
                if self.stop.requested:
                    self._count("not_started", queue.qsize())
                    return
                try:
                    listed = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                page = await self._item(session, context, page, listed)
                progress.advance(task)
                done += 1
                page = await recycled(page, done)
        finally:
            await session.close_context(context)

    # -- one item -------------------------------------------------------------------------
    async def _item(
        self, session: BrowserSession, context: BrowserContext, page: Page, listed: ListedRefund
    ) -> Page:
        key = item_key(listed.refund_id, listed.status)
        trace = ItemTrace(context, self.ws.config.browser.trace_on_failure)
        await trace.start()
        seen: dict[str, RefundRequest] = {}
        tries = ItemPage(context, page, self.evidence_dir, key)
        evidence = tries.evidence

        with logger.contextualize(item=key):
            try:
                await self._with_session(
                    session,
                    f"refund {key}",
                    lambda: tries.attempt(lambda p: self._attempt(p, key, listed, seen)),
                )
            except BusinessException as exc:
                refund = seen.get("live")
                self.ledger.finish(
                    ROBOT,
                    key,
                    State.BUSINESS_EXCEPTION,
                    run_id=self.run_id,
                    reason_code=exc.code,
                    message=str(exc),
                    fingerprint=refund.fingerprint if refund else None,
                )
                self._hand_over(listed, refund, exc.code)
                logger.info("handed to a person: {} ({})", exc.code, exc)
                await trace.finish(None)
            except TEMPORARY as exc:
                kept = await trace.finish(self.evidence_dir / f"{key}.trace.zip")
                evidence += [kept] if kept else []
                # we may have acted: an acting item stays acting for the next run to settle
                message = self.ledger.give_up(
                    ROBOT, key, exc, run_id=self.run_id, evidence=evidence
                )
                self._count("system_exception")
                self._hand_over(
                    listed,
                    seen.get("live"),
                    "SYSTEM_ERROR",
                    evidence=evidence[0] if evidence else "",
                )
                logger.error("system exception after {} attempts: {}", self.retry.attempts, message)
            else:
                await trace.finish(None)
        return tries.page

    async def _attempt(
        self, page: Page, key: str, listed: ListedRefund, seen: dict[str, RefundRequest]
    ) -> None:
        """Re-read the live record, decide, act, verify. Safe to repeat after any failure."""
        stage = listed.status
        refund = seen["live"] = await self.bo.read(page, listed.refund_id)
        item = self.ledger.get(ROBOT, key)
        assert item is not None
        if item.state == State.ACTING and refund.status == STATUS_AFTER.get(item.action):
            # an earlier attempt pressed approve and the page died before we saw the result
            self._done(key, refund, item.action, verified_as=refund.status)
            return
        if refund.status != stage:
            logger.info("no longer {} (now {}): handled elsewhere", stage, refund.status)
            self.ledger.finish(
                ROBOT,
                key,
                State.DONE,
                run_id=self.run_id,
                acted=False,
                fingerprint=refund.fingerprint,
                details={"handled_elsewhere": refund.status},
            )
            self._count("handled_elsewhere")
            return
        decision = decide(refund, self.rules, datetime.now())
        if isinstance(decision, HandOver):
            raise BusinessException(decision.code, decision.reason, item_id=key)
        assert isinstance(decision, Approve)
        if self.dry_run:
            self._done(key, refund, decision.action, verified_as="(dry run)")
            return
        moves_money = decision.action in MOVES_MONEY
        if not self.ledger.start_acting(
            ROBOT,
            key,
            run_id=self.run_id,
            action=decision.action,
            amount_cents=cents(refund.refund_fee) if moves_money else 0,
            fingerprint=refund.fingerprint,
            daily_cap_cents=self.daily_cap_cents,
            day=datetime.now().date(),
        ):
            raise BusinessException("DAILY_CAP_REACHED", REASONS["DAILY_CAP_REACHED"], item_id=key)
        after = await self.bo.approve(page, refund)
        expected = STATUS_AFTER[decision.action]
        if after.status != expected:
            raise PageError(
                f"after approving, the page shows {after.status}, not {expected}",
                url=page.url,
                item_id=key,
            )
        self._done(key, refund, decision.action, verified_as=after.status)

    # -- bookkeeping ----------------------------------------------------------------------
    def _count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n
        if what == "not_started":
            self.counts["stopped"] = 1

    def _done(self, key: str, refund: RefundRequest, action: str, *, verified_as: str) -> None:
        self.ledger.finish(
            ROBOT,
            key,
            State.DONE,
            run_id=self.run_id,
            details={"verified_as": verified_as, "action": action},
            fingerprint=refund.fingerprint,
        )
        amount = refund.refund_fee if action in MOVES_MONEY else Decimal("0")
        self.money += amount
        self._count("approved")
        self.approved.append(
            ApprovedRow(
                refund.refund_id,
                refund.order_id,
                refund.buyer_nick,
                action,
                refund.refund_fee,
                datetime.now(),
                self.bo.detail_url(refund.refund_id),
            )
        )
        logger.info(
            "{} {} ({}), now {}",
            "would " + action if self.dry_run else action,
            refund.refund_id,
            refund.refund_fee,
            verified_as,
        )

    def _hand_over(
        self, listed: ListedRefund, refund: RefundRequest | None, code: str, *, evidence: str = ""
    ) -> None:
        if code != "SYSTEM_ERROR":
            self._count("handed_to_person")
        reports = self.ws.path(self.ws.config.paths.reports)
        link = os.path.relpath(evidence, reports) if evidence else ""
        self.exceptions.append(
            ExceptionRow(
                refund_id=listed.refund_id,
                order_id=refund.order_id if refund else "",
                buyer=refund.buyer_nick if refund else "",
                amount=refund.refund_fee if refund else Decimal("0"),
                reason_code=code,
                reason=REASONS.get(code, code),
                deadline=refund.deadline if refund else None,
                urgent=bool(refund and is_urgent(refund, self.rules, datetime.now())),
                link=self.bo.detail_url(listed.refund_id),
                evidence=link,
                item_key=item_key(listed.refund_id, listed.status),
            )
        )
