"""`robots runs` and `robots runs show`: the run history as people read it, from a real ledger."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import (
    Workspace,
    dead_port,
    robot_env,
    robots_cmd,
    stop_sandbox,
    write_workspace,
)

from robots.ledger import Ledger, State
from robots.registry import load_workspace


def robots(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd(*args, "-w", str(ws)),
        capture_output=True,
        text=True,
        timeout=120,
        env={**robot_env(), "COLUMNS": "250"},
    )


def test_runs_table_and_one_run_in_detail(tmp_path: Path) -> None:
    ws_root = write_workspace(tmp_path / "ws", None)
    ws = load_workspace(ws_root)
    ledger = Ledger.at(ws.path(ws.config.paths.ledger))
    ledger.begin_run("20261123-030000-refunds-aaaa", "refunds", "r.toml", dry_run=False)
    for key, state, reason in [
        ("RF1@WAIT_SELLER_AGREE", State.DONE, ""),
        ("RF2@WAIT_SELLER_AGREE", State.BUSINESS_EXCEPTION, "OVER_AMOUNT_CAP"),
        ("RF3@WAIT_SELLER_AGREE", State.SYSTEM_EXCEPTION, "SYSTEM_ERROR"),
    ]:
        ledger.claim(
            "refunds", key, run_id="20261123-030000-refunds-aaaa", fingerprint="f", details={}
        )
        ledger.finish(
            "refunds",
            key,
            state,
            run_id="20261123-030000-refunds-aaaa",
            reason_code=reason,
            message="页面 500" if reason == "SYSTEM_ERROR" else "",
            evidence=["logs/x/evidence/RF3-attempt1.png"] if reason == "SYSTEM_ERROR" else [],
        )
    ledger.end_run(
        "20261123-030000-refunds-aaaa",
        {"counts": {"approved": 1, "handed_to_person": 1, "system_exception": 1}},
    )
    ledger.annotate_run(
        "20261123-030000-refunds-aaaa",
        {
            "report": "reports/refunds-x.xlsx",
            "by": "scheduler (nightly)",
            "alerts": ["critical: x"],
        },
    )
    ledger.begin_run("20261123-040000-pagescan-bbbb", "pagescan", "p.toml", dry_run=False)
    ledger.end_run("20261123-040000-pagescan-bbbb", {"counts": {"pages_read": 200}})
    ledger.begin_run("20261123-050000-returns-cccc", "returns", "t.toml", dry_run=False)
    ledger.close()  # the returns run never ended: killed

    table = robots(ws_root, "runs")
    assert table.returncode == 0, table.stderr
    lines = {line.split()[1]: line for line in table.stdout.splitlines() if "20261123-" in line}
    assert "system exceptions" in lines["20261123-030000-refunds-aaaa"]
    assert "approved 1 · to a person 1 · system exc. 1" in lines["20261123-030000-refunds-aaaa"]
    assert "scheduler (nightly)" in lines["20261123-030000-refunds-aaaa"]
    assert "ok" in lines["20261123-040000-pagescan-bbbb"]
    assert "interrupted (no end recorded)" in lines["20261123-050000-returns-cccc"]
    only = robots(ws_root, "runs", "--robot", "pagescan")
    assert "pagescan-bbbb" in only.stdout and "refunds-aaaa" not in only.stdout

    shown = robots(ws_root, "runs", "show", "20261123-0300")  # a unique prefix will do
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "reports/refunds-x.xlsx" in out and "critical: x" in out
    assert "RF3@WAIT_SELLER_AGREE" in out and "页面 500" in out
    assert "logs/x/evidence/RF3-attempt1.png" in out and "3 items" in out
    exceptions = robots(ws_root, "runs", "show", "20261123-0300", "--state", "business_exception")
    assert "OVER_AMOUNT_CAP" in exceptions.stdout and "RF1@" not in exceptions.stdout

    unknown = robots(ws_root, "runs", "show", "nope")
    assert unknown.returncode == 2
    assert "no run 'nope' in the ledger" in unknown.stderr and "Traceback" not in unknown.stderr
    ambiguous = robots(ws_root, "runs", "show", "20261123-0")
    assert ambiguous.returncode == 2


@pytest.mark.browser
def test_a_run_against_a_dead_shop_is_recorded_as_failed(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{dead_port()}/"
    ws_root = write_workspace(tmp_path / "ws", dead, attempts=1)
    result = robots(ws_root, "run", "refunds")
    assert result.returncode == 1, result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("SystemException: could not work with the shop at " + dead), first
    assert "Traceback" not in result.stderr

    table = robots(ws_root, "runs")
    assert table.returncode == 0, table.stderr
    [line] = [ln for ln in table.stdout.splitlines() if "-refunds-" in ln]
    assert "failed: SystemException: could not work with the shop" in line
    ledger = Ledger.at(ws_root / "state" / "ledger.sqlite3")
    [run] = ledger.recent_runs()
    ledger.close()
    assert run.ended_at is not None and run.summary["exit_code"] == 1
    shown = robots(ws_root, "runs", "show", run.run_id)
    assert "failed: SystemException" in shown.stdout


@pytest.mark.browser
@pytest.mark.refunds(30)
def test_apply_with_the_shop_down_prints_one_line(tmp_path: Path, workspace: Workspace) -> None:
    workspace.run()
    [report] = workspace.reports()
    stop_sandbox(workspace.sandbox)  # the shop goes down between the report and the review
    result = robots(workspace.root, "apply", str(report))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    failure = [ln for ln in lines if ln.startswith("SystemException: ")]
    assert failure and failure[0].startswith("SystemException: could not work with the shop")
    assert "Traceback" not in result.stderr
