"""One robot run, written once: run id and folder, ledger, retry policy, logging, the browser
and its login, the work loop, the typed result and its exit code.

A robot is a small class that gets a ``RobotRun`` and supplies ``work()`` (what to do) and a
report writer; everything else (recording the run in the ledger, mapping foreign errors at
one boundary, counting, stopping between items, evidence, progress) happens here the same
way for every robot.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from robots.engine.health import FieldHealth, health
from robots.engine.hooks import ElsewhereGuard, Evidence, Hooks, ItemLog, Progress, UnreadableGuard
from robots.engine.item import ActingRules, Count, Item
from robots.engine.pace import Pace
from robots.errors import (
    LedgerUnavailable,
    RobotsError,
    ScenarioUnreadable,
    SessionExpired,
    first_line,
    map_foreign,
)
from robots.ledger import Ledger, RunView, new_run_id, patiently
from robots.runtime.clock import DEFAULT_ZONE, ShopClock
from robots.runtime.retry import TEMPORARY, RetryPolicy
from robots.runtime.stopping import STOPPED_EXIT_CODE, StopRequest

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

    from robots.config import Workspace
    from robots.runtime.browser import BrowserSession, LoginForm
    from robots.runtime.credentials import Credential

T = TypeVar("T")
# the counts of the item a cluster worker works in this task (robots.cluster.worker)
ITEM_TALLY: ContextVar[Counter[str] | None] = ContextVar("item_tally", default=None)
CLAIM_CHUNK = 500  # claims a ledger transaction holds (one commit, one fsync)


@dataclass
class RunResult:
    """What a run did; ``exit_code`` is derived here and nowhere else."""

    robot: str
    run_id: str
    run_dir: Path
    report: Path | None
    counts: dict[str, int]
    stopped: bool = False
    failure: str = ""  # "Kind: first line" of the error that ended the run, if one did
    failure_exit: int = 1
    details: dict[str, Any] = field(default_factory=dict)  # robot-specific (money, scan id)
    # a field unreadable on more than this share of its reads fails the run ([early_stop])
    field_share: float = 1.0
    stop_exit: int = STOPPED_EXIT_CODE  # 130 when Ctrl-C stopped it (runtime.stopping)

    @property
    def fields(self) -> list[FieldHealth]:
        """The fields this run could not read on some of its pages (from its counts)."""
        return health(self.counts)

    @property
    def broken_fields(self) -> list[FieldHealth]:
        """Those unreadable on more than ``field_share`` of their reads."""
        return [h for h in self.fields if h.share > self.field_share]

    @property
    def exit_code(self) -> int:
        """Failed → the error's code; stopped early → 143 (130 by Ctrl-C); items needing an
        operator, or a
        field unreadable on more than its share of reads → 1."""
        if self.failure:
            return self.failure_exit
        if self.stopped:
            return self.stop_exit
        return 1 if self.counts.get(Count.SYSTEM_EXCEPTION) or self.broken_fields else 0


@dataclass(frozen=True)
class RunOptions:
    """How a run was asked for, the same for every robot (the CLI's common options)."""

    dry_run: bool = False  # decide everything, change nothing, write nothing a real run reads
    limit: int | None = None  # work on at most this many items now (the next run goes on)
    console: Any = None  # a rich console for the progress bar and console log lines
    verbose: bool = False  # log every item on the console
    stop: StopRequest | None = None  # set by SIGTERM: finish the item in hand, then stop
    cluster: bool = False  # items go to the cluster's workers (robots.cluster), not lanes here
    # how the items go there: opens the coordinator's side of the cluster for a run
    # (``robots.cluster.coordinator.Dispatch.open``, given by the command: the engine knows
    # no cluster), its ``work`` taking the place of the lanes here
    dispatch: Callable[[Workspace, str], Any] | None = None
    join_run: str | None = None  # a worker's view of a coordinator's run: its id, no envelope


class Web:
    """A logged-in browser session with its login form and credential: relogin on expiry."""

    def __init__(
        self,
        run: RobotRun,
        session: BrowserSession,
        form: LoginForm | None,
        credential: Credential | None,
    ) -> None:
        self.run, self.session, self.form, self.credential = run, session, form, credential

    async def relogin(self, *, seen: int) -> None:
        if self.form is not None and self.credential is not None:
            await self.session.refresh_login(self.form, self.credential, seen=seen)

    @asynccontextmanager
    async def lane(
        self,
        *,
        anonymous: bool = False,
        prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Lane]:
        """A browser context and page for one worker of the work loop."""
        context = await self.session.new_context(anonymous=anonymous)
        if prepare is not None:
            await prepare(context)
        lane = Lane(context, await context.new_page(), self.session.trace)
        try:
            yield lane
        finally:
            await self.session.close_context(context)


@dataclass
class Lane:
    """One worker's browser context and page. With ``tracing`` on, an item's retries are
    traced: recording starts at its first failed attempt (a trace of every attempt costs
    ~20 % of the CPU of a run that never fails, bench/refunds.py) and the trace is kept
    when the item ends in a system exception."""

    context: Any
    page: Any
    tracing: bool
    items_done: int = 0
    recording: bool = False

    async def trace_retries(self) -> None:
        """An attempt failed: record what the next ones do."""
        if not self.tracing or self.recording:
            return
        try:
            await self.context.tracing.start(screenshots=False, snapshots=True)
            self.recording = True
        except Exception as exc:  # tracing must never turn a result into a failure
            logger.warning("could not start a trace: {}", exc)

    async def finish_trace(self, keep_as: Path | None) -> str | None:
        """Stop recording the item; its trace saved at ``keep_as`` if given."""
        if not self.recording:
            return None
        self.recording = False
        try:
            if keep_as is None:
                await self.context.tracing.stop()
                return None
            keep_as.parent.mkdir(parents=True, exist_ok=True)
            await self.context.tracing.stop(path=str(keep_as))
            return str(keep_as)
        except Exception as exc:  # tracing must never turn a result into a failure
            logger.warning("trace {} failed: {}", keep_as, exc)
            return None

    async def next_item(self) -> None:
        """A fresh tab every ``PAGE_RECYCLE_EVERY`` items (a long-lived tab slows down)."""
        from robots.runtime.browser import recycled

        self.items_done += 1
        self.page = await recycled(self.page, self.items_done)


class RobotRun:
    """One run of one robot against one shop (or one terminal)."""

    def __init__(
        self,
        ws: Workspace,
        robot: str,
        scenario_file: Path,
        *,
        shop_zone: str = DEFAULT_ZONE,
        options: RunOptions | None = None,
        hooks: Iterable[Hooks] = (),
        run_prefix: str | None = None,
        reasons: Mapping[str, str] | None = None,
        reason_counts: Mapping[str, str] | None = None,
        clock: ShopClock | None = None,
    ) -> None:
        options = options or RunOptions()
        self.ws, self.robot, self.scenario_file = ws, robot, scenario_file
        self.dry_run, self.limit = options.dry_run, options.limit
        self.stop = options.stop or StopRequest()
        self.console = options.console
        self.console_level = "INFO" if options.verbose else "WARNING"
        self.clock = clock or ShopClock(shop_zone)
        cfg = ws.config
        self.retry = RetryPolicy(cfg.retry.attempts, cfg.retry.wait_initial_s, cfg.retry.wait_max_s)
        self.run_id = options.join_run or new_run_id(run_prefix or robot)
        self.cluster = options.cluster
        self._open_dispatch = options.dispatch
        self.dispatch: Any = None  # the coordinator's side of the cluster (robots.cluster)
        self._keys: dict[int, str] = {}  # with the cluster: each claimed item's ledger key
        self.run_dir = ws.path(cfg.paths.logs) / self.run_id
        self.evidence_dir = self.run_dir / "evidence"
        self.real_ledger = Ledger.of(ws)
        # a dry run decides everything and writes nothing a real run would read
        self.ledger = Ledger.in_memory() if self.dry_run else self.real_ledger
        guard = cfg.early_stop
        self.hooks: list[Hooks] = [
            Evidence(),
            ItemLog(),
            Progress(self.console, run_prefix or robot),
            UnreadableGuard(guard.unreadable_share, guard.min_items),
            ElsewhereGuard(guard.elsewhere_share, guard.min_items),
            *hooks,
        ]
        self.counts: Counter[str] = Counter()
        self.stopped = False
        self.secrets: list[str] = []
        self.web: Web | None = None
        self.broken = ""  # set when a guard stopped the run: why (see hooks.UnreadableGuard)
        self._reasons = reasons or {}
        # what a hand-over for each reason code counts as, beyond handed_to_person
        # ("*": any other business reason): the robot's ``REASON_COUNTS``
        self.reason_counts: Mapping[str, str] = reason_counts or {}

    # -- bookkeeping ---------------------------------------------------------------------------
    def count(self, what: str, n: int = 1) -> None:
        self.counts[str(what)] += n
        tally = ITEM_TALLY.get()
        if tally is not None:  # a cluster worker: what this item counted, for its coordinator
            tally[str(what)] += n

    async def retried(
        self,
        what: str,
        step: Callable[[], Awaitable[T]],
        *,
        failed: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> T:
        """``step`` with the run's bounded retries of system exceptions (``[retry]``): the
        one way the engine repeats a step. A lost session is logged in again before the next
        attempt; ``failed(exc)`` runs after each failed one (an item's evidence: the item's
        ``attempt`` is this with its screenshots and trace). ``step`` must be safe to repeat
        (start from the live record); a business exception is never retried."""
        async for attempt in self.retry.retrying(what):
            with attempt:
                logins = self.web.session.logins if self.web is not None else 0
                try:
                    return await step()
                except TEMPORARY as exc:
                    if failed is not None:
                        await failed(exc)
                    if isinstance(exc, SessionExpired) and self.web is not None:
                        await self.web.relogin(seen=logins)
                    raise
        raise AssertionError("unreachable")

    def reason_text(self, code: str) -> str:
        return self._reasons.get(code, code)

    def cap_left(self, cap_cents: int | None, cap_scope: str = "") -> int | None:
        """The daily cap as this run may use it: a dry run also counts what real runs spent."""
        if cap_cents is None or not self.dry_run:
            return cap_cents
        spent = self.real_ledger.money_committed(self.robot, self.clock.today(), cap_scope)
        return cap_cents - spent

    def claim(
        self,
        items: Iterable[T],
        claim: Callable[[T], tuple[str, str, dict[str, Any]]],
        *,
        unchanged: str = Count.UNCHANGED,
        up_to_limit: bool = True,
        recheck: frozenset[str] = frozenset(),
    ) -> list[T]:
        """Record each item as pending in the ledger (``claim(item)`` gives its key,
        fingerprint and details); returns those that need work, in order. Items already done,
        or handed over and unchanged since, are counted under ``unchanged``. With
        ``up_to_limit`` claiming stops once ``--limit`` items are claimed. Hand-overs whose
        reason is in ``recheck`` are worked again even when unchanged."""
        todo: list[T] = []
        rest = iter(items)
        while True:
            # a few hundred claims to a transaction; never more than --limit still allows
            room = CLAIM_CHUNK
            if up_to_limit and self.limit is not None:
                room = min(room, self.limit - len(todo))
            chunk = list(itertools.islice(rest, max(room, 0)))
            if not chunk:
                return todo
            entries = [claim(x) for x in chunk]
            claimed = self.ledger.claim_many(
                self.robot, entries, run_id=self.run_id, recheck=recheck
            )
            for x, (key, _, _), needs_work in zip(chunk, entries, claimed, strict=True):
                if needs_work:
                    todo.append(x)
                    if self.cluster:
                        self._keys[id(x)] = key
                else:
                    self.count(unchanged)

    def key_of(self, x: object) -> str | None:
        """The ledger key ``claim`` gave an item of this run (kept with the cluster only)."""
        return self._keys.get(id(x))

    @contextmanager
    def holding(self, key: str) -> Iterator[bool]:
        """Whether this process may work ``key`` now: always on one machine; with the
        cluster, True only while no worker holds it (robots.cluster.holds)."""
        if self.dispatch is None:
            yield True
            return
        with self.dispatch.holds.hold(self.robot, key) as mine:
            yield mine

    def item(
        self,
        key: str,
        *,
        lane: Lane | None = None,
        acting: ActingRules[Any] | None = None,
        name: str = "",
        surfaces: Sequence[Any] = (),
    ) -> Item:
        return Item(self, key, lane=lane, acting=acting, name=name, surfaces=list(surfaces))

    # -- the run envelope ----------------------------------------------------------------------
    def run(
        self,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        where: str,
        report: Callable[[RunResult], Path | None],
        summary: dict[str, Any] | None = None,
        details: Callable[[], dict[str, Any]] = dict,
        left_behind: Callable[[RunView], Path] | None = None,
    ) -> RunResult:
        """Log, record the run, do ``work`` (foreign errors mapped at this one boundary),
        record its end (with the failure, if any), write the report whatever happened.
        ``left_behind(run)`` writes the workbook of an earlier run that was killed before it
        could (from the ledger), so its hand-overs reach a person."""
        from robots.runtime.logs import run_logging
        from robots.runtime.redaction import Redactor

        summary = dict(summary or {})
        failure: RobotsError | None = None
        with run_logging(
            self.run_dir,
            Redactor(self.secrets),
            console=self.console,
            console_level=self.console_level,
        ):
            logger.info(
                "run {} of {} against {} (dry run: {})",
                self.run_id,
                self.scenario_file,
                where,
                self.dry_run,
            )
            # while it runs, the run's row says which process it is (the console stops it)
            process = {"pid": os.getpid(), "host": socket.gethostname()}
            self.ledger.begin_run(
                self.run_id,
                self.robot,
                str(self.scenario_file),
                dry_run=self.dry_run,
                summary={**summary, "process": process},
            )
            if left_behind is not None and not self.dry_run:
                self._write_left_behind(left_behind)
            for hook in self.hooks:
                hook.before_run(self)
            try:
                with map_foreign(where), self._dispatching():
                    asyncio.run(work())
            except RobotsError as exc:
                failure = exc
                logger.bind(file_only=True).error("the run failed: {}", first_line(exc))
            result = RunResult(
                self.robot,
                self.run_id,
                self.run_dir,
                None,
                dict(self.counts),
                stopped=self.stopped,
                failure=first_line(failure) if failure else "",
                failure_exit=failure.exit_code if failure else 1,
                details=self._at_end(details, failure),
                field_share=self.ws.config.early_stop.field_share,
                stop_exit=self.stop.exit_code,
            )
            for h in result.fields:  # in the log; the CLI says it after its summary line
                logger.bind(file_only=True).warning(
                    "field {}: could not be read on {} of {} reads{}",
                    h.field,
                    h.unreadable,
                    h.reads,
                    " (over the share [early_stop] field_share allows: exit 1)"
                    if h in result.broken_fields
                    else "",
                )
            summary_at_end = {
                **summary,
                "counts": result.counts,
                **({"stopped": True} if result.stopped else {}),
                **({"failure": result.failure} if failure else {}),
                "exit_code": result.exit_code,
                **{k: str(v) if isinstance(v, Decimal) else v for k, v in result.details.items()},
            }
            self._at_end(lambda: self.ledger.end_run(self.run_id, summary_at_end), failure)
            try:
                result.report = report(result)
                if result.report is not None:
                    logger.info("report written to {}; counts {}", result.report, result.counts)
            except OSError as exc:
                logger.error("could not write the report: {}", exc)
                if failure is None:
                    raise
            for hook in self.hooks:
                hook.after_run(self, result)
        if self.ledger is not self.real_ledger:
            self.ledger.close()
        self.real_ledger.close()
        if failure is not None:
            failure.run_result = result  # type: ignore[attr-defined]
            raise failure
        return result

    def _at_end(self, call: Callable[[], T], failure: RobotsError | None) -> T:
        """``call()``, a ledger read or write the run's end needs, through a ledger outage (a
        cluster's PostgreSQL restarting); a run that already gave up on the ledger tries only
        briefly. Still away: the run's failure (or the outage) is raised, no end recorded
        (`robots runs` says interrupted; the next run settles it and writes its workbook)."""
        wait_s = 10.0 if isinstance(failure, LedgerUnavailable) else self.ws.cluster.outage_wait_s
        try:
            return patiently(call, url=self.real_ledger.engine.url, wait_s=wait_s)
        except LedgerUnavailable as exc:
            raise (failure or exc) from None

    @contextmanager
    def _dispatching(self) -> Iterator[None]:
        """With the cluster, the broker and the item holds, open for the run's work."""
        if not self.cluster:
            yield
            return
        assert self._open_dispatch is not None, "RunOptions(cluster=True, dispatch=…)"
        self.dispatch = self._open_dispatch(self.ws, self.robot)
        try:
            yield
        finally:
            self.dispatch.close()

    def _write_left_behind(self, write: Callable[[RunView], Path]) -> None:
        for view in self.ledger.interrupted_runs(self.robot):
            if view.run_id == self.run_id:
                continue
            try:
                path = write(view)
            except OSError as exc:
                logger.error("could not write the workbook of run {}: {}", view.run_id, exc)
                continue
            self.ledger.annotate_run(view.run_id, {"report": str(path), "report_by": self.run_id})
            logger.warning(
                "run {} was interrupted before it wrote its workbook; written now: {}",
                view.run_id,
                path,
            )

    # -- the browser ---------------------------------------------------------------------------
    @asynccontextmanager
    async def browser(
        self,
        *,
        login: LoginForm | None = None,
        credential: Credential | None = None,
        trace: bool | None = None,
        args: Sequence[str] = (),
    ) -> AsyncIterator[Web]:
        """Chromium as robots.toml says (plus the robot's launch ``args``), logged in (with
        retries) when ``login`` is given."""
        from robots.runtime.browser import browser_session

        b = self.ws.config.browser
        async with browser_session(
            args=[*args, *b.args],
            executable=b.executable,
            headless=b.headless,
            timeout_ms=b.timeout_ms,
            trace=b.trace_on_failure if trace is None else trace,
        ) as session:
            web = Web(self, session, login, credential)
            if login is not None and credential is not None:
                async for attempt in self.retry.retrying("login"):
                    with attempt:
                        await session.login(login, credential)
            self.web = web
            try:
                yield web
            finally:
                self.web = None

    # -- the work loop -------------------------------------------------------------------------
    async def work(
        self,
        todo: Sequence[T],
        handle: Callable[[T, Any], Awaitable[None]],
        *,
        lanes: int | Pace = 1,
        lane: Callable[[], Any] | None = None,
        feed: AsyncIterator[Sequence[T]] | None = None,
    ) -> None:
        """Work through ``todo`` with ``lanes`` workers (each opening ``lane()``, an async
        context manager, or none), a fixed number or a ``Pace`` that moves it as the run
        goes; ``feed`` yields more items while the work goes on (a crawl, its items already
        claimed), and the work ends when it is spent. Between items, a stop request ends the
        loop and the items not started stay pending for the next run."""
        if self.cluster:  # the cluster's workers work them; this process waits and watches
            assert self.dispatch is not None, "the cluster's dispatch opens with the run"
            await self.dispatch.work(self, todo, handle, feed=feed)
            if self.broken:
                raise ScenarioUnreadable(self.broken)
            return
        pace = lanes if isinstance(lanes, Pace) else Pace(fixed=lanes)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for x in todo:
            queue.put_nowait(x)
        total, ended, running = len(todo), False, 0
        for hook in self.hooks:
            hook.work_started(self, total)

        def waiting() -> int:
            return queue.qsize() - ended  # the end mark is no item

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                queue.put_nowait(_END)

        def grow(group: asyncio.TaskGroup) -> None:
            nonlocal running
            while running < min(pace.target, waiting()):
                running += 1  # more pages pay: open one
                group.create_task(worker(group))

        async def fill(group: asyncio.TaskGroup) -> None:
            nonlocal total
            assert feed is not None
            try:
                async for more in feed:
                    for x in more:
                        queue.put_nowait(x)
                    total += len(more)
                    for hook in self.hooks:
                        hook.work_grew(self, total)
                    grow(group)
                    if self.stop.requested:
                        break
            finally:
                end()
                close = getattr(feed, "aclose", None)
                if close is not None:
                    await close()  # its browser page is closed now, not when collected

        async def worker(group: asyncio.TaskGroup) -> None:
            nonlocal running
            async with lane() if lane is not None else _no_lane() as current:
                while not self.stop.requested and running <= pace.target:
                    x = await queue.get()
                    if x is _END or self.stop.requested:  # asked to stop while it waited
                        queue.put_nowait(x)  # the end for the other workers, or not started
                        break
                    await handle(x, current)
                    for hook in self.hooks:
                        hook.work_advanced(self)
                    pace.observe()
                    grow(group)
                    if current is not None and hasattr(current, "next_item"):
                        await current.next_item()
                running -= 1  # counted out before its lane closes: one leaves, not all

        if feed is None:
            end()
        try:
            if todo or feed is not None:
                async with asyncio.TaskGroup() as group:
                    if feed is not None:
                        group.create_task(fill(group))
                    grow(group)
        except BaseExceptionGroup as group_error:  # one worker's bug: raise it as it was
            raise group_error.exceptions[0] from None
        finally:
            for hook in self.hooks:
                hook.work_finished(self)
        if self.stop.requested and waiting():
            self.stopped = True
            self.count(Count.NOT_STARTED, waiting())
        elif self.stop.requested:
            self.stopped = True
        if self.broken:
            raise ScenarioUnreadable(self.broken)


_END = object()  # the work queue's end: no more items will come


@asynccontextmanager
async def _no_lane() -> AsyncIterator[None]:
    yield None
