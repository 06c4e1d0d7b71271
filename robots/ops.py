"""Glue between finished runs and the workspace: run history for the spike rule, alerting."""

from __future__ import annotations

from loguru import logger

from robots.alerts import RunOutcome, deliver, evaluate
from robots.config import Workspace
from robots.ledger import Ledger


def history_for(ws: Workspace, robot: str, run_id: str) -> list[dict[str, int]]:
    """Counts of the robot's earlier finished runs, newest first (this run left out)."""
    ledger = Ledger.at(ws.path(ws.config.paths.ledger))
    try:
        runs = ledger.runs(robot, limit=ws.config.alerts.spike_window + 1)
    finally:
        ledger.close()
    return [
        dict(r.summary.get("counts", {}))
        for r in runs
        if r.run_id != run_id
        and r.ended_at is not None
        and not r.summary.get("counts", {}).get("stopped")
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
