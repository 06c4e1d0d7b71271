"""The workers' side of the cluster: item tasks worked in a logged-in browser kept per shop.

``robots worker`` is one Celery worker process with a pool of threads (``--pages``). Each
task is one item of one coordinator's run (``robots.cluster.coordinator``); the thread that
took it holds the item (``robots.cluster.holds``) for as long as it works it, and hands the
work to the process's one asyncio loop, where a **station** per robot, scenario and shop
keeps a browser logged in and up to ``--pages`` contexts (lanes) of it. The item goes
through the robot's own handler, so through the engine's item lifecycle and acting
protocol exactly as on one machine: a redelivered item that was left acting is re-read live
and settled (landed → done, not landed → decided again), never pressed twice.

What a worker counted for an item goes into the item's ledger row (``worked``), where the
coordinator adds it up. A worker that finds the scenario unusable (it cannot be loaded, the
browser will not start or log in, the unreadable-field guard trips) marks the run broken in
the ledger; its coordinator stops the run with that line (the next run is tried again). A
task names the fingerprint of the scenario its coordinator loaded (its text and the files
its robot reads beside it, ``BaseRobot.input_files``): an edited scenario gets a new station
(the old one closes when idle), and a run whose files differ from this machine's copies is
refused.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from robots.cluster.coordinator import finished, noted, scenario_sha
from robots.cluster.holds import Holds
from robots.cluster.outage import Outage
from robots.engine.item import ENDED_AS
from robots.errors import ConfigError, RobotsError, first_line
from robots.ledger import Ledger, is_outage, patiently

if TYPE_CHECKING:
    from celery import Celery

    from robots.config import Workspace
    from robots.engine.run import Lane, Web
    from robots.runtime.redaction import Redactor

KEEP_RUNS = 4  # robot objects a station keeps, one per coordinator run it has seen lately
LEDGER_WAIT_S = 30.0  # how long one task waits for a ledger that went away, then goes back
WATCH_S = 10.0  # how often a worker looks whether its servers answer


class ItemBack(Exception):
    """The ledger went away while this task's item was in hand: the item goes back to the
    queue, unacknowledged, for a worker to take again once the ledger answers."""


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Station:
    """One robot against one shop in this process: its browser, its lanes, its runs."""

    ws: Workspace
    robot: str
    scenario: str
    base_url: str | None
    pages: int
    redactor: Redactor
    loaded: Any = None
    web: Web | None = None
    lanes: asyncio.Queue[Lane] = field(default_factory=asyncio.Queue)
    opened_lanes: int = 0
    runs: OrderedDict[str, Any] = field(default_factory=OrderedDict)  # run id -> robot object
    prepared: set[str] = field(default_factory=set)  # runs whose robot's prepare_worker ran
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    broken: dict[str, str] = field(default_factory=dict)  # run id -> why its items are left
    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    sha: str = ""  # the scenario's fingerprint (with its robot's input files) as loaded here
    busy: int = 0  # items in hand
    retired: bool = False  # an edited scenario has a station of its own now: close when idle

    def robot_for(self, run_id: str, shared: dict[str, Any], sha: str = "") -> Any:
        """The robot as a worker of ``run_id`` (its counts, its ledger view of the run)."""
        from robots.engine.run import RunOptions
        from robots.registry import spec

        found = self.runs.get(run_id)
        if found is not None:
            self.runs.move_to_end(run_id)
            return found
        robot_spec = spec(self.robot)
        file = self.ws.path(Path(self.scenario))
        if self.loaded is None:
            self.loaded = robot_spec.load_scenario(file, base_url=self.base_url)
        robot = robot_spec.build()(
            self.ws, self.loaded, file, RunOptions(cluster=True, join_run=run_id)
        )
        inputs = [file, *robot.input_files()]
        here = scenario_sha(inputs)
        self.sha = self.sha or here  # the text (and files) this station loaded
        if sha and here != sha:
            robot.run.real_ledger.close()
            raise ConfigError(
                f"this worker's copy of {', '.join(str(f) for f in inputs)} differs from the "
                f"coordinator's (sha256 {here[:12]} here, {sha[:12]} there): give every "
                "machine the same workspace",
                file=str(file),
            )
        robot.join(shared)
        self.runs[run_id] = robot
        while len(self.runs) > KEEP_RUNS:
            old_id, old = self.runs.popitem(last=False)
            self._release(old_id, old)
        if self.web is not None:  # the station's browser serves this run's robot too
            self.web.run, robot.run.web = robot.run, self.web
        return robot

    async def open(self, robot: Any) -> None:
        async with self.opening:  # one browser, whichever item comes first
            if self.web is not None:
                return
            opening = robot.open_browser()  # the robot's credential is known from here
            for secret in robot.run.secrets:
                self.redactor.add(secret)
            self.web = await self.stack.enter_async_context(opening)
            logger.info("{}: browser open for {} ({})", self.robot, self.scenario, self.base_url)

    async def prepare(self, run_id: str, robot: Any) -> None:
        """The robot's own worker setup (``BaseRobot.prepare_worker``), once per run."""
        if run_id in self.prepared:
            return
        await robot.prepare_worker()
        for secret in robot.run.secrets:
            self.redactor.add(secret)
        self.prepared.add(run_id)

    def _release(self, run_id: str, robot: Any) -> None:
        self.prepared.discard(run_id)
        try:
            robot.release_worker()
        finally:
            robot.run.real_ledger.close()

    async def lane(self, robot: Any) -> Lane:
        if self.lanes.empty() and self.opened_lanes < self.pages:
            self.opened_lanes += 1
            assert self.web is not None
            try:
                return await self.stack.enter_async_context(robot.open_lane(self.web))
            except BaseException:
                self.opened_lanes -= 1
                raise
        return await self.lanes.get()

    async def close(self) -> None:
        await self.stack.aclose()
        for run_id, robot in list(self.runs.items()):
            self._release(run_id, robot)
        self.runs.clear()


