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
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, ClassVar

from loguru import logger
from playwright.async_api import Page

from robots.engine.item import (
    ActingRules,
    Action,
    DesktopSurface,
    Item,
    Verdict,
    settle_acting,
)
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult, Web
from robots.errors import BusinessException, DesktopError
from robots.ledger import ItemView, State
from robots.returns import report
from robots.returns.backoffice import ReturnsBackOffice
from robots.returns.desktop import Desktop
from robots.returns.export import read_export
from robots.returns.lookup import CandidateSearch, Found
from robots.returns.matching import LINK, SUGGEST, UnlabelledParcel, match_candidates
from robots.returns.report import REASONS, parcel_row
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
    """One run of the returns robot: one terminal, one back office.

    On the cluster (``robots run returns --cluster``) the run exports the parcel list from
    the terminal of its own machine and sends the parcels to the workers that take
    ``returns``: each worker searches the back office on its pages and types the links into
    the terminal on its own display (``prepare_worker``). Whoever types holds the display
    (``Desktop.held``) for that one step, so the run's export and a worker's links on one
    machine never type into one form at once."""

    NAME, REASONS = ROBOT, REASONS
    REPORT: ClassVar[Any] = report
    # every parcel a person must see reaches a sheet from the ledger; counted by kind
    REASON_COUNTS: ClassVar[dict[str, str]] = {
        "LINKED_ELSEWHERE": ReturnsCount.LINKED_ELSEWHERE,
        "NEEDS_REVIEW": ReturnsCount.SUGGESTED,
        "*": ReturnsCount.UNMATCHED,
    }
    ITEM = UnlabelledParcel
    scenario: ReturnsScenario

    def setup(self) -> None:
        self.bo = ReturnsBackOffice(self.scenario, tally=self.run.count)
        self.desktop: Desktop | None = None
        self.terminal: WarehouseTerminal | None = None

    def open_browser(self) -> AbstractAsyncContextManager[Web]:
        credential = self.credential(self.scenario.shop.credential)
        return self.run.browser(login=self.bo.login_form, credential=credential, trace=False)

    def _open_terminal(self) -> WarehouseTerminal:
        """The terminal on this machine's display, its dialogs closed, logged in."""
        if self.terminal is None:
            desktop = Desktop()
            try:
                terminal = WarehouseTerminal(desktop, self.scenario.terminal)
                terminal.require_running()
            except BaseException:
                desktop.close()
                raise
            self.desktop, self.terminal = desktop, terminal
        assert self.desktop is not None
        credential = self.credential(self.scenario.terminal.credential)
        with self.desktop.held():
            self.terminal.close_dialogs()
            self.terminal.ensure_logged_in(credential)
        return self.terminal

    async def prepare_worker(self) -> None:
        self._open_terminal()

    def release_worker(self) -> None:
        if self.desktop is not None:
            self.desktop.close()
            self.desktop = self.terminal = None

    # -- entry point ----------------------------------------------------------------------
    def perform(self) -> RunResult:
        for name in (self.scenario.shop.credential, self.scenario.terminal.credential):
            self.credential(name)  # before the run is recorded: a missing one is bad input
        run = self.run

        async def work() -> None:
            try:
                terminal = self._open_terminal()  # no terminal, no run: before the browser
                async with self.open_browser() as web:
                    async with web.lane() as lane:

                        async def read(view: ItemView) -> str:
                            return await self.run.retried(
                                f"settling {view.item_key}",
                                lambda: self.bo.linked_to(lane.page, view.item_key),
                            )

                        await settle_acting(run, ACTING, read)
                    with terminal.desktop.held():
                        export = terminal.export(run.run_dir / self.scenario.export.file_name)
                    parcels = read_export(export, self.scenario.export)
                    logger.info("{} unlabelled parcels exported", len(parcels))
                    todo = self._claim(parcels)
                    try:
                        await run.work(todo, self._parcel, lane=web.lane)
                    finally:
                        with terminal.desktop.held():
                            terminal.close_dialogs()
            finally:
                self.release_worker()

        return self.run_work(work, where=f"the back office at {self.bo.base}")

    def _claim(self, parcels: list[UnlabelledParcel]) -> list[UnlabelledParcel]:
        todo = self.run.claim(parcels, lambda p: (p.parcel_id, p.waybill, {"waybill": p.waybill}))
        logger.info("{} parcels to work on", len(todo))
        return todo

    async def _search(self, page: Page, parcel: UnlabelledParcel) -> CandidateSearch:
        """Every lookup a person would make for the parcel, every page of each."""
        search = CandidateSearch(parcel, self.scenario.search)
        for lookup in search.lookups():
            found: Found = await self.run.retried(
                f"searching {lookup}", partial(self.bo.search, page, lookup)
            )
            search.add(lookup, found)
        return search

    # -- one parcel -----------------------------------------------------------------------
    async def _parcel(self, parcel: UnlabelledParcel, lane: Lane) -> None:
        """The work loop's handler (here, or in a cluster worker): one parcel on ``lane``."""
        terminal = self.terminal
        assert self.run.web is not None and terminal is not None, (
            "the browser and terminal are open"
        )
        await self._item(terminal, lane, parcel)

    async def _item(
        self, terminal: WarehouseTerminal, lane: Lane, parcel: UnlabelledParcel
    ) -> None:
        async with self.run.item(
            parcel.parcel_id,
            lane=lane,
            acting=ACTING,
            surfaces=[DesktopSurface(terminal.desktop)],
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
                lambda page: self._attempt(terminal, page, item, parcel),
                f"parcel {parcel.parcel_id}",
            )

    async def _attempt(
        self,
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
        search = await self._search(page, parcel)
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
            with terminal.desktop.held():
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
        item.done(details={"linked_to": target, "decision": facts}, counts=[ReturnsCount.LINKED])
        logger.info(
            "{} {} → {}", "would link" if self.run.dry_run else "linked", parcel.parcel_id, target
        )
