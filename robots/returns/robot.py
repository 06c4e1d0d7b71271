"""The returns robot: export the unlabelled parcels from the warehouse terminal, find each one's
order in the back office, link the confident matches in the terminal, verify every link on the
web, and hand the rest to a person with the candidates.

Every parcel goes through the ledger's acting protocol (claim → acting → link → verify →
done), so a kill never links a parcel twice: an item left *acting* is settled on the next run
by reading the parcel page, never by typing again.
"""

from __future__ import annotations

import asyncio
import enum
import os
from functools import partial
from pathlib import Path
from typing import Any

from loguru import logger
from playwright.async_api import Page

from robots.engine.item import (
    ActingRules,
    Action,
    DesktopSurface,
    Item,
    Outcome,
    Verdict,
    settle_acting,
)
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult, Web
from robots.errors import BusinessException, DesktopError
from robots.ledger import ItemView, State
from robots.returns.backoffice import ReturnsBackOffice
from robots.returns.desktop import Desktop
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
from robots.returns.report import LinkRow, ReturnsSummary, SuggestionRow, write_returns_report
from robots.returns.scenario import ReturnsScenario
from robots.returns.terminal import WarehouseTerminal

ROBOT = "returns"
REASONS = {
    "NEEDS_REVIEW": "有可能的订单但不够确定，请从候选中选择",
    "NO_MATCH": "没有找到可能的订单",
    "LINKED_ELSEWHERE": "包裹已被他人关联到其他单据",
    "SYSTEM_ERROR": "系统异常，多次重试仍失败，请人工处理",
}


class ReturnsCount(enum.StrEnum):
    LINKED = "linked"
    SUGGESTED = "suggested"
    UNMATCHED = "unmatched"
    LINKED_ELSEWHERE = "linked_elsewhere"


def judge(action: str, linked_to: str) -> Verdict:
    """Did ``link:<target>`` land? The parcel page's link status says."""
    if not linked_to:
        return Verdict.NOT_LANDED
    return Verdict.LANDED if linked_to == action.removeprefix("link:") else Verdict.ELSEWHERE


ACTING = ActingRules[str](judge=judge, describe=lambda now: now or "(not linked)")


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


