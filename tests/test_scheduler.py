"""The scheduler service: real APScheduler, real child processes, real robots, real sandbox."""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import Workspace, robot_env, robots_cmd, write_workspace

from robots.config import Blackout
from robots.errors import ConfigError
from robots.registry import load_workspace
from robots.runtime.crontab import cron_trigger
from robots.runtime.lock import is_locked
from scheduler.calendar import blackout_at, non_working_reason
from scheduler.history import BUSY
from scheduler.service import stored_jobs

TZ = "Asia/Shanghai"


# -- the calendar (pure) ------------------------------------------------------------------------
def test_chinese_holidays_and_make_up_working_days() -> None:
    assert non_working_reason(date(2026, 10, 1)) == "public holiday (National Day)"
    assert non_working_reason(date(2026, 2, 17), "CN") is not None  # Spring Festival
    assert non_working_reason(date(2026, 11, 21)) == "weekend"  # a plain Saturday
    # Sundays/Saturdays China makes into working days around long holidays
    assert non_working_reason(date(2026, 1, 4)) is None
    assert non_working_reason(date(2026, 10, 10)) is None
    assert non_working_reason(date(2026, 11, 23)) is None  # a plain Monday
    assert non_working_reason(date(2026, 11, 23), days_off=[date(2026, 11, 23)]) == (
        "company day off"
    )


@pytest.mark.parametrize(
    ("expr", "days"),
    [
        ("30 9 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 3 * * 0", ["Sun"]),
        ("0 3 * * 7", ["Sun"]),
        ("0 3 * * 6,0", ["Sat", "Sun"]),
        ("0 3 * * */2", ["Sun", "Tue", "Thu", "Sat"]),
        ("0 3 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 3 * * *", ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ],
)
def test_cron_weekdays_mean_what_they_mean_in_a_crontab(expr: str, days: list[str]) -> None:
    tz = ZoneInfo(TZ)
    trigger = cron_trigger(expr, tz)
    fire, seen = datetime(2026, 11, 22, 0, 0, tzinfo=tz), set()  # a Sunday
    for _ in range(14):
        fire = trigger.get_next_fire_time(None, fire)
        seen.add(fire.strftime("%a"))
        fire = fire.replace(hour=23, minute=59)
    assert sorted(seen) == sorted(days)


def test_blackout_windows() -> None:
    night = Blackout(
        name="双11", start=datetime(2026, 11, 10, 20, 0), end=datetime(2026, 11, 12, 2, 0)
    )
    assert blackout_at(datetime(2026, 11, 10, 19, 59), [night]) is None
    assert blackout_at(datetime(2026, 11, 10, 20, 0), [night]) is night
    assert blackout_at(datetime(2026, 11, 12, 1, 59), [night]) is night
    assert blackout_at(datetime(2026, 11, 12, 2, 0), [night]) is None


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('cron = "61 3 * * *"', "not a cron expression"),
        ('cron = "0 3 * * *"\nevery_seconds = 60', "exactly one of cron or every_seconds"),
        ("working_days_only = true", "exactly one of cron or every_seconds"),
    ],
)
def test_bad_schedules_are_config_errors(tmp_path: Path, schedule: str, message: str) -> None:
    extra = f'[[schedules]]\nname = "s"\ntarget = "sandbox"\n{schedule}\n'
    ws = write_workspace(tmp_path / "ws", None, extra=extra)
    with pytest.raises(ConfigError, match=message) as err:
        load_workspace(ws)
    assert "schedules.0" in str(err.value)


def test_unknown_target_and_time_zone_are_config_errors(tmp_path: Path) -> None:
    extra = '[[schedules]]\nname = "s"\ntarget = "nope"\nevery_seconds = 5\n'
    with pytest.raises(ConfigError, match="names target 'nope'"):
        load_workspace(write_workspace(tmp_path / "a", None, extra=extra))
    extra = '[scheduler]\ntimezone = "Mars/Base"\n'
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_workspace(write_workspace(tmp_path / "b", None, extra=extra))


