"""Cross-cutting behaviour around runs and items, as hook objects with no-op defaults.

In the spirit of dramatiq's middleware: a robot never writes progress bars, evidence or
timing itself; the engine calls every hook at the same points for every robot. Subclass
``Hooks`` and override what you need.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from robots.engine.item import Item
    from robots.engine.run import RobotRun, RunResult


class Hooks:
    """Every hook the engine calls; each does nothing unless overridden."""

    def before_run(self, run: RobotRun) -> None:
        """The run's logging is set up and the run is recorded in the ledger."""

    def after_run(self, run: RobotRun, result: RunResult) -> None:
        """The run has ended (or failed) and its report is written."""

    def work_started(self, run: RobotRun, total: int) -> None:
        """``total`` items are about to be worked."""

    def work_grew(self, run: RobotRun, total: int) -> None:
        """More items arrived while the work went on (a crawl): ``total`` in all so far."""

    def work_advanced(self, run: RobotRun) -> None:
        """The work loop finished one element of its list (worked as an item or not)."""

    def work_finished(self, run: RobotRun) -> None:
        """The work loop is over (every item done, or the run was asked to stop)."""

    def before_item(self, item: Item) -> None:
        """An item is about to be worked."""

    def after_item(self, item: Item) -> None:
        """An item is finished: ``item.outcome`` says how."""

    async def failed_attempt(self, item: Item, attempt: int, exc: BaseException) -> None:
        """One attempt of an item failed with a system exception (it may be retried)."""


class Evidence(Hooks):
    """A masked screenshot of every surface an item works on (page, desktop) per failed
    attempt; the item's trace chunk is kept by the item itself."""

    async def failed_attempt(self, item: Item, attempt: int, exc: BaseException) -> None:
        for surface in item.surfaces:
            shot = await surface.shoot(
                item.run.evidence_dir / f"{item.name}{surface.suffix}-attempt{attempt}.png"
            )
            if shot:
                item.evidence.append(shot)


class Progress(Hooks):
    """A rich progress bar (N/total, elapsed, ETA) while items are worked; quiet when the
    console is not a terminal."""

    def __init__(self, console: Any, label: str) -> None:
        self.console, self.label = console, label
        self._bar: Any = None
        self._task: Any = None

    def work_started(self, run: RobotRun, total: int) -> None:
        if not getattr(self.console, "is_terminal", False) or total == 0:
            return
        self._start(total)

    def work_grew(self, run: RobotRun, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=total)
        else:
            self.work_started(run, total)

    def _start(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn(f"[bold]{self.label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def work_advanced(self, run: RobotRun) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def work_finished(self, run: RobotRun) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class ItemLog(Hooks):
    """One log line per finished item: what became of it."""

    def after_item(self, item: Item) -> None:
        logger.debug(
            "{}: {}{}", item.key, item.outcome, f" ({item.reason_code})" if item.reason_code else ""
        )


class UnreadableGuard(Hooks):
    """Stops a run early when a broken scenario makes most items unreadable: after
    ``min_items`` items, more than ``share`` of them handed over as UNREADABLE_FIELD stops
    the run (the items in hand finish; the rest stay pending) and names the field, so a wrong
    selector does not grind through thousands of items."""

    def __init__(self, share: float, min_items: int) -> None:
        self.share, self.min_items = share, min_items
        self.items = 0
        self.unreadable: Counter[tuple[str, str]] = Counter()
        self.shown: dict[tuple[str, str], str] = {}

    def after_item(self, item: Item) -> None:
        self.items += 1
        exc = item.exception
        field = getattr(exc, "field", None)
        if item.reason_code == "UNREADABLE_FIELD" and field is not None:
            key = (field, getattr(exc, "selector", ""))
            self.unreadable[key] += 1
            problem = getattr(exc, "problem", "")
            shown = repr(getattr(exc, "shown", ""))
            self.shown[key] = f"{problem}; the page showed {shown}" if problem else shown
        total = sum(self.unreadable.values())
        run = item.run
        if run.broken or self.items < self.min_items or total <= self.share * self.items:
            return
        (field, selector), n = self.unreadable.most_common(1)[0]
        run.broken = (
            f"the scenario's field {field!r} (selector {selector!r}) could not be read on {n} "
            f"of {self.items} items ({self.shown[(field, selector)]}); "
            "the run stopped early: fix the scenario and run again"
        )
        run.stop.request(f"{total} of {self.items} items unreadable", console=False)


class ElsewhereGuard(Hooks):
    """Stops a run whose items mostly turn out "handled elsewhere" (no longer at the stage
    the list showed them in): after ``min_items`` items, more than ``share`` of them so means
    the list does not show what the scenario says it does (a status filter the shop ignores,
    ``{status}`` filled with the wrong values), not that others did the work. The items in
    hand finish; the rest stay pending; the run fails and alerts instead of ending green."""

    def __init__(self, share: float, min_items: int) -> None:
        self.share, self.min_items = share, min_items
        self.items = self.elsewhere = 0

    def after_item(self, item: Item) -> None:
        self.items += 1
        self.elsewhere += item.elsewhere
        run = item.run
        if run.broken or self.items < self.min_items or self.elsewhere <= self.share * self.items:
            return
        run.broken = (
            f"{self.elsewhere} of {self.items} items were no longer where the list showed them "
            "(handled elsewhere): the list does not show what the scenario says (a status "
            "filter the shop ignores? list.path, list.status_values or the status map wrong?); "
            "the run stopped early: check them with robots scenario probe and run again"
        )
        run.stop.request(f"{self.elsewhere} of {self.items} items handled elsewhere", console=False)