class ReturnsRobot(BaseRobot):
    """One run of the returns robot: one terminal, one back office."""

    NAME, REASONS = ROBOT, REASONS
    scenario: ReturnsScenario

    def setup(self) -> None:
        self.bo = ReturnsBackOffice(self.scenario)
        self.linked: list[LinkRow] = []
        self.suggestions: list[SuggestionRow] = []
        self.unmatched: list[SuggestionRow] = []

    # -- entry point ----------------------------------------------------------------------
    def perform(self) -> RunResult:
        store = self.ws.credentials()
        web_credential = store.get(self.scenario.shop.credential)
        terminal_credential = store.get(self.scenario.terminal.credential)
        self.run.secrets += [*web_credential.secrets, *terminal_credential.secrets]
        run = self.run

        async def work() -> None:
            desktop = Desktop()
            try:
                terminal = WarehouseTerminal(desktop, self.scenario.terminal)
                terminal.require_running()
                async with (
                    run.browser(
                        login=self.bo.login_form, credential=web_credential, trace=False
                    ) as web,
                    web.lane() as lane,
                ):

                    async def read(view: ItemView) -> str:
                        return await web.retried(
                            f"settling {view.item_key}",
                            lambda: self.bo.linked_to(lane.page, view.item_key),
                        )

                    await settle_acting(run, ACTING, read)
                    terminal.close_dialogs()
                    terminal.ensure_logged_in(terminal_credential)
                    export = terminal.export(run.run_dir / self.scenario.export.file_name)
                    parcels = read_export(export, self.scenario.export)
                    logger.info("{} unlabelled parcels exported", len(parcels))
                    todo = self._claim(parcels)
                    try:
                        await run.work(
                            todo,
                            lambda parcel, _: self._item(web, terminal, desktop, lane, parcel),
                        )
                    finally:
                        terminal.close_dialogs()
            finally:
                desktop.close()

        return run.run(work, where=f"the back office at {self.bo.base}", report=self._write_report)

    def _claim(self, parcels: list[UnlabelledParcel]) -> list[UnlabelledParcel]:
        todo = self.run.claim(parcels, lambda p: (p.parcel_id, p.waybill, {"waybill": p.waybill}))
        logger.info("{} parcels to work on", len(todo))
        return todo

    async def _candidates(self, web: Web, page: Page, parcel: UnlabelledParcel) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        for q in lookups(parcel):
            rows: list[Candidate] = await web.retried(
                f"searching {q}", partial(self.bo.search, page, q)
            )
            for c in rows:
                found.setdefault(c.order_id, c)
        return list(found.values())

    # -- one parcel -----------------------------------------------------------------------
    async def _item(
        self,
        web: Web,
        terminal: WarehouseTerminal,
        desktop: Desktop,
        lane: Lane,
        parcel: UnlabelledParcel,
    ) -> None:
        decided: dict[str, MatchDecision] = {}
        async with self.run.item(
            parcel.parcel_id, lane=lane, acting=ACTING, surfaces=[DesktopSurface(desktop)]
        ) as item:
            await item.attempt(
                lambda page: self._attempt(web, terminal, page, item, parcel, decided),
                f"parcel {parcel.parcel_id}",
            )
        if item.outcome in (Outcome.HANDED_OVER, Outcome.SYSTEM_EXCEPTION):
            self._hand_over(parcel, item, decided.get("decision"))

    async def _attempt(
        self,
        web: Web,
        terminal: WarehouseTerminal,
        page: Page,
        item: Item,
        parcel: UnlabelledParcel,
        decided: dict[str, MatchDecision],
    ) -> None:
        """Look up, decide, link, verify. Safe to repeat: an acting item is verified first."""
        key = parcel.parcel_id
        view = item.ledger_view
        if view is not None and view.state == State.ACTING:
            now = await self.bo.linked_to(page, key)
            verdict = item.verdict(now)
            if verdict == Verdict.LANDED:  # an earlier attempt's link landed
                self._done(item, parcel, now, view.details.get("decision", {}))
                return
            if verdict == Verdict.ELSEWHERE:
                raise BusinessException("LINKED_ELSEWHERE", f"{REASONS['LINKED_ELSEWHERE']}: {now}")
        candidates = await self._candidates(web, page, parcel)
        decision = decided["decision"] = match_parcel(
            parcel, CandidateIndex(candidates), self.scenario.matching
        )
        if decision.outcome != LINK:
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

        async def press() -> str:
            terminal.link(key, target)
            return await self._verified_link(page, key, target)

        acted = await item.act(
            Action(f"link:{target}", parcel.waybill),
            press=press,
            read_live=lambda: self.bo.linked_to(page, key),
        )
        if acted.verdict == Verdict.ELSEWHERE:
            raise BusinessException(
                "LINKED_ELSEWHERE", f"{REASONS['LINKED_ELSEWHERE']}: {acted.live}"
            )
        self._done(item, parcel, target, facts)

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
    def _done(
        self, item: Item, parcel: UnlabelledParcel, target: str, facts: dict[str, Any]
    ) -> None:
        item.done(details={"linked_to": target, "decision": facts})
        self.run.count(ReturnsCount.LINKED)
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
            "{} {} → {}", "would link" if self.run.dry_run else "linked", parcel.parcel_id, target
        )

    def _hand_over(
        self, parcel: UnlabelledParcel, item: Item, decision: MatchDecision | None
    ) -> None:
        """Every parcel a person must see reaches a sheet: suggestions with their candidates,
        the rest (no match, linked elsewhere, system errors) under Unmatched."""
        code = item.reason_code or "SYSTEM_ERROR"
        reason = REASONS.get(code, code)
        if code == "SYSTEM_ERROR":
            reports = self.ws.path(self.ws.config.paths.reports)
            evidence = os.path.relpath(item.evidence[0], reports) if item.evidence else ""
            self.unmatched.append(SuggestionRow(parcel, code, reason, (), None, evidence))
            return
        if code == "LINKED_ELSEWHERE":
            self.run.count(ReturnsCount.LINKED_ELSEWHERE)
            self.unmatched.append(SuggestionRow(parcel, code, item.message, (), None, ""))
            return
        top = decision.top if decision else ()
        runner_up = decision.runner_up_score if decision else None
        row = SuggestionRow(parcel, code, reason, top, runner_up, "")
        if code == "NEEDS_REVIEW":
            self.run.count(ReturnsCount.SUGGESTED)
            self.suggestions.append(row)
        else:
            self.run.count(ReturnsCount.UNMATCHED)
            self.unmatched.append(row)

    def _write_report(self, result: RunResult) -> Path:
        run = self.run
        summary = ReturnsSummary(
            run.run_id, str(run.scenario_file), *self.run_times(), run.dry_run, dict(result.counts)
        )
        return write_returns_report(
            self.report_path("returns"), summary, self.linked, self.suggestions, self.unmatched
        )


Robot = ReturnsRobot  # what the registry builds (robots.engine.spec)
