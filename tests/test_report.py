"""The exception workbook, written and read back from a real .xlsx file."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
from report_checks import (
    assert_report_shape,
    assert_tall_rows_read_from_the_top,
    records,
    summary_of,
    values,
)

from robots.refunds.report import ApprovedRow, ExceptionRow, RunSummary, write_refund_report

NOW = datetime(2026, 11, 23, 10, 0)


def row(rid: str, hours: float, *codes: str, evidence: str = "") -> ExceptionRow:
    codes = codes or ("OVER_AMOUNT_CAP",)
    return ExceptionRow(
        rid,
        "TB" + rid,
        "tb_buyer",
        Decimal("128.50"),
        codes,
        "；".join(codes),
        NOW + timedelta(hours=hours),
        f"http://shop/refunds/{rid}",
        evidence,
        item_key=f"{rid}@WAIT_SELLER_AGREE",
        run_id="run-1",
    )


def test_written_workbook_reads_back(tmp_path: Path) -> None:
    summary = RunSummary(
        "run-1",
        "scenarios/demo-shop/refunds.toml",
        NOW,
        NOW,
        False,
        {"approved": 3, "handed_to_person": 5},
        Decimal("300.10"),
        now=NOW,
        escalate_within_hours=12,
    )
    exceptions = [
        row("B", 50),
        row("A", 30, "OVER_AMOUNT_CAP", "RETURN_NOT_RECEIVED"),
        row("U", 5, evidence=str(tmp_path / "e" / "u.png")),
        row("V", 8),
        row("L", -3, "BUYER_RISK"),
    ]
    approved = [
        ApprovedRow(
            "C", "TBC", "tb_x", "agree_refund", Decimal("99.90"), NOW, "http://shop/refunds/C"
        )
    ]
    path = write_refund_report(tmp_path / "r.xlsx", summary, exceptions, approved)
    assert_report_shape(path)
    wb = openpyxl.load_workbook(path)
    rows = values(wb["待人工处理"])
    assert [r["退款编号"] for r in rows] == ["L", "U", "V", "A", "B"]  # overdue first
    assert [r["时限"] for r in rows] == ["已超时", "紧急", "紧急", None, None]
    assert [r["剩余小时"] for r in rows] == [-3, 5, 8, 30, 50]
    assert rows[3]["原因代码"] == "OVER_AMOUNT_CAP, RETURN_NOT_RECEIVED"
    assert assert_tall_rows_read_from_the_top(wb["待人工处理"]) >= 1  # A's two reasons
    evidence = records(wb["待人工处理"])[1]["证据"]
    # an absolute address: the workbook mailed elsewhere still names the file
    assert evidence.hyperlink.target == (tmp_path / "e" / "u.png").as_uri()
    assert rows[0]["退款金额"] == 128.5
    s = summary_of(wb)
    assert s["自动通过率 auto-approval rate"] == 3 / 8
    assert s["自动退款金额 money approved"] == 300.1
    assert s["待复核金额 money awaiting review"] == 5 * 128.5
    assert s["  其中已超时 overdue"] == 1
    assert s["  其中12小时内到期 due soon"] == 2
    assert s["退款金额超过单笔自动审批上限 OVER_AMOUNT_CAP"] == 4
    assert s["买家风险：近90天退款过多、退款率过高或在黑名单 BUYER_RISK"] == 1
    money = {  # each headline reason's money beside its count
        r[0].value: r[2].value for r in wb["汇总"].iter_rows(max_col=3) if r[2].value is not None
    }
    assert money == {
        "退款金额超过单笔自动审批上限 OVER_AMOUNT_CAP": 4 * 128.5,
        "买家风险：近90天退款过多、退款率过高或在黑名单 BUYER_RISK": 128.5,
    }


def test_empty_run_still_writes_a_valid_workbook(tmp_path: Path) -> None:
    summary = RunSummary("run-2", "s.toml", NOW, NOW, True, {}, Decimal("0"))
    path = write_refund_report(tmp_path / "empty.xlsx", summary, [], [])
    assert_report_shape(path)
