"""The returns robot: export the unlabelled parcels from the warehouse terminal, find each one's
order in the back office, link the confident matches in the terminal, verify every link on the
web, and hand the rest to a person with the candidates.

Every parcel goes through the ledger's acting protocol (claim → acting → link → verify →
done), so a kill never links a parcel twice: an item left *acting* is settled on the next run
by reading the parcel page, never by typing again.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger
from playwright.async_api import Page
from rich.console import Console

from robots.config import ReturnsScenario, Workspace
from robots.errors import BusinessException
from robots.ledger import Ledger, State, new_run_id
from robots.reports.returns import LinkRow, ReturnsSummary, SuggestionRow, write_returns_report
from robots.returns.backoffice import ReturnsBackOffice
from robots.returns.desktop import Desktop, DesktopError
from robots.returns.export import read_export
from robots.returns.matching import (
    LINK,
    SUGGEST,
    Candidate,
    CandidateIndex,
    MatchDecision,
    UnlabelledParcel,
    match_parcel,
    phone_parts,
)
from robots.returns.terminal import WarehouseTerminal
from robots.runtime.browser import BrowserSession, browser_session, screenshot
from robots.runtime.credentials import Credential
from robots.runtime.logs import run_logging
from robots.runtime.redaction import Redactor
from robots.runtime.retry import TEMPORARY, RetryPolicy
from robots.runtime.stopping import StopRequest, exit_code

ROBOT = "returns"
REASONS = {
    "NEEDS_REVIEW": "有可能的订单但不够确定，请从候选中选择",
    "NO_MATCH": "没有找到可能的订单",
    "LINKED_ELSEWHERE": "包裹已被他人关联到其他单据",
    "SYSTEM_ERROR": "系统异常，多次重试仍失败，请人工处理",
}


@dataclass
class ReturnsResult:
    run_id: str
    report: Path
    run_dir: Path
    counts: dict[str, int]

    @property
    def exit_code(self) -> int:
        return exit_code(self.counts)


def lookups(parcel: UnlabelledParcel) -> list[str]:
    """What to type into the back office's search for one parcel: waybill, phone tail, name."""
    queries = []
    if parcel.waybill:
        queries.append(parcel.waybill)
    _, tail = phone_parts(parcel.sender_phone)
    if tail:
        queries.append(tail)
    name = parcel.sender_name.strip()
    if len(name) >= 2 and not name.endswith(("*", "先生", "女士", "小姐")):
        queries.append(name)
    return queries


