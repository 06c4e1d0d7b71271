"""`robots apply`: a reviewed workbook acted on through the real back office, exactly once."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from conftest import Workspace, robot_env, robots_cmd
from report_checks import assert_no_phone_numbers, records, values

from robots.refunds.report import RunSummary, write_refund_report

APPROVABLE = {"OVER_AMOUNT_CAP", "BUYER_RISK", "REASON_NOT_AUTOMATABLE", "MERCHANT_FAULT"}


def apply(ws: Workspace, workbook: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd("apply", str(workbook), "-w", str(ws.root)),
        capture_output=True,
        text=True,
        timeout=300,
        env=robot_env(),
    )


def review(
    report: Path, out: Path, decisions: dict[str, tuple[str, str]], sheet: str = "待人工处理"
) -> Path:
    """Fill 处理决定 and 复核人 as a person would, and save under a new name."""
    wb = openpyxl.load_workbook(report)
    for row in records(wb[sheet]):
        if row["退款编号"].value in decisions:
            row["处理决定"].value, row["复核人"].value = decisions[row["退款编号"].value]
    wb.save(out)
    return out


def result_rows(path: Path) -> dict[str, tuple[str, str]]:
    wb = openpyxl.load_workbook(path)
    return {r["退款编号"]: (r["结果代码"], r["复核人"]) for r in values(wb["应用结果"])}


def newest_apply(ws: Workspace) -> Path:
    return sorted((ws.root / "reports").glob("apply-*.xlsx"))[-1]


def audit_counts(ws: Workspace) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in ws.sandbox.audit():
        counts[r["refund_id"]] = counts.get(r["refund_id"], 0) + 1
    return counts


def ledger_item(ws: Workspace, refund_id: str) -> sqlite3.Row:
    [row] = [r for r in ws.ledger_rows() if r["item_key"].startswith(refund_id + "@")]
    return row


@pytest.mark.browser
@pytest.mark.refunds(120)
def test_reviewed_workbook_round_trip(tmp_path: Path, workspace: Workspace) -> None:
    workspace.run()
    [report] = workspace.reports()
    rows = values(openpyxl.load_workbook(report)["待人工处理"])
    candidates = [r["退款编号"] for r in rows if r["原因代码"] in APPROVABLE]
    assert len(candidates) >= 5, [r["原因代码"] for r in rows]
    approve, hold, changed = candidates[:3], candidates[3], candidates[4]
    # goods the warehouse never received: a reviewer's 同意 cannot waive that
    unreceived = [r["退款编号"] for r in rows if "RETURN_NOT_RECEIVED" in r["原因代码"]]
    assert unreceived, [r["原因代码"] for r in rows]
    never = unreceived[0]
    before = audit_counts(workspace)
    # one refund changes in the back office after the report was written
    with workspace.sandbox.db() as conn:
        conn.execute("UPDATE refunds SET version = version + 1 WHERE refund_id = ?", (changed,))

    decisions = {rid: ("approve", "王芳") for rid in approve}
    decisions[hold] = ("hold", "王芳")
    decisions[changed] = ("同意", "李雷")  # the Chinese word works too
    decisions[never] = ("同意", "李雷")
    reviewed = review(report, tmp_path / "reviewed.xlsx", decisions)
    first = apply(workspace, reviewed)
    assert first.returncode == 0, first.stderr
    after = audit_counts(workspace)
    assert {rid: n - before.get(rid, 0) for rid, n in after.items() if n != before.get(rid, 0)} == {
        rid: 1 for rid in approve
    }
    results = result_rows(newest_apply(workspace))
    assert results == {
        **{rid: ("APPLIED", "王芳") for rid in approve},
        hold: ("HELD", "王芳"),
        changed: ("CHANGED_SINCE_REVIEW", "李雷"),
        never: ("REFUSED_HARD_RULE", "李雷"),
    }
    assert never not in after  # the shop paid nothing for it
    assert_no_phone_numbers(newest_apply(workspace))
    [refused] = [
        r
        for r in values(openpyxl.load_workbook(newest_apply(workspace))["应用结果"])
        if r["退款编号"] == never
    ]
    assert "退货尚未入库" in refused["结果"] and refused["处理决定"] == "同意"
    assert ledger_item(workspace, never)["state"] == "business_exception"
    for rid in approve:
        item = ledger_item(workspace, rid)
        assert item["state"] == "done"
        review_note = json.loads(item["details"])["review"]
        assert (review_note["reviewer"], review_note["decision"]) == ("王芳", "approve")
    assert ledger_item(workspace, hold)["state"] == "business_exception"
    assert json.loads(ledger_item(workspace, hold)["details"])["review"]["decision"] == "hold"
    assert ledger_item(workspace, changed)["state"] == "business_exception"

    # applying the same workbook again does nothing new
    second = apply(workspace, reviewed)
    assert second.returncode == 0, second.stderr
    assert audit_counts(workspace) == after
    results = result_rows(sorted((workspace.root / "reports").glob("apply-*.xlsx"))[-1])
    assert {results[rid][0] for rid in approve} == {"ALREADY_DONE"}

    # the robot's next run does not act on the applied items either
    workspace.run()
    assert all(audit_counts(workspace)[rid] == 1 for rid in approve)


@pytest.mark.browser
@pytest.mark.refunds(60)
def test_bad_workbook_is_rejected_whole_with_every_problem_named(
    tmp_path: Path, workspace: Workspace
) -> None:
    workspace.run()
    [report] = workspace.reports()
    wb = openpyxl.load_workbook(report)
    sheet = wb["待人工处理"]
    assert sheet.max_row >= 6
    # 处理决定 L, 复核人 M, 退款编号 C, 运行 P
    sheet["L2"], sheet["M2"] = "同意", "王芳"  # fine on its own
    sheet["L3"], sheet["M3"] = "aprove", "王芳"  # typo
    sheet["L4"] = "approve"  # no reviewer
    sheet["L5"], sheet["M5"] = "approve", "王芳"
    sheet["C5"] = "RF00000000000001"  # id edited
    sheet["L6"], sheet["M6"] = "暂缓", "王芳"
    sheet["P6"] = "20260101-000000-refunds-dead"  # pasted from another run's workbook
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    before = workspace.sandbox.audit()
    result = apply(workspace, bad)
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err and "nothing was applied" in err and "4 problems" in err
    assert "sheet '待人工处理', row 3, column L (处理决定): unknown decision 'aprove'" in err
    assert "row 4, column M (复核人): a decision needs the reviewer's name" in err
    assert "row 5, column C (退款编号): refund id 'RF00000000000001' was edited" in err
    assert "row 6, column P (运行 run): this row comes from run 20260101-000000-refunds-dead" in err
    assert workspace.sandbox.audit() == before, "nothing may be applied from a bad file"

    # a workbook of a dry run, or of another kind, is refused too
    summary = RunSummary("x-dry", "s.toml", datetime.now(), datetime.now(), True, {}, Decimal(0))
    dry = write_refund_report(tmp_path / "dry.xlsx", summary, [], [])  # as a dry run writes it
    refused = apply(workspace, dry)
    assert refused.returncode == 2 and "was a dry run" in refused.stderr
    other = tmp_path / "notes.xlsx"
    openpyxl.Workbook().save(other)
    refused = apply(workspace, other)
    assert refused.returncode == 2 and "not a refunds exception workbook" in refused.stderr
    # a column deleted (the amount a reviewer decided by): refused, naming it, whatever
    # else the sheet says
    cut = openpyxl.load_workbook(report)
    cut["待人工处理"]["L2"], cut["待人工处理"]["M2"] = "同意", "王芳"
    cut["待人工处理"].delete_cols(6)  # 退款金额
    deleted = tmp_path / "deleted.xlsx"
    cut.save(deleted)
    refused = apply(workspace, deleted)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "row 1: no column '退款金额'" in refused.stderr
    assert workspace.sandbox.audit() == before
    text = tmp_path / "x.xlsx"
    shutil.copy(Path(__file__), text)
    refused = apply(workspace, text)
    assert refused.returncode == 2 and "not an .xlsx workbook" in refused.stderr