def serve(start: Callable[[], int], *, most_wait_s: float = 60.0) -> int:
    """Run Celery's consumer (``start()``: a new one, to its end; its exit code) until it
    ends as asked (SIGTERM, Ctrl-C: Celery's warm or cold shutdown). One that ends on an
    error — Celery gives up on a broker connection it could not restore, as kombu's Redis
    transport sometimes does while Redis restarts — is started again after a backoff (1 s,
    doubling to ``most_wait_s``), with the same browsers: an outage never ends a worker."""
    from celery.worker import state

    def asked() -> bool:  # Celery's signal handlers set these
        return state.should_stop not in (None, False) or state.should_terminate not in (
            None,
            False,
        )

    wait = 1.0
    while True:
        began = time.monotonic()
        code = start()
        if code == 0 or asked():
            return code
        if time.monotonic() - began > most_wait_s:  # it had been working: a fresh backoff
            wait = 1.0
        logger.error(
            "the worker's Celery consumer stopped on an error (exit {}); starting it again "
            "in {:.0f} s",
            code,
            wait,
        )
        until = time.monotonic() + wait
        while time.monotonic() < until and not asked():
            time.sleep(0.1)
        if asked():
            return code
        wait = min(wait * 2, most_wait_s)


class Watch:
    """Whether the worker's servers answer, looked at every ``WATCH_S`` from a thread of its
    own: an outage is said when it begins and when it ends, and alerted once it has lasted
    ``[cluster] outage_alert_s``. The worker itself waits for ever: Celery reconnects to
    Redis, and an item whose ledger went away goes back to the queue (``ItemBack``)."""

    def __init__(self, ws: Workspace, app: Celery, ledger: Ledger, name: str) -> None:
        self.app, self.ledger, self.name = app, ledger, name
        self.outages = {
            which: Outage(ws, "the worker", "for ever", "工作机一直等待")
            for which in ("ledger", "broker")
        }
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="robots-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while not self.stopped.wait(WATCH_S):
            self.look()

    def look(self) -> None:
        for which, check in (("ledger", self.ledger.ping), ("broker", self._broker)):
            outage = self.outages[which]
            try:
                check()
            except Exception as exc:
                if outage.failed(exc, robot="worker", run_id=self.name) is None:
                    logger.warning("could not tell whether the {} answers: {}", which, exc)
            else:
                outage.answered()

    def _broker(self) -> None:
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)


