"""How every entry point runs a robot: its lock, graceful stop, then alerts and run notes."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from robots.alerts import RunOutcome, deliver, evaluate
from robots.config import Workspace
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


def history_for(ws: Workspace, robot: str, run_id: str) -> list[dict[str, int]]:
    """Counts of the robot's earlier finished runs, newest first (this run left out)."""
    ledger = Ledger.of(ws)
    try:
        runs = ledger.runs(robot, limit=ws.config.alerts.spike_window * 3 + 1)
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


def execute_run(
    ws: Workspace,
    robot: str,
    target: str | None,
    build: Callable[[StopRequest], Robot],
    *,
    dry_run: bool = False,
) -> RunResult:
    """One robot run as every entry point wants it: under the robot's lock (so cron, the
    scheduler and people never overlap), stopping gracefully on SIGTERM, and followed by the
    alert rules. Dry runs change nothing, so they neither lock nor alert.

    A run that fails is recorded in the ledger as failed (exit code, error, alerts sent);
    its alert is deferred until the CLI has printed the error's one line."""
    stop = StopRequest()
    holder = os.environ.get("ROBOTS_RUN_BY", "command line")
    lock = nullcontext() if dry_run else run_lock(ws, robot, holder=holder)
    with lock, stop.on_signals():
        runner = build(stop)
        try:
            result = runner.perform()
        except RobotsError as exc:
            if not dry_run:
                refresh_queue(ws)
                failed: RunResult | None = getattr(exc, "run_result", None)
                run = runner.run
                outcome = outcome_of(
                    robot,
                    target or robot,
                    run.run_id,
                    dict(failed.counts) if failed else {},
                    str(failed.report or "") if failed else "",
                    str(run.run_dir) if run.run_dir.is_dir() else "",  # only a folder that exists
                    first_line(exc),
                )

                def alert_later(code: int = exc.exit_code) -> None:
                    sent = alert_on(ws, outcome, [])
                    try:
                        _annotate(ws, run.run_id, target, holder, sent, exit_code=code)
                    except LedgerUnavailable as away:  # the run's failure, most likely
                        logger.error("could not note the alerts in the ledger: {}", away)

                exc.deferred = [*getattr(exc, "deferred", []), alert_later]  # type: ignore[attr-defined]
            raise
    if not dry_run:
        queue = refresh_queue(ws)
        if queue is not None:
            result.details["open_exceptions"] = str(queue[0])
        outcome = outcome_of(
            robot,
            target or robot,
            result.run_id,
            dict(result.counts),
            str(result.report),
            str(result.run_dir),
        )
        sent = alert_on(ws, outcome, history_for(ws, robot, result.run_id))
        sent += summarise(ws, outcome, queue)
        _annotate(
            ws,
            result.run_id,
            target,
            holder,
            sent,
            exit_code=result.exit_code,
            report=str(result.report),
            logs=str(result.run_dir),
        )
    return result


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
