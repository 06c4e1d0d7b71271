"""How every entry point runs a robot: its lock, graceful stop, and what follows every run
(the open-exceptions workbook, alerts, the run summary) as the engine's after_run hook."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from robots.alerts import RunOutcome, deliver, evaluate
from robots.config import Workspace
from robots.engine.hooks import Hooks
from robots.engine.run import RobotRun, RunResult
from robots.errors import LedgerUnavailable, RobotsError, first_line
from robots.ledger import Ledger
from robots.registry import ROBOTS, spec
from robots.runtime.lock import run_lock
from robots.runtime.stopping import StopRequest


def outcome_of(
    robot: str,
    target: str,
    run_id: str,
    counts: dict[str, int],
    report: str = "",
    logs: str = "",
    failure: str = "",
) -> RunOutcome:
    """A run's outcome as the alert rules take it, with what its robot's spec says: its
    Chinese name, and which counts are items for a person (only system exceptions for a run
    that is not a robot's, `robots apply`'s)."""
    known = spec(robot) if robot in ROBOTS else None
    return RunOutcome(
        robot,
        target,
        run_id,
        counts,
        report,
        logs,
        failure,
        title=known.title if known else "",
        exception_counts=known.exception_counts if known else ("system_exception",),
    )


def history_for(
    ws: Workspace, robot: str, run_id: str, scenario: str | None = None
) -> list[dict[str, int]]:
    """Counts of the robot's earlier finished runs, newest first (this run left out); given
    ``scenario``, of that scenario's runs only (one flow's runs are not another's, one
    shop's not another's)."""
    ledger = Ledger.of(ws)
    try:
        runs = ledger.runs(robot, scenario=scenario, limit=ws.config.alerts.spike_window * 3 + 1)
    finally:
        ledger.close()
    return [
        dict(r.summary.get("counts", {}))
        for r in runs
        if r.run_id != run_id
        and r.ended_at is not None
        and not r.stopped
        and not r.failure
        and r.summary.get("kind") != "apply"  # applying a review is not a robot run
    ][: ws.config.alerts.spike_window]


def alert_on(ws: Workspace, outcome: RunOutcome, history: list[dict[str, int]]) -> list[str]:
    """Evaluate the alert rules for a run and deliver what they raise; returns channels used."""
    rules = ws.config.alerts
    alert = evaluate(outcome, history, rules)
    if alert is None:
        return []
    if not rules.webhooks and rules.email is None:
        logger.warning("alert with no channel configured: {}", alert.text())
        return []
    store = ws.credentials()
    sent = deliver(alert, rules, store.get)
    logger.info("{} alert for run {} delivered to {}", alert.level, outcome.run_id, sent)
    return [f"{alert.level}: {c}" for c in sent]


def refresh_queue(ws: Workspace) -> tuple[Path, dict[str, Any]] | None:
    """Rewrite the open-exceptions workbook from the ledger (after every real run, whatever
    happened to it). A workbook that cannot be written is logged; the run stands."""
    from robots.registry import queue_sheets
    from robots.reports.queue import write_queue
    from robots.runtime.clock import ShopClock

    try:
        ledger = Ledger.of(ws)
    except LedgerUnavailable as exc:  # a cluster's ledger away: the next run rewrites it
        logger.error("could not rewrite the open-exceptions workbook: {}", exc)
        return None
    clock = ShopClock()
    try:
        return write_queue(
            ledger,
            ws.path(ws.config.paths.open_exceptions),
            queue_sheets(),
            now=clock.wall(clock.now()),
        )
    except OSError as exc:  # e.g. the file is open in Excel on Windows, or the disk is full
        logger.error("could not rewrite the open-exceptions workbook: {}", exc)
        return None
    finally:
        ledger.close()


def summarise(
    ws: Workspace, outcome: RunOutcome, queue: tuple[Path, dict[str, Any]] | None
) -> list[str]:
    """The run's summary to the alert channels (``[alerts] run_summary``, on by default)."""
    from robots.alerts import summary_message

    rules = ws.config.alerts
    if not rules.run_summary or (not rules.webhooks and rules.email is None):
        return []
    path, waiting = queue if queue is not None else (None, {})
    message = summary_message(outcome, waiting, str(path or ""))
    sent = deliver(message, rules, ws.credentials().get)
    return [f"summary: {c}" for c in sent]


class Robot(Protocol):
    """What every robot (and `robots apply`) is to the entry points: a run and a way to do it."""

    run: RobotRun

    def perform(self) -> RunResult: ...


