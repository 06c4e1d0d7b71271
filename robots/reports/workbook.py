"""Conventions every exception workbook follows, so ops staff find the same things everywhere.

Header row bold and frozen, filters on, fixed column widths, amounts as numbers with a money
format, links as real hyperlinks, a *Decision* column with a dropdown, and an atomic save (a
half-written workbook never replaces a good one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

MONEY_FORMAT = '"¥"#,##0.00'
TIME_FORMAT = "yyyy-mm-dd hh:mm"
HEADER_FILL = PatternFill("solid", fgColor="FFDDEBF7")
URGENT_FILL = PatternFill("solid", fgColor="FFFFC7CE")
Columns = Sequence[tuple[str, int]]  # (header, width)


@dataclass(frozen=True)
class RunFacts:
    """What every workbook's Summary says about its run."""

    run_id: str
    scenario: str
    started_at: datetime
    ended_at: datetime
    dry_run: bool
    counts: dict[str, int]


SummaryRow = tuple[str, object] | tuple[str, object, str]  # (label, value[, number format])


def summary_sheet(
    wb: Workbook, rows: Sequence[SummaryRow], *, widths: tuple[int, int] = (30, 48)
) -> Worksheet:
    """The first sheet, "Summary": bold labels, values left-aligned, times and any given
    number format applied."""
    ws = wb.active
    assert ws is not None
    ws.title = "Summary"
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = widths
    for label, value, *fmt in rows:
        ws.append([label, value])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
        cell = ws.cell(row=ws.max_row, column=2)
        if fmt:
            cell.number_format = fmt[0]
        elif isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        cell.alignment = Alignment(horizontal="left")
    return ws


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


def mark(ws: Worksheet, row: int, width: int) -> None:
    """Colour a whole row: urgent, critical or failed, so it stands out in a long sheet."""
    for column in range(1, width + 1):
        ws.cell(row=row, column=column).fill = URGENT_FILL


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
