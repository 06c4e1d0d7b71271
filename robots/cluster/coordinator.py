"""The run's side of the cluster: send the claimed items to the workers, watch the ledger.

``robots run <robot> --cluster`` is an ordinary run (its lock, its ledger row, its settle,
list and claim, its report), except that ``RobotRun.work`` hands each claimed item to the
robot's queue instead of working it in a lane here, then follows the items in the shared
ledger until none of them is pending or acting: the progress bar, the stop between items
and the counts come from there. An item that stops moving while the queue is empty and no
worker holds it (its worker died after taking it) is sent again; the holds and the acting
protocol make that safe. A coordinator that dies leaves its run interrupted in the ledger;
the next run settles what was left acting and claims the rest again.

The ledger (PostgreSQL) or the broker (Redis) going away mid-run is a pause: every call the
watch makes to them waits through an outage (one line when it starts, one when it ends, a
warning to the alert channels after ``[cluster] outage_alert_s``) and gives up after
``outage_wait_s`` with the one-line ``LedgerUnavailable`` / ``BrokerUnavailable`` (exit 69).
A run asked to stop takes what is still queued off the queue and waits for the items that
workers have in hand, so its counts and workbook hold them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from robots.cluster.app import TASK, cluster_app, queue_of, unavailable
from robots.cluster.holds import Holds
from robots.cluster.outage import Outage, outage_of
from robots.engine.item import Count
from robots.errors import BrokerUnavailable, ConfigError, LedgerUnavailable
from robots.ledger import ItemView, State

if TYPE_CHECKING:
    from celery import Celery

    from robots.config import Workspace
    from robots.engine.run import RobotRun

POLL_S = 0.5  # how often the ledger is read for the items' progress


def finished(view: ItemView | None, run_id: str) -> bool:
    """Whether the item needs nothing more from this run's workers: it moved on (done,
    handed over, given up), was left acting with a problem noted for the next run to
    settle, or is another run's now."""
    if view is None or view.run_id != run_id:
        return True
    if view.state == State.PENDING:
        return False
    if view.state == State.ACTING:
        return bool(view.reason_code)
    return True


def noted(view: ItemView | None, run_id: str) -> bool:
    """Whether a worker noted what it counted for the item in this run (the last write of
    its task): a finished item is waited for until then, so no count is read too early."""
    if view is None or view.run_id != run_id:
        return True  # another run's now: nothing of it is this run's to count
    return (view.details.get("worked") or {}).get("run") == run_id


def scenario_sha(files: Sequence[Path]) -> str:
    """The fingerprint of a scenario file and the files its robot reads beside it (word
    lists, price lists): a coordinator's and its workers' must agree."""
    digest = hashlib.sha256()
    for file in files:
        try:
            data = file.read_bytes()
        except OSError:
            data = b"(missing)"  # the robot names the missing file when it needs it
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def worked_counts(view: ItemView, run_id: str) -> dict[str, int]:
    worked = view.details.get("worked") or {}
    return dict(worked.get("counts") or {}) if worked.get("run") == run_id else {}


@dataclass
class Job:
    """One item as a task message: everything a worker needs to rebuild the run's view."""

    key: str
    message: dict[str, Any]


