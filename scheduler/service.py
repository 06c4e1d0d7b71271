"""The scheduler service: `robots scheduler start` keeps it running, `status` reads its store.

Each fire runs ``robots run <robot> --target <target>`` in a child process with a time limit,
so a hung browser can take down only its own run. The robot's lock (shared with cron and
people) keeps runs of one robot from overlapping; APScheduler's ``max_instances=1`` keeps a
schedule from piling up behind itself; ``coalesce`` folds fires missed while the service was
down into one run if it comes back within ``misfire_grace_s``. On SIGTERM the service stops
firing, passes SIGTERM on to running robots (each finishes the item in hand), waits for them,
and exits.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore as JobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock, Timeout
from loguru import logger

from robots.config import Schedule, Workspace
from robots.errors import SchedulerAlreadyRunning
from robots.ops import alert_on, outcome_of
from robots.registry import load_workspace, spec
from robots.runtime.crontab import cron_trigger
from scheduler.calendar import blackout_at, non_working_reason
from scheduler.history import BUSY, OUTCOMES, History

JOB_FUNC = "scheduler.service:fire"


def trigger_for(s: Schedule, tz: ZoneInfo) -> BaseTrigger:
    if s.cron is not None:
        trigger: BaseTrigger = cron_trigger(s.cron, tz)
        return trigger
    assert s.every_seconds is not None
    return IntervalTrigger(seconds=s.every_seconds, timezone=tz)


def job_store_path(ws: Workspace) -> Path:
    return ws.path(ws.config.scheduler.job_store)


@dataclass
class Child:
    schedule: str
    process: subprocess.Popen[bytes]


class Service:
    """One scheduler over one workspace; ``fire`` is what every job runs."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        cfg = ws.config.scheduler
        self.tz = ZoneInfo(cfg.timezone)
        self.history = History(job_store_path(ws), self.tz)
        self.children: dict[int, Child] = {}
        self._children_lock = threading.Lock()
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{job_store_path(ws)}")},
            executors={"default": ThreadPoolExecutor(max(4, len(ws.config.schedules)))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": cfg.misfire_grace_s,
            },
            timezone=self.tz,
        )
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._on_busy, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)

    # -- jobs ----------------------------------------------------------------------------------
    def sync_jobs(self) -> None:
        """Make the store's jobs those of robots.toml; unchanged jobs keep their next fire time
        (so a fire missed while the service was down is still seen as missed)."""
        wanted = {s.name: s for s in self.ws.config.schedules if s.enabled}
        grace = self.ws.config.scheduler.misfire_grace_s
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                logger.info("schedule {} is gone from robots.toml; removed", job.id)
                job.remove()
        for name, s in wanted.items():
            trigger = trigger_for(s, self.tz)
            args = [str(self.ws.root), name]
            job = self.scheduler.get_job(name)
            if job is not None and str(job.trigger) == str(trigger) and list(job.args) == args:
                if job.misfire_grace_time != grace:  # stored with the job: follow robots.toml
                    job.modify(misfire_grace_time=grace)
                continue
            self.scheduler.add_job(
                JOB_FUNC, trigger, args=args, id=name, name=name, replace_existing=True
            )
            logger.info("schedule {}: {}", name, trigger)

    def fire(self, name: str) -> None:
        """Run the schedule's robot once in a child process, unless today says not to."""
        if self.stopping.is_set():
            return
        ws = load_workspace(self.ws.root)  # robots.toml may have been edited since start
        s = ws.schedule(name)
        cfg = ws.config.scheduler
        now = datetime.now(self.tz).replace(tzinfo=None)
        if paused := self.history.paused().get(name):
            self.history.started(name, "skipped", f"paused by {paused[0]} at {paused[1]:%F %T}")
            logger.info("{}: skipped, paused by {}", name, paused[0])
            return
        why = non_working_reason(now.date(), cfg.holidays, cfg.days_off)
        if s.working_days_only and why:
            self.history.started(name, "skipped", f"not a working day: {why}")
            logger.info("{}: skipped, {} is not a working day ({})", name, now.date(), why)
            return
        if s.honour_blackouts and (b := blackout_at(now, cfg.blackouts)):
            self.history.started(name, "skipped", f"blackout {b.name} {b.start} – {b.end}")
            logger.info("{}: skipped, inside blackout {}", name, b.name or b.start)
            return
        target = ws.target_named(s.target)
        fire_id = self.history.started(name)
        log_dir = ws.path(ws.config.paths.logs) / "scheduler"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{name}-{datetime.now(self.tz):%Y%m%d-%H%M%S}-{fire_id}.log"
        cmd = [
            sys.executable,
            "-m",
            "robots",
            "run",
            target.robot,
            "--target",
            target.name,
            "--workspace",
            str(ws.root),
            *s.args,
        ]
        if ws.broker_url and "--cluster" not in cmd and spec(target.robot).on_cluster:
            cmd.append("--cluster")  # [cluster] is set: the cluster's workers do the work
        env = {**os.environ, "ROBOTS_RUN_BY": f"scheduler ({name})"}
        with log_file.open("wb") as out:
            process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            with self._children_lock:
                self.children[process.pid] = Child(name, process)
            if self.stopping.is_set():  # the stop came while this child was starting
                process.send_signal(signal.SIGTERM)
            logger.info("{}: started {} (pid {})", name, target.robot, process.pid)
            timed_out = False
            try:
                code = process.wait(timeout=cfg.run_time_limit_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                logger.error("{}: over its {} s limit; stopping it", name, cfg.run_time_limit_s)
                code = self._stop_child(process, cfg.stop_grace_s)
            finally:
                with self._children_lock:
                    self.children.pop(process.pid, None)
        text = log_file.read_text(encoding="utf-8", errors="replace")
        found = re.findall(r"logs:\s+\S*?([0-9]{8}-[0-9]{6}-[a-z]+-[0-9a-f]{4})", text)
        run_id = found[-1] if found else ""
        if timed_out:
            outcome = f"timed out after {cfg.run_time_limit_s} s"
        elif code < 0:
            outcome = f"killed by {signal.Signals(-code).name}"
        else:
            outcome = OUTCOMES.get(code, f"crashed (exit {code})")
        tail = "\n".join(text.strip().splitlines()[-3:])
        self.history.ended(fire_id, outcome, exit_code=code, run_id=run_id, detail=tail)
        logger.info("{}: {} (exit {}, run {})", name, outcome, code, run_id or "-")
        if timed_out or code < 0 or code not in OUTCOMES:
            # the robot could not alert for itself: it was cut off or crashed
            alert_on(
                ws,
                outcome_of(
                    target.robot,
                    target.name,
                    run_id or f"schedule {name}",
                    {},
                    "",
                    str(log_file),
                    outcome,
                ),
                [],
            )

    def _stop_child(self, process: subprocess.Popen[bytes], grace_s: float) -> int:
        """SIGTERM (the robot finishes the item in hand), then SIGKILL its whole group."""
        try:
            process.send_signal(signal.SIGTERM)
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.error("pid {} still running {} s after SIGTERM; killing", process.pid, grace_s)
            os.killpg(process.pid, signal.SIGKILL)
            return process.wait()

    # -- events --------------------------------------------------------------------------------
    def _on_missed(self, event: JobSubmissionEvent) -> None:
        self.history.started(
            event.job_id, "missed", f"fire time {event.scheduled_run_time} was past the grace"
        )

    def _on_busy(self, event: JobSubmissionEvent) -> None:
        self.history.started(event.job_id, BUSY)

    def _on_error(self, event: JobExecutionEvent) -> None:
        self.history.started(
            event.job_id, "error", f"{type(event.exception).__name__}: {event.exception}"
        )

    # -- life ----------------------------------------------------------------------------------
    def serve(self, *, ready: threading.Event | None = None) -> int:
        """Run until SIGTERM or SIGINT; returns the exit code."""
        lock = FileLock(job_store_path(self.ws).with_suffix(".lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise SchedulerAlreadyRunning(
                f"a scheduler already runs over {job_store_path(self.ws)}; one is enough"
            ) from None
        global _service
        _service = self
        previous = {
            sig: signal.signal(sig, lambda *_: self.stopping.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.scheduler.start(paused=True)
            self.sync_jobs()
            self.scheduler.resume()
            logger.info("scheduler running with {} schedules", len(self.scheduler.get_jobs()))
            if ready is not None:
                ready.set()
            while not self.stopping.wait(1):
                pass
            logger.info("stopping: no new fires; asking running robots to finish their item")
            self.scheduler.pause()
            with self._children_lock:
                children = list(self.children.values())
            for child in children:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            self.scheduler.shutdown(wait=True)  # fire() returns when its child has exited
            logger.info("scheduler stopped")
            return 0
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            _service = None
            self.history.close()
            lock.release()


def stored_jobs(ws: Workspace) -> JobStore:
    """The job store opened on its own, never processed: reading (or, in tests, editing) it
    cannot fire or reschedule anything, unlike a scheduler started just to look."""
    store = SQLAlchemyJobStore(url=f"sqlite:///{job_store_path(ws)}")
    store.start(BackgroundScheduler(timezone=ZoneInfo(ws.config.scheduler.timezone)), "default")
    return store


_service: Service | None = None  # the running service, for the job function below


def fire(workspace: str, name: str) -> None:
    """What every stored job calls (by reference, so the store survives restarts)."""
    service = _service or Service(load_workspace(Path(workspace)))
    service.fire(name)