# -- the service --------------------------------------------------------------------------------
def wait_for(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    """Poll until ``check`` returns something true; the scheduler has no event to await."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Scheduler:
    def __init__(self, ws: Path) -> None:
        self.ws = ws
        self.process = subprocess.Popen(
            robots_cmd("scheduler", "start", "-w", str(ws)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=robot_env(),
        )

    def log_line(self) -> str:
        """The service's own log so far (it writes one to logs/scheduler/scheduler.log)."""
        log = self.ws / "logs" / "scheduler" / "scheduler.log"
        return log.read_text(encoding="utf-8") if log.exists() else ""

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=180)
        return self.process.returncode, out

    def fires(self) -> list[sqlite3.Row]:
        db = self.ws / "scheduler" / "jobs.sqlite3"
        if not db.exists():
            return []
        conn = sqlite3.connect(db, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute("SELECT * FROM schedule_runs ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []
        finally:
            conn.close()

    def finished(self) -> list[sqlite3.Row]:
        """Fires that ran or were skipped for a reason of their own (not "still going")."""
        return [f for f in self.fires() if f["ended_at"] and f["outcome"] not in ("running", BUSY)]


def ledger_runs(ws: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(ws / "state" / "ledger.sqlite3", timeout=30)
    conn.row_factory = sqlite3.Row
    with conn:
        rows = conn.execute("SELECT * FROM runs WHERE dry_run = 0 ORDER BY started_at").fetchall()
    conn.close()
    return rows


def schedule(name: str, **fields: object) -> str:
    lines = [f'[[schedules]]\nname = "{name}"\ntarget = "sandbox"']
    for k, v in fields.items():
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}")
    return "\n".join(lines) + "\n"


@pytest.mark.browser
@pytest.mark.refunds(30)
def test_schedule_fires_a_robot_in_a_child_process(workspace: Workspace) -> None:
    ws = write_workspace(
        workspace.root, workspace.sandbox.url, extra=schedule("often", every_seconds=2)
    )
    sched = Scheduler(ws)
    try:
        fire = wait_for("a finished fire", lambda: sched.finished())[0]
    finally:
        code, out = sched.stop()
    assert code == 0, out
    assert fire["outcome"] == "ok" and fire["exit_code"] == 0, dict(fire)
    [run] = [r for r in ledger_runs(ws) if r["run_id"] == fire["run_id"]]
    assert '"by": "scheduler (often)"' in run["summary"]
    assert run["ended_at"] is not None
    assert workspace.sandbox.audit(), "the scheduled run approved refunds"
    status = subprocess.run(
        robots_cmd("scheduler", "status", "-w", str(ws)),
        capture_output=True,
        text=True,
        env=robot_env(),
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    # Every 2 s: on a loaded machine a later fire may have started before the stop, and the
    # status shows the newest fire that was not skipped as busy (its run, or none if the stop
    # came before that run began).
    newest = [f for f in sched.fires() if f["outcome"] != BUSY][-1]
    assert "often" in status.stdout and newest["run_id"] in status.stdout, status.stdout
    assert "CST" in status.stdout  # next fire time, in the schedules' zone


def held_by_scheduler(ws: Path) -> bool:
    try:
        owner = (ws / "state" / "locks" / "refunds.owner.json").read_text(encoding="utf-8")
    except OSError:
        return False
    return is_locked(ws / "state" / "locks", "refunds") and "scheduler (" in owner


@pytest.mark.browser
@pytest.mark.refunds(80)
def test_overlapping_triggers_never_overlap_and_cron_shares_the_lock(
    workspace: Workspace,
) -> None:
    extra = schedule("a", every_seconds=1) + schedule("b", every_seconds=1)
    ws = write_workspace(workspace.root, workspace.sandbox.url, parallel=1, extra=extra)
    sched = Scheduler(ws)
    try:
        owner = ws / "state" / "locks" / "refunds.owner.json"
        wait_for(  # a scheduled run holds the robot's lock (not merely started)
            "a scheduled run holding the lock",
            lambda: (
                is_locked(ws / "state" / "locks", "refunds")
                and "scheduler (" in owner.read_text(encoding="utf-8")
            ),
        )
        # a cron-started run of the same robot meets the lock and does not start
        cron = workspace.run(check=False, timeout=120)
        assert cron.returncode == 75, cron.stderr
        assert "another refunds run is in progress" in cron.stderr
        assert "scheduler (" in cron.stderr and "Traceback" not in cron.stderr
        wait_for(
            "two finished runs",
            lambda: len([f for f in sched.finished() if f["outcome"] == "ok"]) >= 2,
            timeout=300,
        )
    finally:
        code, _ = sched.stop()
    assert code == 0
    outcomes = {f["outcome"] for f in sched.fires()}
    assert outcomes & {
        "skipped: another run of the robot held its lock",
        "skipped: its previous run was still going",
    }
    runs = ledger_runs(ws)
    assert len(runs) >= 2
    for earlier, later in itertools.pairwise(runs):
        assert earlier["ended_at"] is not None
        assert later["started_at"] >= earlier["ended_at"], "two refunds runs overlapped"
    approved = [r["refund_id"] for r in workspace.sandbox.audit()]
    assert len(approved) == len(set(approved))


def set_next_fire(ws: Path, name: str, when: datetime) -> None:
    """Pretend the service was down at ``when``: the stored job's next fire lies in the past."""
    store = stored_jobs(load_workspace(ws))
    try:
        job = store.lookup_job(name)
        assert job is not None, f"no stored job {name}"
        job.next_run_time = when
        store.update_job(job)
    finally:
        store.shutdown()


def store_schedules(ws: Path) -> None:
    """Start the service once, so its store holds robots.toml's schedules, and stop it."""
    sched = Scheduler(ws)
    try:
        wait_for("the schedules stored", lambda: "scheduler running" in sched.log_line())
    finally:
        sched.stop()


@pytest.mark.browser
@pytest.mark.refunds(20)
def test_misfires_inside_the_grace_run_once_and_outside_are_skipped(
    workspace: Workspace,
) -> None:
    now = datetime.now(ZoneInfo(TZ))
    # missed at -150 s, -90 s and -30 s while "down": one run (coalesced) within the grace
    extra = "[scheduler]\nmisfire_grace_s = 600\n" + schedule("hourly", every_seconds=60)
    ws = write_workspace(workspace.root, workspace.sandbox.url, extra=extra)
    store_schedules(ws)
    set_next_fire(ws, "hourly", now - timedelta(seconds=150))
    sched = Scheduler(ws)
    try:
        wait_for("the late fire", lambda: sched.finished())
    finally:
        sched.stop()
    first, *later = [f["outcome"] for f in sched.fires()]
    assert first == "ok"
    # a regular fire that came while that run went on (a loaded machine) is skipped, not run
    assert all(o == "skipped: its previous run was still going" for o in later), later
    assert len(ledger_runs(ws)) == 1
    before = len(sched.fires())

    # the same, but past a 5 s grace: recorded as missed, nothing runs
    extra = "[scheduler]\nmisfire_grace_s = 5\n" + schedule("hourly", every_seconds=60)
    ws = write_workspace(workspace.root, workspace.sandbox.url, extra=extra)
    set_next_fire(ws, "hourly", datetime.now(ZoneInfo(TZ)) - timedelta(seconds=150))
    sched = Scheduler(ws)
    try:
        wait_for("the missed fire", lambda: len(sched.fires()) == before + 1)
    finally:
        sched.stop()
    assert [f["outcome"] for f in sched.fires()][before:] == ["missed"]
    assert len(ledger_runs(ws)) == 1


def test_non_working_days_and_blackouts_skip_without_running(tmp_path: Path) -> None:
    today = datetime.now(ZoneInfo(TZ))
    extra = (
        f"[scheduler]\ndays_off = [{today.date().isoformat()}]\n"
        f'[[scheduler.blackouts]]\nname = "大促"\nstart = {(today - timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds")}\n'  # noqa: E501
        f"end = {(today + timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec='seconds')}\n"
        + schedule("weekdays", every_seconds=1, working_days_only=True, honour_blackouts=False)
        + schedule("quiet", every_seconds=1)
    )
    ws = write_workspace(tmp_path / "ws", None, extra=extra)
    sched = Scheduler(ws)
    try:
        wait_for(
            "both schedules to fire",
            lambda: {f["schedule"] for f in sched.fires()} == {"weekdays", "quiet"},
        )
    finally:
        code, out = sched.stop()
    assert code == 0, out
    details = {f["schedule"]: (f["outcome"], f["detail"]) for f in sched.fires()}
    assert details["weekdays"] == ("skipped", "not a working day: company day off")
    assert details["quiet"][0] == "skipped" and "blackout 大促" in details["quiet"][1]
    assert not (ws / "state" / "ledger.sqlite3").exists() or not ledger_runs(ws)


@pytest.mark.browser
@pytest.mark.refunds(80)
def test_sigterm_mid_run_leaves_the_ledger_consistent(workspace: Workspace) -> None:
    ws = write_workspace(
        workspace.root, workspace.sandbox.url, parallel=1, extra=schedule("s", every_seconds=1)
    )
    sched = Scheduler(ws)
    try:
        wait_for("a few approvals", lambda: len(workspace.sandbox.audit()) >= 5)
    finally:
        code, out = sched.stop()
    assert code == 0, out
    [fire] = [f for f in sched.fires() if f["outcome"] != BUSY]
    assert fire["outcome"] == "stopped (SIGTERM)" and fire["exit_code"] == 143, dict(fire)
    rows = workspace.ledger_rows()
    states = {r["state"] for r in rows}
    assert "acting" not in states, "a stop must not leave an item half-done"
    assert "pending" in states, "the stop came before the end: items were left for later"
    approved = [r["refund_id"] for r in workspace.sandbox.audit()]
    done = [r for r in rows if r["state"] == "done" and r["action"]]
    assert len(approved) == len(set(approved)) == len(done)

    # the next run (from cron, say) finishes the job, approving nothing twice
    workspace.run()
    approved = [r["refund_id"] for r in workspace.sandbox.audit()]
    assert len(approved) == len(set(approved))
    truth = workspace.sandbox.truth()
    expected = {rid for rid, t in truth.items() if t["expected"] == "approve"}
    assert set(approved) == expected
    assert {r["state"] for r in workspace.ledger_rows()} <= {"done", "business_exception"}
