"""Alert rules (pure), and delivery to a real local webhook receiver and a real SMTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from conftest import PASSWORD, Workspace, dead_port, free_port, write_workspace

from robots.alerts import AlertSettings, RunOutcome, dingtalk_signed, evaluate, webhook_body
from robots.engine.run import RobotRun, RunOptions, RunResult
from robots.errors import SystemException
from robots.ledger import Ledger
from robots.ops import execute_run, history_for, outcome_of
from robots.registry import load_workspace
from robots.runtime.stopping import StopRequest

RULES = AlertSettings()


def outcome(robot: str = "refunds", **counts: int) -> RunOutcome:
    """A run's outcome as the entry points build it (its robot's spec says which counts
    are exceptions)."""
    return outcome_of(robot, "shop", "20261123-030000-refunds-abcd", counts, "r.xlsx", "logs/x")


def hist(n: int, per_run: int) -> list[dict[str, int]]:
    return [{"handed_to_person": per_run} for _ in range(n)]


def test_a_quiet_run_raises_nothing() -> None:
    assert evaluate(outcome(handed_to_person=10, approved=90), hist(5, 10), RULES) is None


def test_failures_and_system_exceptions_are_critical() -> None:
    failed = RunOutcome("refunds", "shop", "r1", {}, failure="SystemException: shop down")
    alert = evaluate(failed, [], RULES)
    assert alert is not None and alert.level == "critical"
    assert "the run failed: SystemException: shop down" in alert.reasons
    alert = evaluate(outcome(system_exception=1), [], RULES)
    assert alert is not None and alert.level == "critical"
    assert (
        evaluate(
            outcome(system_exception=2), [], RULES.model_copy(update={"max_system_exceptions": 2})
        )
        is None
    )


def test_exception_threshold_is_a_warning() -> None:
    rules = RULES.model_copy(update={"max_exceptions": 20})
    assert evaluate(outcome(handed_to_person=20), [], rules) is None
    alert = evaluate(outcome(handed_to_person=21), [], rules)
    assert alert is not None and alert.level == "warning"
    # each robot counts its own kinds of exception
    alert = evaluate(outcome("returns", suggested=15, unmatched=10, linked=3), [], rules)
    assert alert is not None and "25 exceptions" in alert.reasons[0]


@pytest.mark.parametrize(
    ("now", "level"),
    [(14, None), (15, "warning"), (19, "warning"), (20, "critical"), (40, "critical")],
)
def test_spike_rule_against_the_recent_average(now: int, level: str | None) -> None:
    alert = evaluate(outcome(handed_to_person=now), hist(5, 10), RULES)
    assert (alert.level if alert else None) == level
    if alert:
        assert "over the average of the last 5 runs (10.0)" in alert.reasons[0]


def test_spike_rule_needs_history() -> None:
    assert evaluate(outcome(handed_to_person=50), hist(2, 10), RULES) is None  # < 3 runs
    assert evaluate(outcome(handed_to_person=50), hist(5, 0), RULES) is None  # average 0
    # only the last spike_window runs count
    old_and_calm = hist(3, 40) + hist(7, 10)
    assert evaluate(outcome(handed_to_person=20), hist(7, 10) + old_and_calm, RULES) is not None


def test_history_comes_from_finished_runs_in_the_ledger(tmp_path: Path) -> None:
    ws = load_workspace(write_workspace(tmp_path / "ws", None))
    ledger = Ledger.at(ws.path(ws.config.paths.ledger))
    for i, n in enumerate([10, 12, 14]):
        ledger.begin_run(f"r{i}", "refunds", "s.toml", dry_run=False)
        ledger.end_run(f"r{i}", {"counts": {"handed_to_person": n}})
    ledger.begin_run("dry", "refunds", "s.toml", dry_run=True)
    ledger.end_run("dry", {"counts": {"handed_to_person": 99}})
    ledger.begin_run("now", "refunds", "s.toml", dry_run=False)
    ledger.close()
    got = history_for(ws, "refunds", "now")
    assert sorted(h["handed_to_person"] for h in got) == [10, 12, 14]
    ledger = Ledger.at(ws.path(ws.config.paths.ledger))
    ledger.begin_run("other", "refunds", "other.toml", dry_run=False)  # another shop's run
    ledger.end_run("other", {"counts": {"handed_to_person": 500}})
    ledger.close()
    mine = history_for(ws, "refunds", "now", "s.toml")
    assert sorted(h["handed_to_person"] for h in mine) == [10, 12, 14]


def test_webhook_formats_and_dingtalk_signature() -> None:
    alert = evaluate(outcome(system_exception=3), [], RULES)
    assert alert is not None
    generic = webhook_body(alert, "generic")
    assert generic["level"] == "critical" and generic["counts"] == {"system_exception": 3}
    ding = webhook_body(alert, "dingtalk")
    assert ding["msgtype"] == "markdown" and "system_exception **3**" in ding["markdown"]["text"]
    wecom = webhook_body(alert, "wecom")
    assert wecom["msgtype"] == "markdown" and "r.xlsx" in wecom["markdown"]["content"]
    url = dingtalk_signed("https://oapi.dingtalk.com/robot/send?access_token=t", "SEC1", 1700)
    q = parse_qs(urlparse(url).query)
    expected = base64.b64encode(hmac.new(b"SEC1", b"1700\nSEC1", hashlib.sha256).digest()).decode()
    assert q["timestamp"] == ["1700"] and q["sign"] == [expected]


# -- delivery to real local receivers ---------------------------------------------------------
class Receiver:
    """A webhook endpoint on a free port that keeps what it is sent."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode": 0}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


