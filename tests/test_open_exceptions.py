"""Everything still waiting for a person, in one workbook rewritten from the ledger, and each
run's workbook written whatever happened to the run (killed, stopped)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import openpyxl
import pytest
from conftest import Workspace, items_in_state, on_a_terminal, reaped, robot_env, robots_cmd
from report_checks import assert_no_phone_numbers, records, summary_of, values

pytestmark = pytest.mark.browser

QUEUE_SHEET = "退款待人工处理"


def queue_rows(ws: Workspace) -> dict[str, dict[str, object]]:
    wb = openpyxl.load_workbook(ws.queue)
    assert summary_of(wb)["队列 queue"].startswith("待处理队列")
    return {r["退款编号"]: r for r in values(wb[QUEUE_SHEET])}


def wait_for_hand_overs(ws: Workspace, proc: subprocess.Popen[str], n: int) -> None:
    """Until the running robot has handed ``n`` refunds to a person (it must not end first)."""
    deadline = time.monotonic() + 300
    while len(items_in_state(ws.ledger, "business_exception")) < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)


def expected_person(ws: Workspace) -> set[str]:
    return {rid for rid, t in ws.sandbox.truth().items() if t["expected"] == "person"}


@pytest.mark.refunds(60)
def test_queue_keeps_open_items_across_runs_and_drops_those_closed_in_the_shop(
    tmp_path: Path, workspace: Workspace
) -> None:
    workspace.run()
    first_run = workspace.runs()[-1]["run_id"]
    first = queue_rows(workspace)
    assert set(first) == expected_person(workspace)
    assert {r["运行 run"] for r in first.values()} == {first_run}
    assert_no_phone_numbers(workspace.queue)

    # someone handles one of them in the back office meanwhile; another one's page is gone
    # (a shop re-seeded under the same ledger, an order archived): it stays open, the run
    # goes on
    closed, gone = sorted(first)[:2]
    with workspace.sandbox.db() as conn:
        conn.execute(
            "UPDATE refunds SET status = 'CLOSED', version = version + 1 WHERE refund_id = ?",
            (closed,),
        )
        conn.execute("DELETE FROM refunds WHERE refund_id = ?", (gone,))
    second = workspace.run()
    assert second.returncode == 0, second.stderr
    assert "open:" in second.stderr
    assert gone in queue_rows(workspace)
    [newest] = workspace.reports()[-1:]
    assert values(openpyxl.load_workbook(newest)["待人工处理"]) == []  # not asked twice...
    now_open = queue_rows(workspace)  # ...but still in the queue, from the first run
    assert set(now_open) == set(first) - {closed}
    assert {r["运行 run"] for r in now_open.values()} == {first_run}
    [row] = [r for r in workspace.ledger_rows() if r["item_key"].startswith(closed + "@")]
    assert row["state"] == "done" and '"closed_elsewhere": "CLOSED"' in row["details"]

    # the queue is a workbook `robots apply` takes: one soft hand-over approved from it
    soft = next(rid for rid, r in now_open.items() if r["原因代码"] == "OVER_AMOUNT_CAP")
    wb = openpyxl.load_workbook(workspace.queue)
    for r in records(wb[QUEUE_SHEET]):
        if r["退款编号"].value == soft:
            r["处理决定"].value, r["复核人"].value = "同意", "王芳"
    reviewed = tmp_path / "queue-reviewed.xlsx"
    wb.save(reviewed)
    applied = subprocess.run(
        robots_cmd("apply", str(reviewed), "-w", str(workspace.root)),
        capture_output=True,
        text=True,
        timeout=300,
        env=robot_env(),
    )
    assert applied.returncode == 0, applied.stderr
    assert "open-exceptions queue, 1 decisions" in applied.stderr
    assert [r["refund_id"] for r in workspace.sandbox.audit()].count(soft) == 1
    assert soft not in queue_rows(workspace)  # rewritten after the apply


@pytest.mark.refunds(80)
def test_killed_run_still_gets_its_workbook_and_every_hand_over_reaches_the_queue(
    workspace: Workspace,
) -> None:
    proc = workspace.popen()
    with reaped(proc):
        wait_for_hand_overs(workspace, proc, 3)
        proc.send_signal(signal.SIGKILL)
    killed = workspace.runs()[-1]["run_id"]
    handed_by_killed = {
        r["item_key"].split("@")[0]
        for r in workspace.ledger_rows()
        if r["state"] == "business_exception" and r["run_id"] == killed
    }
    assert handed_by_killed
    assert not (workspace.root / "reports" / f"refunds-{killed}.xlsx").exists()

    resumed = workspace.run()
    assert f"run {killed} was interrupted" in (
        next(
            (workspace.root / "logs").glob(f"*{workspace.runs()[-1]['run_id']}*/run.log")
        ).read_text(encoding="utf-8")
    ), resumed.stderr
    book = openpyxl.load_workbook(workspace.root / "reports" / f"refunds-{killed}.xlsx")
    assert {r["退款编号"] for r in values(book["待人工处理"])} == handed_by_killed
    assert summary_of(book)["运行状态 status"].startswith("中断")
    # nothing lost: every refund a person must see is in the queue, whichever run found it
    assert set(queue_rows(workspace)) == expected_person(workspace)

    # `robots report RUN` writes it again on demand
    again = subprocess.run(
        robots_cmd("report", killed[:15], "-w", str(workspace.root)),
        capture_output=True,
        text=True,
        timeout=120,
        env=robot_env(),
    )
    assert again.returncode == 0, again.stderr
    assert f"refunds-{killed}.xlsx" in again.stderr


@pytest.mark.refunds(80)
def test_a_stopped_run_says_so_in_its_summary_with_what_it_left(workspace: Workspace) -> None:
    """SIGTERM (what the scheduler and systemd send; Ctrl-C alike): the item in hand is
    finished, the workbook says the run was stopped and how many items it never started, and
    every hand-over so far is in it and in the queue."""
    proc = workspace.popen()
    with reaped(proc):
        wait_for_hand_overs(workspace, proc, 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    run_id = workspace.runs()[-1]["run_id"]
    rows = [r for r in workspace.ledger_rows() if r["run_id"] == run_id]
    pending = sum(r["state"] == "pending" for r in rows)
    assert pending > 0, "stopped before its list was worked"
    book = openpyxl.load_workbook(workspace.root / "reports" / f"refunds-{run_id}.xlsx")
    summary = summary_of(book)
    assert summary["运行状态 status"].startswith("已停止"), summary["运行状态 status"]
    assert f"{pending} 条未开始" in summary["运行状态 status"]
    assert summary["未开始 not started"] == pending
    handed = {r["item_key"].split("@")[0] for r in rows if r["state"] == "business_exception"}
    assert {r["退款编号"] for r in values(book["待人工处理"])} == handed
    assert handed <= set(queue_rows(workspace))
    assert {r["state"] for r in rows} <= {"pending", "done", "business_exception"}


@pytest.mark.refunds(30)
def test_a_dry_run_on_a_terminal_shows_progress_and_none_without_one(
    workspace: Workspace,
) -> None:
    """Progress on every long run: N/total and the time left on a terminal (here a pseudo-
    terminal from `script`), nothing of it when the output is not a terminal."""
    on_tty = on_a_terminal("run", "refunds", "--dry-run", "-w", str(workspace.root))
    assert on_tty.returncode == 0, on_tty.stdout
    listed = len(
        {rid for rid, t in workspace.sandbox.truth().items() if t["expected"] != "untouched"}
    )
    assert f"{listed}/{listed}" in on_tty.stdout, on_tty.stdout[-2000:]
    assert "refunds" in on_tty.stdout
    piped = workspace.run("--dry-run")
    assert f"{listed}/{listed}" not in piped.stderr + piped.stdout
