"""Actions sent in batches where a shop offers them (批量同意), under the same acting protocol.

Items are read and decided one by one as always. An item whose decision the shop's batch can
carry is marked *acting* in the ledger (money reserved against the cap, in the same
transaction) and queued here (``Item.queue``); its block then ends without pressing. One lane
of its own sends the queue ``size`` items at a time while the other lanes read on, then
settles each item from what the shop shows of its record after the batch, with the robot's
``ActingRules``: landed → *done* (ours, counted); anything else (not landed, changed, not
shown, a batch that failed or whose answer never came) → the item is worked again on the
per-item path, which starts from the live record (``Item.verdict``), so nothing is pressed
twice and nothing is lost. A run killed with items queued leaves them *acting*: the next
run settles them by reading, as for any interrupted action.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from loguru import logger

from robots.engine.item import ActingRules, Verdict, landed_elsewhere_than_its_block
from robots.errors import BusinessException, SessionExpired, first_line
from robots.runtime.retry import TEMPORARY

if TYPE_CHECKING:
    from robots.engine.run import Lane, RobotRun

P = TypeVar("P")  # what the shop's batch needs of one item (the record as decided)
R = TypeVar("R")  # a live record as the page shows it after the batch
# a batch that ends in one of these is not pressed again: its items are read one by one
FAILED_BATCH: tuple[type[BaseException], ...] = (*TEMPORARY, BusinessException)


@dataclass
class Queued(Generic[P]):
    """One item waiting for the batch: its key, the action marked, what the batch needs, the
    item's workbook row, and what the work loop would work again if the batch does not
    settle it."""

    key: str
    action: str
    payload: P
    row: dict[str, Any]
    again: Any


@dataclass
class BatchStats:
    batches: int = 0
    sent: int = 0  # items put into a batch the shop was asked to take
    landed: int = 0  # items a batch settled as ours
    again: int = 0  # items handed back to the per-item path


@dataclass
class ActBatch(Generic[P, R]):
    """The queue of one run's batchable actions and the lane that presses them.

    ``press(page, payloads)`` does the shop's batch on ``page`` and returns what the page
    then shows of each record, keyed by ``shown_as(payload)`` (a record not shown is simply
    absent).
    ``landed(queued, live)`` books an item the batch settled as ours (money, log; it may
    add to ``queued.row``) right before its ledger row is written *done*, counted as
    ``counts``.
    """

    run: RobotRun
    rules: ActingRules[R]
    press: Callable[[Any, list[P]], Awaitable[Mapping[str, R]]]
    shown_as: Callable[[P], str]  # the key ``press`` answers an item's record by
    landed: Callable[[Queued[P], R], None]
    size: int = 20
    counts: tuple[str, ...] = ()  # what an item the batch settled as ours counts as
    stats: BatchStats = field(default_factory=BatchStats)
    again: list[Any] = field(default_factory=list)  # for the per-item path, in order
    _queue: list[Queued[P]] = field(default_factory=list)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False

    def add(self, key: str, action: str, payload: P, *, row: dict[str, Any], again: Any) -> None:
        """Queue an item already marked *acting* (``Item.queue`` does both)."""
        self._queue.append(Queued(key, action, payload, row, again))
        if len(self._queue) >= self.size:
            self._ready.set()

    @asynccontextmanager
    async def serving(self, lane: Callable[[], Any]) -> AsyncIterator[ActBatch[P, R]]:
        """Send full batches from a lane of their own while the block runs; at its end, send
        what is left and wait. A block that fails leaves the queue *acting* for the next run
        to settle by reading (nothing is pressed after a failure)."""
        task = asyncio.create_task(self._serve(lane))
        try:
            yield self
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        self._closing = True
        self._ready.set()
        await task

    async def _serve(self, lane: Callable[[], Any]) -> None:
        async with lane() as current:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._queue and (len(self._queue) >= self.size or self._closing):
                    chunk, self._queue = self._queue[: self.size], self._queue[self.size :]
                    await self._send(current, chunk)
                if self._closing and not self._queue:
                    return

    async def _send(self, lane: Lane, chunk: list[Queued[P]]) -> None:
        run = self.run
        self.stats.batches += 1
        self.stats.sent += len(chunk)
        logins = run.web.session.logins if run.web is not None else 0
        try:
            shown = await self.press(lane.page, [q.payload for q in chunk])
        except FAILED_BATCH as exc:
            # never pressed again here: each item is read live on the per-item path
            logger.warning(
                "a batch of {} failed ({}: {}); each is worked on its own",
                len(chunk),
                type(exc).__name__,
                first_line(exc),
            )
            await self._evidence(lane)
            if isinstance(exc, SessionExpired) and run.web is not None:
                await run.web.relogin(seen=logins)
            self._work_again(chunk)
            return
        unsettled = []
        for q in chunk:
            live = shown.get(self.shown_as(q.payload))
            if live is None or self.rules.judge(q.action, live) != Verdict.LANDED:
                unsettled.append(q)
                continue
            self.landed(q, live)  # the robot's bookkeeping (it may add to the row)
            landed_elsewhere_than_its_block(
                run,
                self.rules,
                q.key,
                q.action,
                live,
                details={"batch": self.stats.batches, "row": q.row},
                counts=self.counts,
            )
            self.stats.landed += 1
        if unsettled:
            logger.info(
                "{} of {} in batch {} did not land as sent; each is worked on its own",
                len(unsettled),
                len(chunk),
                self.stats.batches,
            )
            self._work_again(unsettled)

    def _work_again(self, chunk: list[Queued[P]]) -> None:
        self.stats.again += len(chunk)
        self.again += [q.again for q in chunk]

    async def _evidence(self, lane: Lane) -> None:
        from robots.runtime.browser import screenshot

        shot = await screenshot(
            lane.page, self.run.evidence_dir / f"batch-{self.stats.batches}.png"
        )
        if shot:
            logger.info("the batch's page: {}", shot)


__all__ = ["ActBatch", "BatchStats", "Queued"]
