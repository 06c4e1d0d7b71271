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
from robots.returns.lookup import CandidateSearch, Found
from robots.returns.matching import LINK, SUGGEST, UnlabelledParcel, match_candidates
from robots.returns.report import REASONS, parcel_row, write_from_ledger, write_run
from robots.returns.scenario import ReturnsScenario
from robots.returns.terminal import WarehouseTerminal

ROBOT = "returns"


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


class ReturnsRobot(BaseRobot):
    """One run of the returns robot: one terminal, one back office."""

    NAME, REASONS = ROBOT, REASONS
    scenario: ReturnsScenario

    def setup(self) -> None:
        self.bo = ReturnsBackOffice(self.scenario)

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

        return run.run(
            work,
            where=f"the back office at {self.bo.base}",
            report=self._write_report,
            left_behind=lambda view: write_run(
                run.ledger, view, self.report_path("returns", view.run_id), now=run.clock.now()
            ),
        )

    def _claim(self, parcels: list[UnlabelledParcel]) -> list[UnlabelledParcel]:
        todo = self.run.claim(parcels, lambda p: (p.parcel_id, p.waybill, {"waybill": p.waybill}))
        logger.info("{} parcels to work on", len(todo))
        return todo

    async def _search(self, web: Web, page: Page, parcel: UnlabelledParcel) -> CandidateSearch:
        """Every lookup a person would make for the parcel, every page of each."""
        search = CandidateSearch(parcel, self.scenario.search)
        for lookup in search.lookups():
            found: Found = await web.retried(
                f"searching {lookup}", partial(self.bo.search, page, lookup)
            )
            search.add(lookup, found)
        return search

    # -- one parcel -----------------------------------------------------------------------
    async def _item(
        self,
        web: Web,
        terminal: WarehouseTerminal,
        desktop: Desktop,
        lane: Lane,
        parcel: UnlabelledParcel,
    ) -> None:
        async with self.run.item(
            parcel.parcel_id, lane=lane, acting=ACTING, surfaces=[DesktopSurface(desktop)]
        ) as item:
            item.row.update(
                parcel_row(
                    parcel.parcel_id,
                    parcel.waybill,
                    parcel.sender_name,
                    parcel.sender_phone,
                    parcel.items,
                    parcel.received_at,
                    self.bo.parcel_url(parcel.parcel_id),
                )
            )
            await item.attempt(
                lambda page: self._attempt(web, terminal, page, item, parcel),
                f"parcel {parcel.parcel_id}",
            )
        if item.outcome in (Outcome.HANDED_OVER, Outcome.SYSTEM_EXCEPTION):
            self._count_hand_over(item)

    async def _attempt(
        self,
        web: Web,
        terminal: WarehouseTerminal,
        page: Page,
        item: Item,
        parcel: UnlabelledParcel,
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
                raise BusinessException("LINKED_ELSEWHERE", f"{REASONS['LINKED_ELSEWHERE']}：{now}")
        search = await self._search(web, page, parcel)
        decision = match_candidates(
            parcel,
            search.candidates.values(),
            self.scenario.matching,
            complete=search.complete,
        )
        if decision.outcome != LINK:
            code = "NEEDS_REVIEW" if decision.outcome == SUGGEST else "NO_MATCH"
            if search.cut:
                item.row["cut"] = [str(lookup) for lookup in search.cut]
            item.row["top"] = [
                {
                    "target": s.candidate.target,
                    "order_id": s.candidate.order_id,
                    "score": s.score,
                    "signals": list(s.signals),
                }
                for s in decision.top
            ]
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
                "LINKED_ELSEWHERE", f"{REASONS['LINKED_ELSEWHERE']}：{acted.live}"
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
        logger.info(
            "{} {} → {}", "would link" if self.run.dry_run else "linked", parcel.parcel_id, target
        )

    def _count_hand_over(self, item: Item) -> None:
        """Counted by kind; every parcel a person must see reaches a sheet from the ledger
        (suggestions with their candidates; no match, linked elsewhere and system errors
        under 未匹配)."""
        code = item.reason_code or "SYSTEM_ERROR"
        if code == "LINKED_ELSEWHERE":
            self.run.count(ReturnsCount.LINKED_ELSEWHERE)
        elif code == "NEEDS_REVIEW":
            self.run.count(ReturnsCount.SUGGESTED)
        elif code != "SYSTEM_ERROR":
            self.run.count(ReturnsCount.UNMATCHED)

    def _write_report(self, result: RunResult) -> Path:
        run = self.run
        view = run.ledger.find_run(run.run_id)
        assert view is not None
        return write_from_ledger(run.ledger, view, self.report_path("returns"))


Robot = ReturnsRobot  # what the registry builds (robots.engine.spec)