class AfterRun(Hooks):
    """What follows every real run, as the engine's ``after_run`` hook (the engine knows
    none of it): the open-exceptions workbook rewritten from the ledger, the alert rules,
    the run summary, and the run's row noting what was sent and by whom.

    A failed run's alert waits until the CLI has printed the error's one line
    (``deferred``); a run that failed before its engine ran the hooks (its ledger away at
    the start, say) is alerted on from the error alone."""

    def __init__(self, ws: Workspace, robot: str, target: str | None, holder: str) -> None:
        self.ws, self.robot, self.target, self.holder = ws, robot, target, holder
        self.outcome: RunOutcome | None = None  # once the hook has run

    def after_run(self, run: RobotRun, result: RunResult) -> None:
        queue = refresh_queue(self.ws)
        if queue is not None:
            result.details["open_exceptions"] = str(queue[0])
        self.outcome = self._outcome(
            result.run_id,
            dict(result.counts),
            str(result.report or ""),
            str(result.run_dir) if result.run_dir.is_dir() else "",  # only a folder that exists
            result.failure,
        )
        if result.failure:
            return  # alerted once the CLI has said the failure (deferred)
        history = history_for(self.ws, self.robot, result.run_id, str(run.scenario_file))
        sent = alert_on(self.ws, self.outcome, history)
        sent += summarise(self.ws, self.outcome, queue)
        self._note(
            result.run_id,
            sent,
            exit_code=result.exit_code,
            report=str(result.report),
            logs=str(result.run_dir),
        )

    def deferred(self, run: RobotRun, exc: RobotsError) -> Callable[[], None]:
        """The failed run's alert, for the CLI to call after the error's line."""
        outcome = self.outcome
        if outcome is None:  # failed before the engine ran its hooks
            refresh_queue(self.ws)
            logs = str(run.run_dir) if run.run_dir.is_dir() else ""
            outcome = self._outcome(run.run_id, {}, "", logs, first_line(exc))

        def alert() -> None:
            self._note(run.run_id, alert_on(self.ws, outcome, []), exit_code=exc.exit_code)

        return alert

    def _outcome(
        self, run_id: str, counts: dict[str, int], report: str, logs: str, failure: str
    ) -> RunOutcome:
        return outcome_of(
            self.robot, self.target or self.robot, run_id, counts, report, logs, failure
        )

    def _note(self, run_id: str, alerts: list[str], **extra: Any) -> None:
        try:
            _annotate(self.ws, run_id, self.target, self.holder, alerts, **extra)
        except LedgerUnavailable as away:  # the run's failure, most likely
            logger.error("could not note the alerts in the ledger: {}", away)


def execute_run(
    ws: Workspace,
    robot: str,
    target: str | None,
    build: Callable[[StopRequest], Robot],
    *,
    dry_run: bool = False,
    lock: str | None = None,
) -> RunResult:
    """One robot run as every entry point wants it: under the robot's lock (``lock``, else
    the robot's name: so cron, the scheduler and people never overlap), stopping gracefully
    on SIGTERM, and followed by ``AfterRun`` (the open-exceptions workbook, alerts, the run
    summary). Dry runs change nothing, so they neither lock nor alert."""
    stop = StopRequest()
    holder = os.environ.get("ROBOTS_RUN_BY", "command line")
    held = nullcontext() if dry_run else run_lock(ws, lock or robot, holder=holder)
    after = None if dry_run else AfterRun(ws, robot, target, holder)
    with held, stop.on_signals():
        runner = build(stop)
        if after is not None:
            runner.run.hooks.append(after)
        try:
            return runner.perform()
        except RobotsError as exc:
            if after is not None:
                later = after.deferred(runner.run, exc)
                exc.deferred = [*getattr(exc, "deferred", []), later]  # type: ignore[attr-defined]
            raise


def _annotate(
    ws: Workspace,
    run_id: str,
    target: str | None,
    holder: str,
    alerts: list[str],
    *,
    exit_code: int,
    report: str = "",
    logs: str = "",
) -> None:
    ledger = Ledger.of(ws)
    try:
        extra: dict[str, Any] = {
            "exit_code": exit_code,
            "target": target or "",
            "alerts": alerts,
            "by": holder,
        }
        extra.update({k: v for k, v in (("report", report), ("logs", logs)) if v})
        ledger.annotate_run(run_id, extra)
    finally:
        ledger.close()
