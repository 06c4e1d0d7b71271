"""What every refunds workbook must look like when read back with openpyxl."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import openpyxl

EXCEPTION_HEADERS = [
    "紧急",
    "退款编号",
    "订单编号",
    "买家",
    "退款金额",
    "原因代码",
    "原因说明",
    "超时时间",
    "后台链接",
    "证据",
    "处理决定",
    "复核人",
    "备注",
    "条目 item",
    "运行 run",
]


def assert_report_shape(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Exceptions", "Approved"]
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True)}
    for key in (
        "运行编号 run id",
        "场景 scenario",
        "开始 start",
        "结束 end",
        "演练 dry run",
        "自动通过率 auto-approval rate",
        "自动退款金额 money approved",
    ):
        assert key in summary, key
    assert isinstance(summary["开始 start"], datetime)
    assert isinstance(summary["自动退款金额 money approved"], int | float)
    assert 0 <= summary["自动通过率 auto-approval rate"] <= 1

    ex = wb["Exceptions"]
    assert [c.value for c in ex[1]] == EXCEPTION_HEADERS
    assert ex.freeze_panes == "A2"
    assert ex.auto_filter.ref and ex.auto_filter.ref.startswith("A1:O")
    assert ex.column_dimensions["N"].hidden and ex.column_dimensions["O"].hidden
    assert all(ex.column_dimensions[col].width >= 6 for col in "ABCDEFGHIJKL")
    [validation] = ex.data_validations.dataValidation
    assert validation.type == "list" and validation.formula1 == '"approve,hold"'
    assert "K2" in str(validation.sqref)
    rows = list(ex.iter_rows(min_row=2))
    keys = []
    for row in rows:
        urgent, _rid, _order, _buyer, amount, code, reason, deadline, link, *_rest = row
        assert isinstance(amount.value, int | float), "amounts must be numbers, not text"
        assert amount.number_format == '"¥"#,##0.00'
        assert code.value and reason.value
        assert link.hyperlink is not None and link.hyperlink.target.startswith("http")
        assert row[10].value is None and row[11].value is None  # left for the reviewer
        assert row[14].value == summary["运行编号 run id"]
        if deadline.value is not None:
            assert isinstance(deadline.value, datetime)
            keys.append((urgent.value != "是", deadline.value))
    assert keys == sorted(keys), "urgent first, then by deadline"

    ap = wb["Approved"]
    assert [c.value for c in ap[1]][:5] == ["退款编号", "订单编号", "买家", "操作", "退款金额"]
    for row in ap.iter_rows(min_row=2):
        assert isinstance(row[4].value, int | float)
        assert row[6].hyperlink is not None
