"""The cluster through its servers' bad days (issue 28): PostgreSQL restarted or stopped while
items are acting, a worker cut off from PostgreSQL, Redis killed with or without its data or
away for 30 s, the coordinator stopped with items in hand. Each test has its own PostgreSQL
and Redis (``scripts/services.sh``, private), and nothing is killed beyond the fault itself:
the same coordinator must finish the run (exit 0) — or, stopped on purpose, the next one —
with the shop's ground truth approved once, nothing acting or held, and the same money in
the workbooks, the ledger and the shop's audit log."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy
from conftest import SCENARIO, Workspace, approvals, reaped, write_workspace
from report_checks import values
from test_alerts import Receiver
from test_workers import (
    acting_keys,
    assert_the_ground_truth_once,
    cluster_toml,
    cluster_ws,
    coordinator,
    expected_approvals,
    kill_group,
    ledger_runs,
    pg_rows,
    start_worker,
    wait_for_approvals,
)

from robots.refunds.policy import MOVES_MONEY

pytestmark = [pytest.mark.browser, pytest.mark.server]

SERVICES = Path(__file__).resolve().parent.parent / "scripts" / "services.sh"
# quick to notice a lost item; a coordinator alerts after 5 s of an outage (no channel: logged)
TUNING = "visibility_timeout_s = 8\nresend_after_s = 4\noutage_alert_s = 5\n"


@dataclass
class Servers:
    """A private PostgreSQL and Redis for one test, which it can stop, restart and kill."""

    dir: Path
    pg_url: str
    redis_url: str

    @property
    def pg_port(self) -> int:
        return int(re.search(r":(\d+)/", self.pg_url).group(1))  # type: ignore[union-attr]

    @property
    def redis_port(self) -> int:
        return int(re.search(r":(\d+)/", self.redis_url).group(1))  # type: ignore[union-attr]

    def pg_ctl(self, *args: str) -> None:
        run_as = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        options = f"-p {self.pg_port} -k {self.dir}/pg -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *run_as,
                *(f"{bin_dir}/pg_ctl", "-D", f"{self.dir}/pg/data", "-w", *args),
                *("-l", f"{self.dir}/pg/server.log", "-o", options),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def redis_kill(self) -> None:
        os.kill(int((self.dir / "redis.pid").read_text()), signal.SIGKILL)
        with contextlib.suppress(OSError):
            (self.dir / "redis.pid").unlink()
        while answers(self.redis_port):
            time.sleep(0.05)

    def redis_start(self, *, keep_data: bool) -> None:
        subprocess.run(
            [
                "redis-server",
                *("--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "yes" if keep_data else "no", "--dir", str(self.dir)),
                *("--daemonize", "yes", "--pidfile", str(self.dir / "redis.pid")),
                *("--logfile", str(self.dir / "redis.log")),
            ],
            check=True,
            timeout=30,
        )
        while not answers(self.redis_port):
            time.sleep(0.05)


def answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@pytest.fixture
def servers() -> Iterator[Servers]:
    # short: PostgreSQL's socket path (the folder) must fit in 107 bytes
    where = Path(tempfile.mkdtemp(prefix="rf", dir="/tmp"))
    env = {**os.environ, "ROBOTS_PRIVATE_SERVICES": "1"}
    started = subprocess.run(
        ["bash", str(SERVICES), "start", str(where)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert started.returncode == 0, started.stderr
    found = dict(re.findall(r"(ROBOTS_TEST_\w+)=(\S+)", started.stdout))
    servers = Servers(where, found["ROBOTS_TEST_POSTGRES"], found["ROBOTS_TEST_REDIS"])
    # Redis keeps its data on disk (an append-only file) from now on: a kill loses nothing
    # unless the test says so
    subprocess.run(
        ["redis-cli", "-p", str(servers.redis_port), "config", "set", "appendonly", "yes"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield servers
    finally:
        subprocess.run(["bash", str(SERVICES), "stop", str(where)], timeout=120, check=False)


class Cut:
    """A TCP path to PostgreSQL that can be cut: every connection through it is reset and new
    ones are refused for a while (a link going down under a worker), then it works again."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _reset(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def cut_for(self, seconds: float) -> None:
        self.open.clear()
        self._reset()
        time.sleep(seconds)
        self.open.set()

    def close(self) -> None:
        self.server.close()
        self._reset()


