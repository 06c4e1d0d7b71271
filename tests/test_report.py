"""The exception workbook, written and read back from a real .xlsx file."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
from report_checks import assert_report_shape

from robots.refunds.report import ApprovedRow, ExceptionRow, RunSummary, write_refund_report

NOW = datetime(2026, 11, 23, 10, 0)


def row(rid: str, hours: float, urgent: bool = False, evidence: str = "") -> ExceptionRow:
    return ExceptionRow(
        rid,
        "TB" + rid,
        "tb_buyer",
        Decimal("128.50"),
        "OVER_AMOUNT_CAP",
        "退款金额超过单笔自动审批上限",
        NOW + timedelta(hours=hours),
        urgent,
        f"http://shop/refunds/{rid}",
        evidence,
    )


def test_written_workbook_reads_back(tmp_path: Path) -> None:
    summary = RunSummary(
        "run-1",
        "scenarios/demo-shop/refunds.toml",
        NOW,
        NOW,
        False,
        {"approved": 3, "handed_to_person": 1},
        Decimal("300.10"),
    )
    exceptions = [
        row("B", 50),
        row("A", 30),
        row("U", 5, urgent=True, evidence="../e/u.png"),
        row("V", 8, urgent=True),
    ]
    approved = [
        ApprovedRow(
            "C", "TBC", "tb_x", "agree_refund", Decimal("99.90"), NOW, "http://shop/refunds/C"
        )
    ]
    path = write_refund_report(tmp_path / "r.xlsx", summary, exceptions, approved)
    assert_report_shape(path)
    wb = openpyxl.load_workbook(path)
    ids = [r[1] for r in wb["Exceptions"].iter_rows(min_row=2, values_only=True)]
    assert ids == ["U", "V", "A", "B"]
    evidence = wb["Exceptions"]["J2"]
    assert evidence.hyperlink is not None and evidence.hyperlink.target == "../e/u.png"
    assert wb["Exceptions"]["E2"].value == 128.5
    summary_values = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True)}
    assert summary_values["自动通过率 auto-approval rate"] == 0.75
    assert summary_values["自动退款金额 money approved"] == 300.1


def test_empty_run_still_writes_a_valid_workbook(tmp_path: Path) -> None:
    summary = RunSummary("run-2", "s.toml", NOW, NOW, True, {}, Decimal("0"))
    path = write_refund_report(tmp_path / "empty.xlsx", summary, [], [])
    assert_report_shape(path)
