"""What every refunds workbook must look like when read back with openpyxl, and the input
workbooks a person would hand the robots (a price list, a terminal's export)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet

EXCEPTION_HEADERS = [
    "时限",
    "剩余小时",
    "退款编号",
    "订单编号",
    "买家",
    "退款金额",
    "原因（全部未通过的规则）",
    "原因代码",
    "截止时间",
    "后台链接",
    "证据",
    "处理决定",
    "复核人",
    "备注",
    "条目 item",
    "运行 run",
]
# a mainland mobile number anywhere in a cell (what must never be in a workbook unmasked)
# (not inside a waybill or an order id: letters or digits around it)
PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9A-Za-z])")


def one_sheet(path: Path, title: str, header: list[str], rows: list[list[object]]) -> Path:
    """A workbook of one sheet, ``title``, as a person or another program saves it."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def shown_width(text: object) -> int:
    """How many columns a text takes in Excel: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in str(text))


def records(ws: Worksheet) -> list[dict[str, Any]]:
    """The sheet's data rows as {header: cell} (cells, so formats and links can be read)."""
    headers = [c.value for c in ws[1]]
    return [dict(zip(headers, row, strict=False)) for row in ws.iter_rows(min_row=2)]


def values(ws: Worksheet) -> list[dict[str, Any]]:
    return [{h: c.value for h, c in r.items()} for r in records(ws)]


def summary_of(wb: Any) -> dict[str, Any]:
    return {r[0]: r[1] for r in wb["汇总"].iter_rows(values_only=True) if r and r[0]}


def assert_no_phone_numbers(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            for value in row:
                if isinstance(value, str) and not value.isdigit():
                    assert not PHONE.search(value), (path.name, ws.title, value)


def assert_tall_rows_read_from_the_top(ws: Worksheet) -> int:
    """Every cell of a row made tall for a wrapped text sits at the top; returns how many
    such rows there are."""
    tall = 0
    for row in ws.iter_rows(min_row=2):
        if (ws.row_dimensions[row[0].row].height or 15) > 15:
            tall += 1
            assert all(c.alignment.vertical == "top" for c in row), (ws.title, row[0].row)
    return tall


def assert_printable(ws: Worksheet) -> None:
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$1"


def assert_report_shape(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "待人工处理", "已同意"]
    summary = summary_of(wb)
    for key in (
        "运行编号 run id",
        "场景 scenario",
        "开始 start",
        "结束 end",
        "演练 dry run",
        "运行状态 status",
        "待人工处理 to a person",
        "  其中已超时 overdue",
        "待复核金额 money awaiting review",
        "自动通过率 auto-approval rate",
        "自动退款金额 money approved",
    ):
        assert key in summary, key
    assert isinstance(summary["开始 start"], datetime)
    assert isinstance(summary["自动退款金额 money approved"], int | float)
    assert isinstance(summary["待复核金额 money awaiting review"], int | float)
    assert 0 <= summary["自动通过率 auto-approval rate"] <= 1
    width_a = wb["汇总"].column_dimensions["A"].width
    assert all(shown_width(k) <= width_a for k in summary), "labels fit their column"

    ex = wb["待人工处理"]
    assert [c.value for c in ex[1]] == EXCEPTION_HEADERS
    assert ex.freeze_panes == "A2"
    assert ex.auto_filter.ref and ex.auto_filter.ref.startswith("A1:P")
    assert ex.column_dimensions["O"].hidden and ex.column_dimensions["P"].hidden
    assert all(ex.column_dimensions[col].width >= 6 for col in "ABCDEFGHIJKLMN")
    assert_printable(ex)
    [validation] = ex.data_validations.dataValidation
    assert validation.type == "list" and validation.formula1 == '"同意,暂缓"'
    assert "L2" in str(validation.sqref)
    keys = []
    for row in records(ex):
        amount = row["退款金额"]
        assert isinstance(amount.value, int | float), "amounts must be numbers, not text"
        assert amount.number_format == '"¥"#,##0.00'
        assert row["原因代码"].value and row["原因（全部未通过的规则）"].value
        link = row["后台链接"]
        assert link.hyperlink is not None and link.hyperlink.target.startswith("http")
        assert row["处理决定"].value is None and row["复核人"].value is None  # for the reviewer
        assert row["运行 run"].value
        deadline, left = row["截止时间"].value, row["剩余小时"].value
        if deadline is not None:
            assert isinstance(deadline, datetime) and isinstance(left, int | float)
            assert (row["时限"].value == "已超时") == (left <= 0)
            keys.append(deadline)
    assert keys == sorted(keys), "overdue first, then by deadline"
    assert_no_phone_numbers(path)
    assert_tall_rows_read_from_the_top(ex)

    ap = wb["已同意"]
    assert [c.value for c in ap[1]][:6] == [
        "退款编号",
        "订单编号",
        "买家",
        "操作",
        "操作代码",
        "退款金额",
    ]
    for row in records(ap):
        assert isinstance(row["退款金额"].value, int | float)
        assert row["后台链接"].hyperlink is not None
