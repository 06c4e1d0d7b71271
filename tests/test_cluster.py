"""The cluster's shared parts on real servers: a robot run whose ledger is PostgreSQL
(robots.toml ``[cluster]``), and its run lock, which is the database's advisory lock."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy
from conftest import (
    Workspace,
    approvals,
    expected_approvals,
    reaped,
    robot_env,
    robots_cmd,
    write_workspace,
)

from robots.errors import RunLocked
from robots.ledger import Ledger, State
from robots.registry import load_workspace
from robots.runtime.lock import cluster_is_locked, cluster_lock, run_lock


def cluster_workspace(root: Path, url: str, ledger_url: str) -> Path:
    return write_workspace(root, url, extra=f'[cluster]\nledger = "{ledger_url}"\n')


def test_the_advisory_lock_keeps_two_runs_of_a_robot_apart(postgres_url: str) -> None:
    with cluster_lock(postgres_url, "refunds", holder="test one"):
        assert cluster_is_locked(postgres_url, "refunds")
        assert not cluster_is_locked(postgres_url, "pagescan")  # each robot its own lock
        with (
            pytest.raises(RunLocked, match=r"another refunds run is in progress .*test one"),
            cluster_lock(postgres_url, "refunds", holder="test two"),
        ):
            pass
    assert not cluster_is_locked(postgres_url, "refunds")
    with cluster_lock(postgres_url, "refunds", holder="test three"):  # free again
        pass


def test_a_killed_holder_leaves_no_lock_behind(postgres_url: str, tmp_path: Path) -> None:
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from robots.runtime.lock import cluster_lock\n"
            f"with cluster_lock({postgres_url!r}, 'refunds', holder='doomed'):\n"
            "    print('held', flush=True); time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with reaped(holder):
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert cluster_is_locked(postgres_url, "refunds")
        holder.kill()
        holder.wait(10)
    for _ in range(100):  # the server ends the session of a dead client
        if not cluster_is_locked(postgres_url, "refunds"):
            break
        time.sleep(0.1)
    with cluster_lock(postgres_url, "refunds", holder="next"):
        pass


def test_the_workspace_takes_its_ledger_and_lock_from_cluster_or_the_environment(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_workspace(tmp_path / "ws", None)
    ws = load_workspace(root)
    assert ws.ledger_url == f"sqlite:///{root / 'state' / 'ledger.sqlite3'}"
    monkeypatch.setenv("ROBOTS_LEDGER", postgres_url.replace("+psycopg", ""))
    assert ws.ledger_url == postgres_url  # postgresql:// means psycopg 3
    with run_lock(ws, "refunds", holder="test"):
        assert cluster_is_locked(postgres_url, "refunds")
    assert not (root / "state" / "locks").exists()


@pytest.mark.browser
@pytest.mark.refunds(80)
def test_a_robot_run_on_the_cluster_ledger(
    tmp_path: Path, workspace: Workspace, postgres_url: str
) -> None:
    """The refunds robot with its ledger in PostgreSQL: the approvals are the ground truth,
    each once; the ledger rows and the run are in the database, nothing on disk; a second
    run started while the first holds the lock does not start; `robots runs` reads it."""
    root = cluster_workspace(tmp_path / "cws", workspace.sandbox.url, postgres_url)
    ws = Workspace(root, workspace.sandbox)
    first = ws.popen()
    with reaped(first):
        ledger = Ledger(postgres_url)
        try:
            for _ in range(600):  # the run holds its lock once its run row is written
                if ledger.recent_runs("refunds") or first.poll() is not None:
                    break
                time.sleep(0.05)
            second = ws.run(check=False)
            _, err = first.communicate(timeout=600)
        finally:
            ledger.close()
    assert first.returncode == 0, err
    assert second.returncode == 75, second.stderr
    assert "another refunds run is in progress" in second.stderr.splitlines()[0]
    approved = approvals(ws)
    assert max(approved.values()) == 1
    assert set(approved) == expected_approvals(ws)
    assert not (root / "state" / "ledger.sqlite3").exists()
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            states = dict(
                conn.exec_driver_sql(
                    "SELECT state, count(*) FROM work_items GROUP BY state"
                ).fetchall()
            )
            [run] = conn.exec_driver_sql("SELECT run_id, ended_at FROM runs").fetchall()
    finally:
        engine.dispose()
    assert State.ACTING not in states and State.PENDING not in states
    assert states[State.DONE] == len(approved)
    assert run.ended_at is not None
    shown = subprocess.run(
        robots_cmd("runs", "-w", str(root)),
        capture_output=True,
        text=True,
        timeout=120,
        env=robot_env(),
    )
    assert shown.returncode == 0, shown.stderr
    assert run.run_id in shown.stdout
    # a second run finds everything done or handed over: it acts on nothing
    again = ws.run()
    assert again.returncode == 0
    assert approvals(ws) == approved


def test_a_ledger_that_does_not_answer_is_one_clear_line(tmp_path: Path) -> None:
    from conftest import dead_port

    root = write_workspace(tmp_path / "ws", "http://127.0.0.1:9/")
    dead = f"postgresql://robots:Hush-7731@127.0.0.1:{dead_port()}/robots"
    for args in (("run", "refunds"), ("runs",)):
        done = subprocess.run(
            robots_cmd(*args, "-w", str(root)),
            capture_output=True,
            text=True,
            timeout=120,
            env={**robot_env(), "ROBOTS_LEDGER": dead},
        )
        assert done.returncode == 69, done.stderr
        first = done.stderr.strip().splitlines()[0]
        assert first.startswith("LedgerUnavailable: the ledger at postgresql"), done.stderr
        assert "does not answer" in first and "ROBOTS_LEDGER" in first
        assert "Traceback" not in done.stderr and "Hush-7731" not in done.stderr + done.stdout
