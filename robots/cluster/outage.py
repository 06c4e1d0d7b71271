"""One of the cluster's servers going away: which one an error says, and the outage being
waited through — its line when it begins, its warning to the alert channels after
``[cluster] outage_alert_s`` (once), its line when the server answers again. The
coordinator waits up to ``outage_wait_s`` and then gives up the run; a worker waits for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from robots.alerts import OutageAlert, RunOutcome, deliver
from robots.cluster.app import masked
from robots.errors import BrokerUnavailable
from robots.ledger import is_outage

if TYPE_CHECKING:
    from robots.config import Workspace

SERVER_NAMES = {"ledger": "账本 PostgreSQL", "broker": "队列 Redis"}


def outage_of(exc: BaseException) -> str | None:
    """Which of the cluster's servers ``exc`` says is away — ``"ledger"`` (PostgreSQL, the
    item holds included) or ``"broker"`` (Redis) — or None: not an outage (a bug, a wrong
    statement), raised as it is."""
    if is_outage(exc):
        return "ledger"
    import redis.exceptions
    from kombu.exceptions import OperationalError as KombuOperationalError

    broker_errors = (
        BrokerUnavailable,
        KombuOperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        TimeoutError,
    )
    return "broker" if isinstance(exc, broker_errors) else None


def server_url(ws: Workspace, which: str) -> str:
    return masked(ws.ledger_url if which == "ledger" else ws.broker_url or "")


@dataclass
class Outage:
    """The outage ``who`` (a run, a worker) is waiting through, if any."""

    ws: Workspace
    who: str  # "the run" / "the worker": the subject of the log lines
    waits: str  # how long it waits: "up to 600 s ([cluster] outage_wait_s)", "for ever"
    said_zh: str  # the same, as ops read it in the alert: "运行暂停等待（最多 600 秒）"
    which: str = ""
    since: float | None = None
    alerted: bool = False

    @property
    def lasted_s(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def failed(self, exc: BaseException, *, robot: str, run_id: str) -> str | None:
        """A call failed with ``exc``: which server is away (None: not an outage). Said
        when the outage begins; alerted once it has lasted ``outage_alert_s``."""
        which = outage_of(exc)
        if which is None:
            return None
        if self.since is None:
            self.which, self.since, self.alerted = which, time.monotonic(), False
            logger.warning(
                "the {} at {} does not answer ({}): {} waits for it, {}",
                SERVER_NAMES[which],
                server_url(self.ws, which),
                " ".join(str(getattr(exc, "orig", None) or exc).split())[:200],
                self.who,
                self.waits,
            )
        elif not self.alerted and self.lasted_s >= self.ws.cluster.outage_alert_s:
            self.alerted = True
            self._alert(robot, run_id)
        return which

    def answered(self) -> None:
        """A call went through: the outage, if there was one, is over."""
        if self.since is None:
            return
        logger.warning(
            "the {} answers again after {:.0f} s: {} goes on",
            SERVER_NAMES[self.which],
            self.lasted_s,
            self.who,
        )
        self.over()

    def over(self) -> None:
        """No outage now (it ended, or it was given up on)."""
        self.which, self.since, self.alerted = "", None, False

    def _alert(self, robot: str, run_id: str) -> None:
        rules = self.ws.config.alerts
        reason = (
            f"{SERVER_NAMES[self.which]} 已 {self.lasted_s:.0f} 秒无应答，{self.said_zh} "
            f"{self.which}_unavailable: {server_url(self.ws, self.which)}"
        )
        alert = OutageAlert("warning", RunOutcome(robot, robot, run_id, {}), (reason,))
        if not rules.webhooks and rules.email is None:
            logger.warning("alert with no channel configured: {}", alert.text())
            return
        sent = deliver(alert, rules, self.ws.credentials().get)
        logger.warning("outage alert for {} delivered to {}", run_id, sent)
