"""Telling someone when an unattended run went wrong: rules, then webhooks and email.

``evaluate`` is pure: a run's outcome and its recent history in, an ``Alert`` (or None) out.
The rules: a run that failed is critical; system exceptions above ``max_system_exceptions``
are critical; exceptions handed to people above ``max_exceptions`` are a warning; and the
spike rule compares this run's exceptions with the average of the last ``spike_window``
runs: +50 % or more is a warning, +100 % or more is critical. A run stopped by SIGTERM raises
nothing itself: the stop was asked for (a service stop, or the scheduler's time limit, which
alerts on its own). ``deliver`` sends an alert to every configured channel and never raises:
an alert that cannot be delivered is logged, it does not fail the run it reports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote_plus

from loguru import logger
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from robots.config import AlertSettings, Email, Webhook
from robots.engine.health import health, is_field_count

LEVELS = ("warning", "critical")


@dataclass(frozen=True)
class RunOutcome:
    """What an alert needs to know about one run."""

    robot: str
    target: str
    run_id: str
    counts: dict[str, int]
    report: str = ""
    logs: str = ""
    failure: str = ""  # the error that ended the run, if it did not finish
    title: str = ""  # the robot's name as ops read it (退款); its code when not given
    # the counts that are items a person must look at (the robot's spec says which;
    # every robot counts hand-overs and system exceptions so)
    exception_counts: tuple[str, ...] = ("handed_to_person", "system_exception")


@dataclass(frozen=True)
class Alert:
    level: str  # warning | critical
    outcome: RunOutcome
    reasons: tuple[str, ...]
    host: str = field(default_factory=socket.gethostname)

    @property
    def title(self) -> str:
        o = self.outcome
        return f"[robots] {self.level.upper()}: {o.robot} ({o.target}) run {o.run_id}"

    @property
    def counts(self) -> dict[str, int]:
        """The run's outcome counts (its field reads are in the reasons, when they matter)."""
        return {k: v for k, v in self.outcome.counts.items() if not is_field_count(k)}

    def text(self) -> str:
        o = self.outcome
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        lines = [
            self.title,
            *(f"- {r}" for r in self.reasons),
            f"counts: {counts}",
            f"report: {o.report or '(none)'}",
            f"logs: {o.logs or '(none)'}",
            f"host: {self.host}",
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        o = self.outcome
        lines = [
            f"### {self.title}",
            *(f"- {r}" for r in self.reasons),
            "",
            "counts: " + (", ".join(f"{k} **{v}**" for k, v in sorted(self.counts.items())) or "-"),
            "",
            f"report: `{o.report or '-'}`",
            "",
            f"logs: `{o.logs or '-'}` on {self.host}",
        ]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "level": self.level,
            "title": self.title,
            "robot": o.robot,
            "target": o.target,
            "run_id": o.run_id,
            "reasons": list(self.reasons),
            "counts": self.counts,
            "report": o.report,
            "logs": o.logs,
            "host": self.host,
            "text": self.text(),
        }


COUNT_NAMES = {
    "approved": "已自动同意",
    "handed_to_person": "转人工",
    "system_exception": "系统异常",
    "handled_elsewhere": "已由他人处理",
    "closed_elsewhere": "已在后台处理（移出队列）",
    "unchanged_since_last_run": "未变化",
    "not_started": "未开始",
    "linked": "已关联",
    "suggested": "待人工确认",
    "unmatched": "未匹配",
    "linked_elsewhere": "已被他人关联",
    "pages_read": "已检查页面",
    "applied": "已按复核同意",
    "held": "暂缓",
    "refused_hard_rule": "不可豁免规则拒绝",
}


@dataclass(frozen=True)
class RunSummaryMessage(Alert):
    """Not an alarm: the run's summary where ops already are (DingTalk, WeCom, e-mail)."""

    facts: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        o = self.outcome
        return f"[robots] {o.title or o.robot} {o.robot}（{o.target}）运行完成 {o.run_id}"

    def text(self) -> str:
        return "\n".join([self.title, *(f"- {f}" for f in self.facts), f"主机 host: {self.host}"])

    def markdown(self) -> str:
        return "\n".join([f"### {self.title}", *(f"- {f}" for f in self.facts)])


@dataclass(frozen=True)
class OutageAlert(Alert):
    """A server the run needs (the cluster's ledger or broker) has not answered for a while:
    the run is waiting, not failed (yet); ``reasons`` says which server and for how long."""

    @property
    def title(self) -> str:
        o = self.outcome
        return f"[robots] 警告 WARNING: {o.robot} {o.run_id} 等待服务恢复 (server outage)"


@dataclass(frozen=True)
class RiseAlert(Alert):
    """A flow's count rose (客服质检: a word class's hits in the last hour against the hours
    before it): ``reasons`` says which, by how much."""

    @property
    def title(self) -> str:
        o = self.outcome
        level = "严重 CRITICAL" if self.level == "critical" else "警告 WARNING"
        return f"[robots] {level}: {o.title or o.robot}（{o.target}）命中激增 rise {o.run_id}"