class Dispatch:
    """The broker connection and the item holds of one coordinating run."""

    def __init__(self, ws: Workspace, robot: str, app: Celery, holds: Holds) -> None:
        self.ws, self.robot, self.app, self.holds = ws, robot, app, holds
        self.queue = queue_of(robot)
        self.settings = ws.cluster
        self.sha: str | None = None
        waits = f"up to {self.settings.outage_wait_s:.0f} s ([cluster] outage_wait_s)"
        wait_zh = f"运行暂停等待（最多 {self.settings.outage_wait_s:.0f} 秒，之后退出 69）"
        self.outage = Outage(ws, "the run", waits, wait_zh)

    @classmethod
    def open(cls, ws: Workspace, robot: str) -> Dispatch:
        app = cluster_app(ws, "--cluster")
        return cls(ws, robot, app, Holds(ws.ledger_url))

    def close(self) -> None:
        self.holds.close()
        self.app.close()

    # -- the broker ---------------------------------------------------------------------------
    def _send(self, jobs: Sequence[Job]) -> None:
        with self.app.producer_or_acquire() as producer:
            for job in jobs:
                self.app.send_task(TASK, args=[job.message], queue=self.queue, producer=producer)

    def waiting(self) -> int:
        """Messages in the robot's queue not yet taken by a worker (a broker that does not
        answer raises: an empty answer would make every queued item look lost)."""
        with self.app.connection_for_read() as conn:
            channel = conn.default_channel  # connects: a broker away raises here
            try:
                declared = channel.queue_declare(self.queue, passive=True)
            except conn.channel_errors:  # "no such queue": nobody declared it yet
                return 0
            return int(declared.message_count)

    def purge(self) -> int:
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            try:
                return int(channel.queue_purge(self.queue) or 0)
            except conn.channel_errors:
                return 0

    # -- outages --------------------------------------------------------------------------------
    async def patiently(self, run: RobotRun, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` in a thread, waited for while the ledger or the broker is away:
        tried again with backoff (0.5 s to 5 s) until it answers, the run is asked to stop
        or ``[cluster] outage_wait_s`` has passed since the outage began (then one line,
        exit 69)."""

        def given_up(_state: RetryCallState) -> bool:
            since = self.outage.since
            over = since is not None and time.monotonic() - since >= self.settings.outage_wait_s
            return over or run.stop.requested

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda exc: outage_of(exc) is not None),
                wait=wait_exponential(multiplier=0.5, max=5.0),
                stop=given_up,
                before_sleep=lambda state: self._waiting_for(run, state),
                reraise=True,
            ):
                with attempt:
                    result = await asyncio.to_thread(call, *args)
        except Exception as exc:
            which = outage_of(exc)
            if which is None:
                raise
            raise self._gave_up(which, exc) from None
        self.outage.answered()
        return result

    def _waiting_for(self, run: RobotRun, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None:
            self.outage.failed(exc, robot=run.robot, run_id=run.run_id)

    def _gave_up(self, which: str, exc: BaseException) -> LedgerUnavailable | BrokerUnavailable:
        waited = self.outage.lasted_s
        if which == "ledger":
            from sqlalchemy.engine import make_url  # its repr masks the password

            error: LedgerUnavailable | BrokerUnavailable = LedgerUnavailable.of(
                make_url(self.ws.ledger_url), exc
            )
        else:
            error = unavailable(self.ws.broker_url or "", exc)
        error.args = (f"{error.args[0]} (waited {waited:.0f} s)",)
        self.outage.over()
        return error

    # -- the work -------------------------------------------------------------------------------
    def jobs(self, run: RobotRun, todo: Sequence[Any], handle: Callable[..., Any]) -> list[Job]:
        robot = getattr(handle, "__self__", None)
        name = getattr(handle, "__name__", "")
        if robot is None or getattr(robot, "run", None) is not run or not name:
            raise ConfigError(
                f"the {run.robot} robot cannot send this work to the cluster's workers "
                "(its items are not worked by a method of the robot); run it without --cluster",
                file=str(self.ws.file),
                key="cluster",
            )
        scenario = _relative(run.scenario_file, self.ws.root)
        if self.sha is None:  # the text this run loaded: a worker with another text refuses
            self.sha = scenario_sha([run.scenario_file, *robot.input_files()])
        shared, base_url = robot.shared(), getattr(robot, "base_url", None)
        jobs = []
        for x in todo:
            key = run.key_of(x)
            if key is None:
                raise ConfigError(
                    f"the {run.robot} robot works items it did not claim; they cannot go to "
                    "the cluster's workers: run it without --cluster",
                    file=str(self.ws.file),
                    key="cluster",
                )
            jobs.append(
                Job(
                    key,
                    {
                        "robot": run.robot,
                        "scenario": scenario,
                        "scenario_sha": self.sha,
                        "base_url": base_url,
                        "run_id": run.run_id,
                        "dry_run": run.dry_run,
                        "handler": name,
                        "shared": shared,
                        "key": key,
                        "item": robot.encode_item(x),
                    },
                )
            )
        return jobs

    async def work(
        self,
        run: RobotRun,
        todo: Sequence[Any],
        handle: Callable[[Any, Any], Awaitable[None]],
        *,
        feed: AsyncIterator[Sequence[Any]] | None = None,
    ) -> None:
        """Send ``todo`` (and what ``feed`` yields) to the workers; return when every item
        is finished in the ledger, or the run is asked to stop (what is still queued is taken
        off the queue and stays pending for the next run)."""
        jobs = self.jobs(run, todo, handle)
        for hook in run.hooks:
            hook.work_started(run, len(jobs))
        try:
            if jobs:
                await self.patiently(run, self._send, jobs)
            if feed is not None:  # a crawl: each batch goes out as it comes, the workers start
                try:
                    async for more in feed:
                        batch = self.jobs(run, more, handle)
                        await self.patiently(run, self._send, batch)
                        jobs += batch
                        for hook in run.hooks:
                            hook.work_grew(run, len(jobs))
                        if run.stop.requested:
                            break
                finally:
                    close = getattr(feed, "aclose", None)
                    if close is not None:
                        await close()
            if jobs:
                logger.info("{} items sent to the workers on queue {}", len(jobs), self.queue)
                await self._watch(run, jobs)
        finally:
            for hook in run.hooks:
                hook.work_finished(run)

    async def _watch(self, run: RobotRun, jobs: list[Job]) -> None:
        by_key = {j.key: j for j in jobs}
        open_keys = list(by_key)
        seen: dict[str, tuple[str, Any]] = {}  # key -> (state, updated_at) at the last look
        still_since: dict[str, float] = {}
        resend_after = self.settings.resend_after_s
        counts: Counter[str] = Counter()
        draining = False  # asked to stop: the queue emptied, the items in hand waited for
        drain_until = 0.0  # ... for as long as an item may take (visibility_timeout_s)
        gave_up: BrokerUnavailable | None = None  # the broker gone for good: drain, then fail
        left: list[str] = []  # not started, when the run stopped: the next run's
        reported: set[str] = set()  # held without moving: said once
        while open_keys:
            if not run.stop.requested:
                found = await self.patiently(run, run.ledger.find_run, run.run_id)
                broken = found.summary.get("broken") if found is not None else None
                if broken:  # a worker's guard found the scenario broken (hooks.UnreadableGuard)
                    run.broken = str(broken)
                    run.stop.request("a worker found the scenario unreadable", console=False)
            if run.stop.requested and not draining:
                draining, drain_until = True, time.monotonic() + self.settings.visibility_timeout_s
                taken = await self.patiently_or(0, run, self.purge)
                logger.warning(
                    "asked to stop: {} items taken off the queue; waiting for the items "
                    "workers have in hand",
                    taken,
                )
            views = await self.patiently_or(None, run, run.ledger.views, run.robot, open_keys)
            if views is None:  # stopping, and the ledger is away: nothing more to learn
                break
            now = time.monotonic()
            still: list[str] = []
            for key in open_keys:
                view = views.get(key)
                if finished(view, run.run_id) and noted(view, run.run_id):
                    if view is not None:
                        counts.update(worked_counts(view, run.run_id))
                    for hook in run.hooks:
                        hook.work_advanced(run)
                    continue
                still.append(key)
                mark = (view.state, view.updated_at) if view is not None else ("", None)
                if seen.get(key) != mark:
                    seen[key], still_since[key] = mark, now
            open_keys = still
            if draining:  # what no worker holds stays for the next run; the rest is waited for
                held = await self.patiently_or(None, run, self.holds.holders, self.robot, open_keys)
                if held is None:
                    break
                left += [k for k in open_keys if k not in held]
                open_keys = [k for k in open_keys if k in held]
                if open_keys and now >= drain_until:
                    logger.warning(
                        "{} items are still held by workers after {:.0f} s; the next run "
                        "settles them",
                        len(open_keys),
                        self.settings.visibility_timeout_s,
                    )
                    break
                if open_keys:
                    await asyncio.sleep(POLL_S)
                continue
            stuck = [k for k in open_keys if now - still_since[k] >= resend_after]
            try:
                await self._resend_or_report(run, stuck, by_key, reported, still_since, now)
            except (BrokerUnavailable, LedgerUnavailable) as exc:
                if run.stop.requested:  # given up because of the stop: the loop's top drains
                    continue
                if isinstance(exc, LedgerUnavailable):
                    raise
                # the broker gone for good: the items in hand are waited for, then it fails
                logger.error("{}; waiting for the items workers have in hand", exc)
                gave_up, draining = exc, True
                drain_until = now + self.settings.visibility_timeout_s
                continue
            if open_keys:
                await asyncio.sleep(POLL_S)
        for name, n in counts.items():
            run.count(name, n)
        left += open_keys
        if left:
            run.stopped = gave_up is None
            views = await self.patiently_or({}, run, run.ledger.views, run.robot, left)
            run.count(Count.NOT_STARTED, sum(1 for v in views.values() if v.state == State.PENDING))
        if gave_up is not None:
            raise gave_up

    async def _resend_or_report(
        self,
        run: RobotRun,
        stuck: list[str],
        by_key: dict[str, Job],
        reported: set[str],
        still_since: dict[str, float],
        now: float,
    ) -> None:
        """Items that have not moved for ``resend_after_s``: sent again when no worker holds
        them and the queue is empty (their message was lost: a worker died, Redis lost its
        data); said once when a worker holds them."""
        if stuck:
            holders = await self.patiently(run, self.holds.holders, self.robot, stuck)
            free = [k for k in stuck if k not in holders]
            if free and await self.patiently(run, self.waiting) == 0:
                logger.warning(
                    "{} items did not move for {:.0f} s and no worker holds them: sent again",
                    len(free),
                    self.settings.resend_after_s,
                )
                await self.patiently(run, self._send, [by_key[k] for k in free])
            unsaid = {k: h for k, h in holders.items() if k not in reported}
            if unsaid:
                self._report_held(unsaid)
                reported.update(unsaid)
            for k in stuck:
                still_since[k] = now

    async def patiently_or(
        self, otherwise: Any, run: RobotRun, call: Callable[..., Any], *args: Any
    ) -> Any:
        """``patiently``, for a run that is stopping: a server still away gives ``otherwise``
        (the stop is not turned into a failure; what is left stays for the next run)."""
        try:
            return await self.patiently(run, call, *args)
        except (LedgerUnavailable, BrokerUnavailable) as exc:
            if not run.stop.requested:
                raise
            logger.warning("stopping while a server is away: {}", exc)
            return otherwise

    def _report_held(self, holders: dict[str, str]) -> None:
        """Items that stopped moving while a worker still holds them: that worker may have
        stopped answering (frozen, its machine hung). They are sent again once its
        PostgreSQL session ends (the worker stopped or killed, or the server drops it)."""
        for holder in sorted(set(holders.values())):
            mine = sorted(k for k, h in holders.items() if h == holder)
            logger.warning(
                "{} items have not moved for {:.0f} s and are held by {}: {}; if that worker "
                "stopped answering, they are sent again when its session ends (stop or kill it)",
                len(mine),
                self.settings.resend_after_s,
                holder,
                ", ".join(mine[:5]) + (" …" if len(mine) > 5 else ""),
            )


def _relative(path: Path, root: Path) -> str:
    """The scenario as the workers find it: relative to the workspace when it is inside."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
