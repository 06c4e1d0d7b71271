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
from robots.ledger import Ledger
from robots.runtime.lock import robot_lock
from robots.runtime.stopping import StopRequest


def history_for(ws: Workspace, robot: str, run_id: str) -> list[dict[str, int]]:
    """Counts of the robot's earlier finished runs, newest first (this run left out)."""
    ledger = Ledger.at(ws.path(ws.config.paths.ledger))
    try:
        runs = ledger.runs(robot, limit=ws.config.alerts.spike_window * 3 + 1)
    finally:
        ledger.close()
    return [
        dict(r.summary.get("counts", {}))
        for r in runs
        if r.run_id != run_id
        and r.ended_at is not None
        and not r.summary.get("counts", {}).get("stopped")
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


class RobotResult(Protocol):
    run_id: str
    report: Path
    run_dir: Path
    counts: dict[str, int]

    @property
    def exit_code(self) -> int: ...


class Robot(Protocol):
    run_id: str
    run_dir: Path

    def run(self) -> Any: ...


def execute_run(
    ws: Workspace,
    robot: str,
    target: str | None,
    build: Callable[[StopRequest], Robot],
    *,
    dry_run: bool = False,
) -> RobotResult:
    """One robot run as every entry point wants it: under the robot's lock (so cron, the
    scheduler and people never overlap), stopping gracefully on SIGTERM, and followed by the
    alert rules. Dry runs change nothing, so they neither lock nor alert."""
    stop = StopRequest()
    holder = os.environ.get("ROBOTS_RUN_BY", "command line")
    lock = nullcontext() if dry_run else robot_lock(ws.lock_dir, robot, holder=holder)
    with lock, stop.on_signals():
        runner = build(stop)
        try:
            result: RobotResult = runner.run()
        except Exception as exc:
            if not dry_run:
                first = str(exc).splitlines()[0] if str(exc) else ""
                failure = f"{type(exc).__name__}: {first}"
                alert_on(
                    ws,
                    RunOutcome(
                        robot, target or robot, runner.run_id, {}, "", str(runner.run_dir), failure
                    ),
                    [],
                )
            raise
    if not dry_run:
        outcome = RunOutcome(
            robot,
            target or robot,
            result.run_id,
            dict(result.counts),
            str(result.report),
            str(result.run_dir),
        )
        sent = alert_on(ws, outcome, history_for(ws, robot, result.run_id))
        ledger = Ledger.at(ws.path(ws.config.paths.ledger))
        try:
            ledger.annotate_run(
                result.run_id,
                {
                    "report": str(result.report),
                    "logs": str(result.run_dir),
                    "exit_code": result.exit_code,
                    "target": target or "",
                    "alerts": sent,
                    "by": holder,
                },
            )
        finally:
            ledger.close()
    return result