def summary_message(outcome: RunOutcome, waiting: dict[str, Any], queue: str) -> RunSummaryMessage:
    """The run's counts in Chinese, then what waits for a person (``waiting``: the open-
    exceptions totals: open, overdue, due_soon, money) and where the workbooks are."""
    counts = "，".join(
        f"{COUNT_NAMES.get(k, k)} {v}"
        for k, v in outcome.counts.items()
        if v and k != "stopped" and not is_field_count(k)
    )
    facts = [f"本次：{counts or '无事可做'}"]
    unread = health(outcome.counts)
    if unread:
        facts.append("无法读取的字段：" + "；".join(h.text() for h in unread))
    if waiting:
        facts.append(
            f"待人工处理（全部）：{waiting.get('open', 0)}，其中紧急 {waiting.get('due_soon', 0)}，"
            f"已超时 {waiting.get('overdue', 0)}"
        )
        money = waiting.get("money")
        if money:
            facts.append(f"待复核金额：¥{money:,.2f}")
    facts.append(f"本次工作簿：{outcome.report or '（无）'}")
    if queue:
        facts.append(f"待处理队列：{queue}")
    return RunSummaryMessage("info", outcome, (), facts=tuple(facts))


def exceptions_in(outcome: RunOutcome, counts: dict[str, int]) -> int:
    """Items a person must look at in ``counts``, as the outcome's robot counts them."""
    return sum(counts.get(k, 0) for k in outcome.exception_counts)


def evaluate(
    outcome: RunOutcome, history: Sequence[dict[str, int]], rules: AlertSettings
) -> Alert | None:
    """The alert this run deserves, if any; ``history``: counts of earlier runs, newest first."""
    reasons: list[tuple[str, str]] = []
    c = outcome.counts
    if outcome.failure:
        reasons.append(("critical", f"the run failed: {outcome.failure}"))
    system = c.get("system_exception", 0)
    if system > rules.max_system_exceptions:
        reasons.append(
            ("critical", f"{system} system exceptions (threshold {rules.max_system_exceptions})")
        )
    for h in health(c):  # a field that broke on some pages only: said even below any stop
        reasons.append(
            ("warning", f"field {h.field} could not be read on {h.unreadable} of {h.reads} reads")
        )
    exceptions = exceptions_in(outcome, c)
    if rules.max_exceptions is not None and exceptions > rules.max_exceptions:
        reasons.append(
            ("warning", f"{exceptions} exceptions for people (threshold {rules.max_exceptions})")
        )
    recent = [exceptions_in(outcome, h) for h in history[: rules.spike_window]]
    if not outcome.failure and len(recent) >= rules.spike_min_runs:
        average = sum(recent) / len(recent)
        if average > 0:
            rise = exceptions / average - 1
            level = (
                "critical"
                if rise >= rules.spike_critical
                else "warning"
                if rise >= rules.spike_warning
                else ""
            )
            if level:
                reasons.append(
                    (
                        level,
                        f"{exceptions} exceptions, +{rise:.0%} over the average of the last "
                        f"{len(recent)} runs ({average:.1f})",
                    )
                )
    if not reasons:
        return None
    level = "critical" if any(lv == "critical" for lv, _ in reasons) else "warning"
    return Alert(level, outcome, tuple(r for _, r in reasons))


# -- delivery ---------------------------------------------------------------------------------
def webhook_body(alert: Alert, fmt: str) -> dict[str, Any]:
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": alert.title, "text": alert.markdown()}}
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": alert.markdown()}}
    return alert.as_json()


def dingtalk_signed(url: str, secret: str, now_ms: int | None = None) -> str:
    """DingTalk's 加签: timestamp and HMAC-SHA256 of "timestamp\\nsecret" in the query."""
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"


def send_webhook(alert: Alert, hook: Webhook, sign_secret: str = "") -> None:
    import httpx  # only when an alert is sent: `robots runs` and `--help` stay fast

    url = dingtalk_signed(hook.url, sign_secret) if sign_secret else hook.url
    for attempt in Retrying(
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.5, max=5),
        retry=retry_if_exception_type(httpx.HTTPError),
        before_sleep=lambda s: logger.warning(
            "alert webhook attempt {}/3 failed: {}",
            s.attempt_number,
            s.outcome.exception() if s.outcome else None,
        ),
        reraise=True,
    ):
        with attempt:
            answer = httpx.post(url, json=webhook_body(alert, hook.format), timeout=10)
            answer.raise_for_status()


def send_email(alert: Alert, email: Email, login: tuple[str, str] | None) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = alert.title, email.sender, ", ".join(email.to)
    msg.set_content(alert.text())
    smtp_class = smtplib.SMTP_SSL if email.security == "ssl" else smtplib.SMTP
    with smtp_class(email.host, email.port, timeout=20) as smtp:
        if email.security == "starttls":
            smtp.starttls()
        if login is not None:
            smtp.login(*login)
        smtp.send_message(msg)


def deliver(alert: Alert, rules: AlertSettings, secret_of: Any) -> list[str]:
    """Send to every channel; returns the channels that took it. ``secret_of(name)``: a
    Credential by name, for signing secrets and SMTP logins."""
    delivered: list[str] = []
    for hook in rules.webhooks:
        where = f"webhook {hook.format} {hook.url.split('?')[0]}"
        try:
            secret = secret_of(hook.sign_credential).password if hook.sign_credential else ""
            send_webhook(alert, hook, secret)
            delivered.append(where)
        except Exception as exc:  # an alert channel failing must not fail the run it reports
            logger.error("could not deliver the alert to {}: {}", where, exc)
    if rules.email is not None:
        where = f"email {', '.join(rules.email.to)}"
        try:
            cred = secret_of(rules.email.credential) if rules.email.credential else None
            send_email(alert, rules.email, (cred.username, cred.password) if cred else None)
            delivered.append(where)
        except Exception as exc:  # as above
            logger.error("could not deliver the alert to {}: {}", where, exc)
    return delivered