# the webhook receiver, the mailbox and its SMTP port (the ``receivers`` fixture)
Receivers = tuple[Receiver, Mailbox, int]


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    hook, mailbox, port = Receiver(), Mailbox(), free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    yield hook, mailbox, port
    smtp.stop()
    hook.close()


def alerts_config(hook: Receiver, smtp_port: int, *, summary: bool = False) -> str:
    return f"""
[alerts]
max_system_exceptions = 0
run_summary = {"true" if summary else "false"}

[[alerts.webhooks]]
url = "{hook.url}/generic"

[[alerts.webhooks]]
url = "{hook.url}/robot/send?access_token=tok"
format = "dingtalk"
sign_credential = "dingtalk-sign"

[[alerts.webhooks]]
url = "{hook.url}/cgi-bin/webhook/send?key=k"
format = "wecom"

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "robots@example.com"
to = ["ops@example.com", "lead@example.com"]
"""


def alerting_workspace(
    root: Path,
    url: str,
    receivers: Receivers,
    secret: str,
    *,
    extra: str = "",
    summary: bool = False,
    **options: Any,
) -> Path:
    """A workspace whose alerts go to every test receiver, DingTalk signed with ``secret``."""
    hook, _mailbox, smtp_port = receivers
    ws = write_workspace(
        root, url, extra=extra + alerts_config(hook, smtp_port, summary=summary), **options
    )
    add_signing_secret(ws, secret)
    return ws


def add_signing_secret(ws: Path, secret: str) -> None:
    """The DingTalk signing secret, as the credential the webhook names."""
    creds = ws / "secrets" / "credentials.toml"
    creds.write_text(
        creds.read_text() + f'\n[dingtalk-sign]\nusername = "-"\npassword = "{secret}"\n'
    )


@pytest.mark.browser
@pytest.mark.refunds(20)
def test_failing_run_alerts_every_channel(workspace: Workspace, receivers: Receivers) -> None:
    hook, mailbox, _smtp_port = receivers
    alerting_workspace(workspace.root, workspace.sandbox.url, receivers, "SECabc123")
    with workspace.sandbox.db() as conn:
        target = conn.execute(
            "SELECT refund_id FROM refunds WHERE status = 'WAIT_SELLER_AGREE' LIMIT 1"
        ).fetchone()[0]
    workspace.sandbox.control("faults", path_prefix=f"/refunds/{target}", count=50, status=500)
    result = workspace.run(check=False)
    assert result.returncode == 1, result.stderr

    paths = sorted(p.split("?")[0] for p, _ in hook.posts)
    assert paths == ["/cgi-bin/webhook/send", "/generic", "/robot/send"]
    by_path = {p.split("?")[0]: (p, body) for p, body in hook.posts}
    _, generic = by_path["/generic"]
    report = workspace.reports()[-1]
    assert generic["level"] == "critical" and generic["robot"] == "refunds"
    assert generic["counts"]["system_exception"] == 1
    assert generic["report"] == str(report)
    assert "1 system exceptions (threshold 0)" in generic["reasons"]
    signed, ding = by_path["/robot/send"]
    q = parse_qs(urlparse(signed).query)
    digest = hmac.new(
        b"SECabc123", f"{q['timestamp'][0]}\nSECabc123".encode(), hashlib.sha256
    ).digest()
    assert q["sign"] == [base64.b64encode(digest).decode()]  # parse_qs undoes the quoting
    assert ding["msgtype"] == "markdown" and str(report) in ding["markdown"]["text"]
    assert by_path["/cgi-bin/webhook/send"][1]["msgtype"] == "markdown"

    [mail] = mailbox.messages
    assert "CRITICAL" in mail["Subject"] and "refunds" in mail["Subject"]
    assert mail["To"] == "ops@example.com, lead@example.com"
    body = mail.get_payload(decode=True).decode()
    assert str(report) in body and "system_exception 1" in body
    everything = json.dumps([b for _, b in hook.posts], ensure_ascii=False) + body
    assert PASSWORD not in everything and "SECabc123" not in everything

    # the ledger remembers where the alert went
    import sqlite3

    conn = sqlite3.connect(workspace.ledger)
    [summary] = conn.execute("SELECT summary FROM runs").fetchone()
    conn.close()
    assert "critical: email ops@example.com, lead@example.com" in summary