class Runtime:
    """A worker process's robots: one event loop in a thread of its own, a station per
    robot, scenario and shop, an item hold per pool thread."""

    def __init__(self, ws: Workspace, *, pages: int, redactor: Redactor) -> None:
        self.ws, self.pages, self.redactor = ws, pages, redactor
        self.ledger = Ledger.of(ws)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="robots-loop")
        self.thread.start()
        self.stations: dict[tuple[str, str, str | None], Station] = {}
        self._local = threading.local()
        self._all_holds: list[Holds] = []
        self._holds_lock = threading.Lock()
        self.worked: Counter[str] = Counter()  # what this process did, for its last line

    def _holds(self) -> Holds:
        holds: Holds | None = getattr(self._local, "holds", None)
        if holds is None:
            holds = self._local.holds = Holds(self.ws.ledger_url)
            with self._holds_lock:
                self._all_holds.append(holds)
        return holds

    # -- one task ---------------------------------------------------------------------------
    def work(self, message: dict[str, Any]) -> str:
        """Work one item message (in a pool thread); returns what became of it, for the log.
        ``ItemBack`` when the ledger went away meanwhile (after waiting a while for it): the
        page and the item's hold are released first, whatever failed."""
        try:
            return self._work_held(message)
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.bind(item=message["key"]).warning(
                "the ledger went away with {} in hand ({}); it goes back to the queue",
                message["key"],
                " ".join(str(exc).split())[:200],
            )
            self.await_ledger(LEDGER_WAIT_S)
            raise ItemBack(message["key"]) from None

    def await_ledger(self, most_s: float) -> bool:
        """Wait, up to ``most_s``, for the ledger to answer again; whether it does."""
        try:
            patiently(self.ledger.ping, url=self.ledger.engine.url, wait_s=most_s)
        except Exception:  # still away when the time was up, or failing for another reason
            return False
        return True

    def _work_held(self, message: dict[str, Any]) -> str:
        robot, key, run_id = message["robot"], message["key"], message["run_id"]
        view = self.ledger.get(robot, key)
        if finished(view, run_id):
            self._note_if_missing(robot, key, run_id, view)
            return "finished already"
        with self._holds().hold(robot, key) as mine:
            if not mine:
                return "held by another worker"
            view = self.ledger.get(robot, key)  # as it is now that it is ours
            if finished(view, run_id):
                self._note_if_missing(robot, key, run_id, view)
                return "finished already"
            future = asyncio.run_coroutine_threadsafe(self._work(message), self.loop)
            return future.result()

    def _note_if_missing(self, robot: str, key: str, run_id: str, view: Any) -> None:
        """An item finished for the run with nothing noted (its worker died between the
        two writes): noted with what its ending counted as, kept with it, so the coordinator
        stops waiting for it and its counts are not lost."""
        if not noted(view, run_id):
            ended = Counter(str(c) for c in view.details.get(ENDED_AS) or ())
            self.ledger.note_worked(robot, key, run_id=run_id, counts=dict(ended))

    async def _work(self, message: dict[str, Any]) -> str:
        robot_name, run_id = message["robot"], message["run_id"]
        where = (robot_name, message["scenario"], message.get("base_url"))
        sha = message.get("scenario_sha") or ""
        station = self.stations.get(where)
        if station is not None and station.sha and sha and station.sha != sha:
            # the scenario was edited since this station loaded it: a new station (browser,
            # login) for the new text; the old one closes once its items in hand are done
            logger.info("{}: {} changed; loading it again", robot_name, where[1])
            station.retired = True
            await self._close_if_idle(station)
            station = None
        if station is None:
            station = self.stations[where] = Station(
                self.ws, robot_name, where[1], where[2], self.pages, self.redactor
            )
        if run_id in station.broken:
            return "left alone: " + station.broken[run_id]
        station.busy += 1
        try:
            return await self._work_at(station, message)
        finally:
            station.busy -= 1
            await self._close_if_idle(station)

    async def _close_if_idle(self, station: Station) -> None:
        if station.retired and station.busy == 0:
            station.retired = False  # closed once
            try:
                await station.close()
            except Exception as exc:  # a browser already gone: nothing left to close
                logger.warning("closing {}: {}", station.robot, exc)

    async def _work_at(self, station: Station, message: dict[str, Any]) -> str:
        from robots.engine.item import failed_outside_a_block
        from robots.engine.run import ITEM_TALLY

        robot_name, key, run_id = message["robot"], message["key"], message["run_id"]
        try:
            robot = station.robot_for(
                run_id, message.get("shared") or {}, message.get("scenario_sha") or ""
            )
            await station.open(robot)
            await station.prepare(run_id, robot)
            lane = await station.lane(robot)
        except RobotsError as exc:
            if is_outage(exc):
                raise  # not the scenario's fault: the item goes back to the queue
            # this run's items are left alone here; a later run tries again (a password put
            # right in the vault, a terminal started, a scenario mended)
            why = station.broken[run_id] = f"worker {worker_name()}: {first_line(exc)}"
            logger.error("{}", why)
            self._broken(run_id, why)
            return "left alone: " + why
        tally: Counter[str] = Counter()
        try:
            token = ITEM_TALLY.set(tally)
            try:
                handler = getattr(robot, message["handler"])
                await handler(robot.decode_item(message["item"]), lane)
            except Exception as exc:  # a bug in the robot: this item fails, the worker goes on
                if is_outage(exc):
                    raise  # the ledger is away: the item goes back to the queue (Runtime.work)
                logger.opt(exception=exc).bind(item=key).error("{} failed: {}", key, exc)
                failed_outside_a_block(robot.run, key, exc)  # counted in the item's tally
            finally:
                ITEM_TALLY.reset(token)
            await self._note(robot, key, run_id, dict(tally))
        finally:  # the page goes back to the station whatever raised above (a ledger away)
            try:
                await lane.next_item()
            except Exception as exc:  # a page that will not open: the next item finds out
                logger.warning("{}: a fresh page after {} failed: {}", robot_name, key, exc)
            finally:
                station.lanes.put_nowait(lane)
        self.worked.update(tally)
        if robot.run.broken:
            self._broken(run_id, robot.run.broken)
        return ", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "worked"

    async def _note(self, robot: Any, key: str, run_id: str, counts: dict[str, int]) -> None:
        """Note what the item counted (its ending is written already): through a short
        ledger outage, so a finished item's counts are not lost with a redelivery, which
        could only note it empty."""
        note = robot.run.ledger.note_worked
        try:
            note(robot.run.robot, key, run_id=run_id, counts=counts)
        except Exception as exc:
            if not is_outage(exc) or not await asyncio.to_thread(self.await_ledger, LEDGER_WAIT_S):
                raise
            note(robot.run.robot, key, run_id=run_id, counts=counts)

    def _broken(self, run_id: str, why: str) -> None:
        found = self.ledger.find_run(run_id)
        if found is not None and not found.summary.get("broken"):
            self.ledger.annotate_run(run_id, {"broken": why})

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> None:
        async def close_all() -> None:
            for station in self.stations.values():
                try:
                    await station.close()
                except Exception as exc:  # a browser already gone: nothing left to close
                    logger.warning("closing {}: {}", station.robot, exc)

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
        for holds in self._all_holds:
            holds.close()
        self.ledger.close()


__all__ = ["ItemBack", "Runtime", "Station", "Watch", "serve", "worker_name"]