class ReturnsRobot:
    """One run of the returns robot: one terminal, one back office."""

    def __init__(
        self,
        ws: Workspace,
        scenario: ReturnsScenario,
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
        cfg = ws.config
        self.retry = RetryPolicy(cfg.retry.attempts, cfg.retry.wait_initial_s, cfg.retry.wait_max_s)
        self.run_id = new_run_id(ROBOT)
        self.run_dir = ws.path(cfg.paths.logs) / self.run_id
        self.evidence_dir = self.run_dir / "evidence"
        self.real_ledger = Ledger.at(ws.path(cfg.paths.ledger))
        self.ledger = Ledger.in_memory() if dry_run else self.real_ledger
        self.bo = ReturnsBackOffice(scenario)
        self.counts: dict[str, int] = {}
        self.linked: list[LinkRow] = []
        self.suggestions: list[SuggestionRow] = []
        self.unmatched: list[SuggestionRow] = []

    # -- entry point ----------------------------------------------------------------------
    def run(self) -> ReturnsResult:
        store = self.ws.credentials()
        web = store.get(self.scenario.shop.credential)
        terminal_credential = store.get(self.scenario.terminal.credential)
        redact = Redactor([*web.secrets, *terminal_credential.secrets])
        with run_logging(
            self.run_dir, redact, console=self.console, console_level=self.console_level
        ):
            started = datetime.now()
            self.ledger.begin_run(self.run_id, ROBOT, str(self.scenario_file), dry_run=self.dry_run)
            desktop = Desktop()
            try:
                asyncio.run(self._run(desktop, web, terminal_credential))
            finally:
                desktop.close()
                self.ledger.end_run(self.run_id, {"counts": self.counts})
            report = self.ws.path(self.ws.config.paths.reports) / (
                f"returns-{self.run_id}{'-dry-run' if self.dry_run else ''}.xlsx"
            )
            summary = ReturnsSummary(
                self.run_id,
                str(self.scenario_file),
                started,
                datetime.now(),
                self.dry_run,
                dict(self.counts),
            )
            write_returns_report(report, summary, self.linked, self.suggestions, self.unmatched)
            logger.info("report written to {}; counts {}", report, self.counts)
        if self.ledger is not self.real_ledger:
            self.ledger.close()
        self.real_ledger.close()
        return ReturnsResult(self.run_id, report, self.run_dir, dict(self.counts))

    async def _run(
        self, desktop: Desktop, web: Credential, terminal_credential: Credential
    ) -> None:
        terminal = WarehouseTerminal(desktop, self.scenario.terminal)
        terminal.require_running()
        b = self.ws.config.browser
        async with browser_session(
            executable=b.executable, headless=b.headless, timeout_ms=b.timeout_ms, trace=False
        ) as session:
            async for attempt in self.retry.retrying("back-office login"):
                with attempt:
                    await session.login(self.bo.login_form, web)
            context = await session.new_context()
            page = await context.new_page()
            await self._settle_interrupted(session, web, page)
            terminal.close_dialogs()
            terminal.ensure_logged_in(terminal_credential)
            export = terminal.export(self.run_dir / self.scenario.export.file_name)
            parcels = read_export(export, self.scenario.export)
            logger.info("{} unlabelled parcels exported", len(parcels))
            todo = self._claim(parcels)
            try:
                for n, parcel in enumerate(todo):
                    if self.stop.requested:
                        self.counts["stopped"], self.counts["not_started"] = 1, len(todo) - n
                        break
                    await self._item(session, web, terminal, desktop, page, parcel)
            finally:
                terminal.close_dialogs()

    # -- phases ---------------------------------------------------------------------------
    async def _with_session(
        self, session: BrowserSession, web: Credential, what: str, step: Any
    ) -> Any:
        return await session.retried(self.retry, self.bo.login_form, web, what, step)

    async def _settle_interrupted(
        self, session: BrowserSession, web: Credential, page: Page
    ) -> None:
        """Parcels a killed run left *acting*: read the parcel page, never type again here."""
        for item in self.ledger.items(ROBOT, state=State.ACTING):
            target = item.action.removeprefix("link:")
            now = await self._with_session(
                session,
                web,
                f"settling {item.item_key}",
                lambda k=item.item_key: self.bo.linked_to(page, k),
            )
            if not now:
                self.ledger.finish(
                    ROBOT,
                    item.item_key,
                    State.PENDING,
                    run_id=self.run_id,
                    message="interrupted before the link landed",
                )
                continue
            self.ledger.finish(
                ROBOT,
                item.item_key,
                State.DONE,
                run_id=self.run_id,
                acted=now == target,
                details={"settled_on_resume": now},
            )
            self._count("settled_on_resume")

    def _claim(self, parcels: list[UnlabelledParcel]) -> list[UnlabelledParcel]:
        todo: list[UnlabelledParcel] = []
        for parcel in parcels:
            if self.limit is not None and len(todo) >= self.limit:
                break
            if self.ledger.claim(
                ROBOT,
                parcel.parcel_id,
                run_id=self.run_id,
                fingerprint=parcel.waybill,
                details={"waybill": parcel.waybill},
            ):
                todo.append(parcel)
            else:
                self._count("unchanged_since_last_run")
        logger.info("{} parcels to work on", len(todo))
        return todo

    async def _candidates(
        self, session: BrowserSession, web: Credential, page: Page, parcel: UnlabelledParcel
    ) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        for q in lookups(parcel):
            rows = await self._with_session(
                session, web, f"searching {q}", lambda q=q: self.bo.search(page, q)
            )
            for c in rows:
                found.setdefault(c.order_id, c)
        return list(found.values())

    # -- one parcel -----------------------------------------------------------------------
    async def _item(
        self,
        session: BrowserSession,
        web: Credential,
        terminal: WarehouseTerminal,
        desktop: Desktop,
        page: Page,
        parcel: UnlabelledParcel,
    ) -> None:
        key = parcel.parcel_id
        attempt_no = 0
        evidence: list[str] = []
        with logger.contextualize(item=key):
            try:
                async for attempt in self.retry.retrying(f"parcel {key}"):
                    with attempt:
                        attempt_no += 1
                        try:
                            await self._attempt(session, web, terminal, page, parcel)
                        except TEMPORARY:
                            shot = desktop.screenshot(
                                self.evidence_dir / f"{key}-desktop-attempt{attempt_no}.png"
                            )
                            web_shot = await screenshot(
                                page, self.evidence_dir / f"{key}-web-attempt{attempt_no}.png"
                            )
                            evidence += [s for s in (shot, web_shot) if s]
                            raise
            except BusinessException as exc:
                self.ledger.finish(
                    ROBOT,
                    key,
                    State.BUSINESS_EXCEPTION,
                    run_id=self.run_id,
                    reason_code=exc.code,
                    message=str(exc),
                )
                logger.info("to a person: {} ({})", exc.code, exc)
            except TEMPORARY as exc:
                # we may have acted: an acting item stays acting for the next run to settle
                message = self.ledger.give_up(
                    ROBOT, key, exc, run_id=self.run_id, evidence=evidence
                )
                self._count("system_exception")
                reports = self.ws.path(self.ws.config.paths.reports)
                link = os.path.relpath(evidence[0], reports) if evidence else ""
                self.unmatched.append(
                    SuggestionRow(parcel, "SYSTEM_ERROR", REASONS["SYSTEM_ERROR"], (), None, link)
                )
                logger.error("system exception after {} attempts: {}", attempt_no, message)

    async def _attempt(
        self,
        session: BrowserSession,
        web: Credential,
        terminal: WarehouseTerminal,
        page: Page,
        parcel: UnlabelledParcel,
    ) -> None:
        """Look up, decide, link, verify. Safe to repeat: an acting item is verified first."""
        key = parcel.parcel_id
        item = self.ledger.get(ROBOT, key)
        assert item is not None
        if item.state == State.ACTING:
            target = item.action.removeprefix("link:")
            now = await self.bo.linked_to(page, key)
            if now == target:  # an earlier attempt's link landed
                self._done(parcel, target, item.details.get("decision", {}))
                return
            if now:
                raise BusinessException("LINKED_ELSEWHERE", f"{REASONS['LINKED_ELSEWHERE']}: {now}")
        candidates = await self._candidates(session, web, page, parcel)
        decision = match_parcel(parcel, CandidateIndex(candidates), self.scenario.matching)
        if decision.outcome != LINK:
            self._hand_over(decision)
            code = "NEEDS_REVIEW" if decision.outcome == SUGGEST else "NO_MATCH"
            raise BusinessException(code, REASONS[code], item_id=key)
        assert decision.best is not None
        target = decision.target
        facts = {
            "score": decision.best.score,
            "signals": list(decision.best.signals),
            "runner_up": decision.runner_up_score,
            "order_id": decision.best.candidate.order_id,
        }
        if self.dry_run:
            self._done(parcel, target, facts)
            return
        self.ledger.start_acting(
            ROBOT,
            key,
            run_id=self.run_id,
            action=f"link:{target}",
            amount_cents=0,
            fingerprint=parcel.waybill,
            daily_cap_cents=None,
            day=datetime.now().date(),
        )
        terminal.link(key, target)
        now = await self._verified_link(page, key, target)
        if now != target:
            raise BusinessException("LINKED_ELSEWHERE", f"{REASONS['LINKED_ELSEWHERE']}: {now}")
        self._done(parcel, target, facts)

    async def _verified_link(self, page: Page, parcel_id: str, target: str) -> str:
        """The parcel page, read until the terminal's link shows (the terminal answers first)."""
        deadline = asyncio.get_running_loop().time() + self.scenario.terminal.timeout_s
        while True:
            now = await self.bo.linked_to(page, parcel_id)
            if now or asyncio.get_running_loop().time() > deadline:
                if not now:
                    raise DesktopError(f"the link of {parcel_id} to {target} did not land")
                return now
            await asyncio.sleep(0.1)

    # -- bookkeeping ----------------------------------------------------------------------
    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _done(self, parcel: UnlabelledParcel, target: str, facts: dict[str, Any]) -> None:
        self.ledger.finish(
            ROBOT,
            parcel.parcel_id,
            State.DONE,
            run_id=self.run_id,
            details={"linked_to": target, "decision": facts},
        )
        self._count("linked")
        self.linked.append(
            LinkRow(
                parcel,
                target,
                str(facts.get("order_id", "")),
                int(facts.get("score", 0)),
                tuple(facts.get("signals", ())),
                facts.get("runner_up"),
                self.bo.parcel_url(parcel.parcel_id),
            )
        )
        logger.info(
            "{} {} → {}", "would link" if self.dry_run else "linked", parcel.parcel_id, target
        )

    def _hand_over(self, decision: MatchDecision) -> None:
        code = "NEEDS_REVIEW" if decision.outcome == SUGGEST else "NO_MATCH"
        self._count("suggested" if code == "NEEDS_REVIEW" else "unmatched")
        row = SuggestionRow(
            decision.parcel, code, REASONS[code], decision.top, decision.runner_up_score, ""
        )
        (self.suggestions if code == "NEEDS_REVIEW" else self.unmatched).append(row)
