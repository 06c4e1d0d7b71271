"""Conventions every exception workbook follows, so ops staff find the same things everywhere.

Header row bold and frozen, filters on, fixed column widths, amounts as numbers with a money
format, links as real hyperlinks, a *Decision* column with a dropdown, and an atomic save (a
half-written workbook never replaces a good one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

MONEY_FORMAT = '"¥"#,##0.00'
TIME_FORMAT = "yyyy-mm-dd hh:mm"
HEADER_FILL = PatternFill("solid", fgColor="FFDDEBF7")
URGENT_FILL = PatternFill("solid", fgColor="FFFFC7CE")
Columns = Sequence[tuple[str, int]]  # (header, width)


def header(ws: Worksheet, columns: Columns) -> None:
    ws.append([h for h, _ in columns])
    for i, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
        cell = ws.cell(row=1, column=i)
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
    ws.freeze_panes = "A2"


def link(cell: object, target: str, label: str) -> None:
    cell.value = label  # type: ignore[attr-defined]
    cell.hyperlink = target  # type: ignore[attr-defined]
    cell.style = "Hyperlink"  # type: ignore[attr-defined]


def decision_column(ws: Worksheet, column: int, choices: Sequence[str], rows: int) -> None:
    """A dropdown of ``choices`` in ``column`` for the data rows (and room to add more)."""
    letter = get_column_letter(column)
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(choices) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="处理决定",
        error="请选择 " + " / ".join(choices),
    )
    ws.add_data_validation(validation)
    validation.add(f"{letter}2:{letter}{max(rows + 1, 1000)}")


def filters(ws: Worksheet, columns: Columns, rows: int) -> None:
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(2, rows + 1)}"


def save(wb: Workbook, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".xlsx.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path