@pytest.mark.browser
def test_unreachable_shop_alerts_as_a_failed_run(tmp_path: Path, receivers: Receivers) -> None:
    hook, mailbox, _smtp_port = receivers
    from conftest import robot_env, robots_cmd

    ws = alerting_workspace(tmp_path / "ws", f"http://127.0.0.1:{dead_port()}/", receivers, "S3")
    import subprocess

    result = subprocess.run(
        robots_cmd("run", "refunds", "-w", str(ws)),
        capture_output=True,
        text=True,
        timeout=300,
        env=robot_env(),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(hook.posts) == 3 and len(mailbox.messages) == 1
    generic = next(b for p, b in hook.posts if p == "/generic")
    assert generic["level"] == "critical"
    assert generic["reasons"][0].startswith("the run failed: SystemException: could not work")


def test_a_run_that_fails_before_its_engine_starts_still_alerts(
    tmp_path: Path, receivers: Receivers
) -> None:
    """The alerts follow a run as its engine's after_run hook; a robot that fails before its
    engine gets that far (its preparation, say) is alerted on all the same, from the error."""
    hook, mailbox, _smtp_port = receivers
    root = alerting_workspace(tmp_path / "ws", f"http://127.0.0.1:{dead_port()}/", receivers, "S4")
    ws = load_workspace(root)

    class FailsEarly:
        def __init__(self, stop: StopRequest) -> None:
            self.run = RobotRun(ws, "refunds", root / "refunds.toml", options=RunOptions(stop=stop))

        def perform(self) -> RunResult:
            self.run.real_ledger.close()
            raise SystemException("could not prepare the run")

    with pytest.raises(SystemException) as caught:
        execute_run(ws, "refunds", None, FailsEarly)
    assert hook.posts == []  # not before the CLI has said the error's line
    for later in caught.value.deferred:  # type: ignore[attr-defined]
        later()
    assert len(hook.posts) == 3 and len(mailbox.messages) == 1
    generic = next(b for p, b in hook.posts if p == "/generic")
    assert generic["level"] == "critical"
    assert generic["reasons"][0] == "the run failed: SystemException: could not prepare the run"


@pytest.mark.browser
@pytest.mark.refunds(150)
def test_run_over_its_time_limit_is_stopped_and_alerted(
    workspace: Workspace, receivers: Receivers
) -> None:
    from test_scheduler import Scheduler, schedule, wait_for

    hook, mailbox, _smtp_port = receivers
    extra = "[scheduler]\nrun_time_limit_s = 8\nstop_grace_s = 60\n" + schedule(
        "slow", every_seconds=1
    )
    ws = alerting_workspace(
        workspace.root, workspace.sandbox.url, receivers, "S3", extra=extra, parallel=1
    )
    sched = Scheduler(ws)
    try:
        [fire] = wait_for(
            "a timed-out fire",
            lambda: [f for f in sched.finished() if f["outcome"].startswith("timed out")],
            timeout=180,
        )
    finally:
        sched.stop()
    assert fire["outcome"] == "timed out after 8 s" and fire["exit_code"] == 143
    [generic] = [b for p, b in hook.posts if p == "/generic"]  # the robot itself stays quiet
    assert generic["level"] == "critical"
    assert "the run failed: timed out after 8 s" in generic["reasons"]
    [mail] = mailbox.messages
    assert "timed out after 8 s" in mail.get_payload(decode=True).decode()
    assert "acting" not in {r["state"] for r in workspace.ledger_rows()}


@pytest.mark.browser
@pytest.mark.refunds(40)
def test_every_real_run_sends_its_summary_where_ops_are(
    workspace: Workspace, receivers: Receivers
) -> None:
    """Not only alarms: after a quiet run, one Chinese summary to each channel (the counts,
    what waits for a person, what is overdue, money awaiting review, the workbooks)."""
    hook, mailbox, _smtp_port = receivers
    alerting_workspace(workspace.root, workspace.sandbox.url, receivers, "SECabc123", summary=True)
    result = workspace.run()
    assert result.returncode == 0
    report = workspace.reports()[-1]
    assert len(hook.posts) == 3  # generic, DingTalk, WeCom: one summary each, no alert
    by_path = {p.split("?")[0]: body for p, body in hook.posts}
    generic = by_path["/generic"]
    assert generic["level"] == "info" and "运行完成" in generic["title"]
    text = generic["text"]
    truth = workspace.sandbox.truth()
    waiting = sum(1 for t in truth.values() if t["expected"] == "person")
    approved = sum(1 for t in truth.values() if t["expected"] == "approve")
    assert f"已自动同意 {approved}" in text and f"转人工 {waiting}" in text
    assert f"待人工处理（全部）：{waiting}" in text and "已超时" in text and "待复核金额：¥" in text
    assert str(report) in text and str(workspace.queue) in text
    assert "运行完成" in by_path["/robot/send"]["markdown"]["text"]
    [mail] = mailbox.messages
    assert "运行完成" in str(make_header(decode_header(mail["Subject"])))
    assert str(report) in mail.get_payload(decode=True).decode()

    # a setting turns it off
    hook.posts.clear()
    alerting_workspace(workspace.root, workspace.sandbox.url, receivers, "SECabc123")
    workspace.run()
    assert hook.posts == []
