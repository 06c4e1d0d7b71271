"""The run's side of the cluster: send the claimed items to the workers, watch the ledger.

``robots run <robot> --cluster`` is an ordinary run (its lock, its ledger row, its settle,
list and claim, its report), except that ``RobotRun.work`` hands each claimed item to the
robot's queue instead of working it in a lane here, then follows the items in the shared
ledger until none of them is pending or acting: the progress bar, the stop between items
and the counts come from there. An item that stops moving while the queue is empty and no
worker holds it (its worker died after taking it) is sent again; the holds and the acting
protocol make that safe. A coordinator that dies leaves its run interrupted in the ledger;
the next run settles what was left acting and claims the rest again.
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

from robots.cluster.app import TASK, cluster_app, queue_of
from robots.cluster.holds import Holds
from robots.engine.item import Count
from robots.errors import ConfigError
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
        """Messages in the robot's queue not yet taken by a worker."""
        with self.app.connection_for_read() as conn:
            try:
                declared = conn.default_channel.queue_declare(self.queue, passive=True)
                return int(declared.message_count)
            except Exception:  # kombu says "no such queue" for a queue nobody declared yet
                return 0

    def purge(self) -> int:
        with self.app.connection_for_write() as conn:
            try:
                return int(conn.default_channel.queue_purge(self.queue) or 0)
            except Exception:
                return 0

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
                await asyncio.to_thread(self._send, jobs)
            if feed is not None:  # a crawl: each batch goes out as it comes, the workers start
                try:
                    async for more in feed:
                        batch = self.jobs(run, more, handle)
                        await asyncio.to_thread(self._send, batch)
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
        while open_keys:
            if not run.stop.requested:
                found = await asyncio.to_thread(run.ledger.find_run, run.run_id)
                broken = found.summary.get("broken") if found is not None else None
                if broken:  # a worker's guard found the scenario broken (hooks.UnreadableGuard)
                    run.broken = str(broken)
                    run.stop.request("a worker found the scenario unreadable", console=False)
            if run.stop.requested:
                taken = await asyncio.to_thread(self.purge)
                logger.warning("asked to stop: {} items taken off the queue", taken)
                break
            views = await asyncio.to_thread(run.ledger.views, run.robot, open_keys)
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
            stuck = [k for k in open_keys if now - still_since[k] >= resend_after]
            if stuck and await asyncio.to_thread(self.waiting) == 0:
                lost = [k for k in stuck if await asyncio.to_thread(self._free, k)]
                if lost:
                    logger.warning(
                        "{} items did not move for {:.0f} s and no worker holds them: sent again",
                        len(lost),
                        resend_after,
                    )
                    await asyncio.to_thread(self._send, [by_key[k] for k in lost])
                for k in stuck:
                    still_since[k] = now
            if open_keys:
                await asyncio.sleep(POLL_S)
        for name, n in counts.items():
            run.count(name, n)
        if open_keys:
            run.stopped = True
            left = run.ledger.views(run.robot, open_keys)
            run.count(Count.NOT_STARTED, sum(1 for v in left.values() if v.state == State.PENDING))

    def _free(self, key: str) -> bool:
        with self.holds.hold(self.robot, key) as mine:
            return mine


def _relative(path: Path, root: Path) -> str:
    """The scenario as the workers find it: relative to the workspace when it is inside."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