def slow_approvals(ws: Workspace) -> None:
    """Every approval lands, then its answer takes 0.6 s: a fault mostly finds items acting."""
    for rid in expected_approvals(ws):
        ws.sandbox.control(
            "faults", path_prefix=f"/refunds/{rid}/approve", count=1, after=True, delay_s=0.6
        )


def wait_acting(
    ws: Workspace, servers: Servers, approvals: int, run: subprocess.Popen[str]
) -> None:
    """Until ``approvals`` landed and an item is acting: the moment for the fault."""
    wait_for_approvals(ws, approvals, alive=[run])
    while not acting_keys(servers.pg_url):
        assert run.poll() is None, run.communicate()
        time.sleep(0.02)


def finish(run: subprocess.Popen[str]) -> str:
    """The coordinator's end, which must be clean by itself; its stderr."""
    with reaped(run):
        _out, err = run.communicate(timeout=900)
    assert run.returncode == 0, err
    assert "Traceback" not in err, err
    return err


def assert_everything_holds(ws: Workspace, servers: Servers, *, cap: int | None = None) -> None:
    """The ground truth approved once (with a ``cap``: a part of it, the money under the
    cap); nothing acting, pending or held; every run ended, its counts the ledger's; the same
    money in the workbooks, the ledger and the audit log."""
    if cap is None:
        assert_the_ground_truth_once(ws, servers.pg_url)
    else:
        approved = approvals(ws)
        assert max(approved.values()) == 1 and set(approved) < expected_approvals(ws)
        paid = [r for r in ws.sandbox.audit() if r["action"] in MOVES_MONEY]
        assert 0 < sum(Decimal(r["amount"]) for r in paid) <= cap
        reasons = pg_rows(servers.pg_url, "SELECT DISTINCT reason_code FROM work_items")
        assert ("DAILY_CAP_REACHED",) in reasons, reasons
        states = pg_rows(servers.pg_url, "SELECT DISTINCT state FROM work_items")
        assert not {("acting",), ("pending",)} & set(states), states
    held = pg_rows(servers.pg_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert held == [(0,)], held
    runs = ledger_runs(servers.pg_url)
    assert all(ended is not None for _, ended, _ in runs), runs
    approved_rows = pg_rows(
        servers.pg_url,
        "SELECT run_id, item_key, amount_cents FROM work_items "
        "WHERE state = 'done' AND action <> ''",
    )
    for run_id, _ended, summary in runs:  # `robots runs` shows these counts
        mine = [r for r in approved_rows if r[0] == run_id]
        assert summary["counts"].get("approved", 0) == len(mine), (run_id, summary)
    ledger_money = sum(Decimal(r[2]) / 100 for r in approved_rows)
    audit_money = sum(
        Decimal(r["amount"]) for r in ws.sandbox.audit() if r["action"] in MOVES_MONEY
    )
    shown: dict[str, Decimal] = {}
    for run_id, _ended, _summary in runs:
        book = openpyxl.load_workbook(ws.root / "reports" / f"refunds-{run_id}.xlsx")
        for row in values(book["已同意"]):
            assert row["退款编号"] not in shown, row
            assert row["订单编号"] and row["买家"], row  # the row it had when it was decided
            moved = row["操作代码"] in MOVES_MONEY
            shown[row["退款编号"]] = Decimal(str(row["退款金额"] if moved else 0))
    assert set(shown) == {r[1].split("@")[0] for r in approved_rows}
    assert sum(shown.values()) == ledger_money == audit_money, (shown, ledger_money, audit_money)


def fault_ws(
    tmp_path: Path,
    workspace: Workspace,
    servers: Servers,
    *,
    more: str = "",
    cap: int | None = None,
) -> Workspace:
    """The fault tests' workspace (``more``: what robots.toml says after its [cluster]; a
    daily ``cap`` in yuan, else one no run of this size reaches)."""
    text = None
    if cap is not None:
        text = SCENARIO.read_text(encoding="utf-8").replace(
            "daily_auto_total = 20000", f"daily_auto_total = {cap}"
        )
    ws = cluster_ws(
        tmp_path / "cws",
        workspace,
        servers.pg_url,
        servers.redis_url,
        tuning=TUNING + more,
        scenario_text=text,
    )
    slow_approvals(ws)
    return ws


@contextlib.contextmanager
def at_the_fault(ws: Workspace, servers: Servers) -> Iterator[subprocess.Popen[str]]:
    """A worker, then the coordinator, yielded once an item is acting: the moment for the
    fault. The worker must outlive it; it is killed at the end."""
    worker = start_worker(ws.root, 1)
    try:
        run = coordinator(ws)
        wait_acting(ws, servers, 5, run)
        yield run
        assert worker.poll() is None, (ws.root / "worker-1.out").read_text()[-3000:]
    finally:
        kill_group(worker)


@pytest.mark.refunds(60)
@pytest.mark.parametrize("fault", ["restarted", "stopped 10 s", "restarted, the cap binding"])
def test_postgresql_going_away_while_items_act_costs_a_pause(
    tmp_path: Path, workspace: Workspace, servers: Servers, fault: str
) -> None:
    cap = 2000 if "cap" in fault else None  # of the ¥4,546 the shop's approvals would pay
    ws = fault_ws(tmp_path, workspace, servers, cap=cap)
    with at_the_fault(ws, servers) as run:
        if fault.startswith("restarted"):
            servers.pg_ctl("restart", "-m", "fast")
        else:
            servers.pg_ctl("stop", "-m", "fast")
            time.sleep(10)
            servers.pg_ctl("start")
        err = finish(run)
    assert_everything_holds(ws, servers, cap=cap)
    if fault == "stopped 10 s":
        assert "账本 PostgreSQL" in err and "answers again" in err, err[-3000:]


@pytest.mark.refunds(60)
def test_a_worker_cut_off_from_postgresql_for_15_s_loses_nothing(
    tmp_path: Path, workspace: Workspace, servers: Servers
) -> None:
    ws = fault_ws(tmp_path, workspace, servers)
    cut = Cut(servers.pg_port)
    through_cut = servers.pg_url.replace(f":{servers.pg_port}/", f":{cut.port}/")
    cut_off = start_worker(ws.root, 1, ROBOTS_LEDGER=through_cut)
    other = start_worker(ws.root, 2)
    try:
        run = coordinator(ws)
        wait_acting(ws, servers, 5, run)
        cut.cut_for(15)
        finish(run)
        for proc in (cut_off, other):
            assert proc.poll() is None
        said = (ws.root / "worker-1.out").read_text()
        assert "the ledger went away with" in said, said[-3000:]  # the cut found an item
    finally:
        kill_group(cut_off)
        kill_group(other)
        cut.close()
    assert_everything_holds(ws, servers)


@pytest.mark.refunds(60)
@pytest.mark.parametrize(
    ("away_s", "keep_data"),
    [(0, False), (0, True), (30, True)],
    ids=["data lost", "data kept", "away 30 s"],
)
def test_redis_killed_costs_a_pause(
    tmp_path: Path, workspace: Workspace, servers: Servers, away_s: float, keep_data: bool
) -> None:
    hook = Receiver()  # the outage alert (after 5 s) goes where the alerts go
    alerts = f'\n[alerts]\nrun_summary = false\n[[alerts.webhooks]]\nurl = "{hook.url}/generic"\n'
    ws = fault_ws(tmp_path, workspace, servers, more=alerts)
    try:
        with at_the_fault(ws, servers) as run:
            servers.redis_kill()
            time.sleep(away_s)
            servers.redis_start(keep_data=keep_data)
            err = finish(run)
    finally:
        hook.close()
    assert_everything_holds(ws, servers)
    if away_s:
        assert "队列 Redis" in err and "answers again" in err, err[-3000:]
        texts = sorted(body["text"] for _path, body in hook.posts)  # the run's, the worker's
        assert len(texts) == 2 and all("队列 Redis 已" in t for t in texts), texts
        assert "秒无应答，运行暂停等待" in texts[0], texts  # titled by robot: refunds < worker
        assert "秒无应答，工作机一直等待" in texts[1], texts
        worker_said = (ws.root / "worker-1.out").read_text()
        assert "the worker waits for it, for ever" in worker_said, worker_said[-3000:]


@pytest.mark.refunds(60)
def test_a_coordinator_stopped_with_items_in_hand_reports_them(
    tmp_path: Path, workspace: Workspace, servers: Servers
) -> None:
    ws = fault_ws(tmp_path, workspace, servers)
    with at_the_fault(ws, servers) as first:
        first.send_signal(signal.SIGTERM)
        with reaped(first):
            _out, err = first.communicate(timeout=900)
        assert first.returncode == 143, err
        assert not acting_keys(servers.pg_url)  # it waited for the items in hand
        finish(coordinator(ws))
    assert_everything_holds(ws, servers)
    assert len(ledger_runs(servers.pg_url)) == 2


@pytest.mark.refunds(20)
@pytest.mark.parametrize("away", ["broker", "ledger"])
def test_a_coordinator_that_must_give_up_says_one_line_and_exits_69(
    tmp_path: Path, workspace: Workspace, servers: Servers, away: str
) -> None:
    """No worker takes the items; the server goes away for longer than outage_wait_s."""
    tuning = TUNING + "outage_wait_s = 4\n"
    ws = cluster_ws(tmp_path / "cws", workspace, servers.pg_url, servers.redis_url, tuning=tuning)
    run = coordinator(ws)
    with reaped(run):
        claimed: list[tuple] = []
        while not claimed:
            assert run.poll() is None, run.communicate()
            time.sleep(0.1)
            with contextlib.suppress(sqlalchemy.exc.ProgrammingError):  # no schema yet
                claimed = pg_rows(servers.pg_url, "SELECT 1 FROM work_items LIMIT 1")
        time.sleep(1)  # sent, and watched
        if away == "broker":
            servers.redis_kill()
        else:
            servers.pg_ctl("stop", "-m", "fast")
        _out, err = run.communicate(timeout=300)
    assert run.returncode == 69, err
    assert "Traceback" not in err, err
    name = {"broker": "BrokerUnavailable", "ledger": "LedgerUnavailable"}[away]
    [line] = [x for x in err.splitlines() if x.startswith(name)]
    assert "does not answer" in line and "(waited " in line, err
    if away == "broker":  # the ledger took the run's end: failed, with that line
        [(_run_id, ended, summary)] = ledger_runs(servers.pg_url)
        assert ended is not None and summary["exit_code"] == 69, summary
        assert summary["failure"] in line, (summary, line)
        pending = pg_rows(servers.pg_url, "SELECT count(*) FROM work_items WHERE state = 'pending'")
        assert pending[0][0] > 0 and summary["counts"]["not_started"] == pending[0][0], summary
    else:  # nothing could be recorded: the run is interrupted, the next one settles it
        servers.pg_ctl("start")
        [(_run_id, ended, _summary)] = ledger_runs(servers.pg_url)
        assert ended is None


@pytest.mark.refunds(60)
def test_items_held_by_a_frozen_worker_are_reported_then_freed_when_its_session_ends(
    tmp_path: Path, workspace: Workspace, servers: Servers
) -> None:
    ws = fault_ws(tmp_path, workspace, servers)
    frozen = start_worker(ws.root, 1)
    other = start_worker(ws.root, 2)
    holds_of_frozen = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE l.locktype = 'advisory' AND l.classid = 1 AND a.application_name "
        f"LIKE '%%pid {frozen.pid}'"
    )
    try:
        run = coordinator(ws)
        with reaped(run):
            wait_for_approvals(ws, 3, alive=[run])
            while pg_rows(servers.pg_url, holds_of_frozen) == [(0,)]:
                assert run.poll() is None and frozen.poll() is None
                time.sleep(0.01)
            os.killpg(frozen.pid, signal.SIGSTOP)  # the worker and its browser stop answering
            time.sleep(12)  # the rest is worked by the other; the frozen one's items stay held
            assert pg_rows(servers.pg_url, holds_of_frozen) != [(0,)]
            assert run.poll() is None  # the run waits for them
            kill_group(frozen)  # its PostgreSQL session ends: the items are free again
            _out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    finally:
        kill_group(frozen)
        kill_group(other)
    assert f"pid {frozen.pid}" in err and "stopped answering" in err, err[-3000:]
    assert_everything_holds(ws, servers)


def test_a_worker_waits_for_a_redis_that_is_gone_and_still_stops_on_sigterm(
    tmp_path: Path, servers: Servers
) -> None:
    root = write_workspace(
        tmp_path / "ws",
        "http://127.0.0.1:9/",
        extra=cluster_toml(servers.pg_url, servers.redis_url, TUNING),
    )
    worker = start_worker(root, 1)
    try:
        said = root / "worker-1.out"
        while "takes refunds from" not in said.read_text():
            assert worker.poll() is None, said.read_text()
            time.sleep(0.1)
        servers.redis_kill()
        time.sleep(20)  # workers used to give up after three tries, about 12 s
        assert worker.poll() is None, said.read_text()[-3000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, said.read_text()[-3000:]
    finally:
        kill_group(worker)
    assert (
        "队列 Redis" in said.read_text() and "the worker waits for it, for ever" in said.read_text()
    )
