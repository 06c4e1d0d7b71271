"""Conventions every exception workbook follows, so ops staff find the same things everywhere.

Chinese first (sheet names, headers, labels; codes kept beside them for filters), header row
bold and frozen, filters on, fixed column widths, amounts as numbers with a money format,
links as real hyperlinks (evidence by absolute ``file://`` address, so a copied or mailed
workbook still points at it), a *Decision* column with a dropdown, landscape printing fitted
to the page width with the header repeated, phone numbers masked to their last four digits,
and an atomic save (a half-written workbook never replaces a good one).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from robots.engine.health import health

if TYPE_CHECKING:
    from robots.ledger import RunView

MONEY_FORMAT = '"¥"#,##0.00'
TIME_FORMAT = "yyyy-mm-dd hh:mm"
HEADER_FILL = PatternFill("solid", fgColor="FFDDEBF7")
URGENT_FILL = PatternFill("solid", fgColor="FFFFC7CE")
SOON_FILL = PatternFill("solid", fgColor="FFFFEB9C")
SECTION_FONT = Font(bold=True, size=12)
SUMMARY = "汇总"
# a mainland mobile number standing on its own (not inside an order id or a waybill)
PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![0-9A-Za-z])"
)
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


def text_width(text: object) -> int:
    """Columns a text needs in Excel: two for each wide (CJK) character, one otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def mask_phone(text: str) -> str:
    """Every mobile number in ``text`` reduced to its last four digits (``*******5678``)."""
    return PHONE.sub(lambda m: "*******" + m.group(3), text)


def summary_sheet(
    wb: Workbook, rows: Sequence[SummaryRow | None], *, widths: tuple[int, int] = (30, 48)
) -> Worksheet:
    """The first sheet, "汇总": bold labels wide enough to read whole, values left-aligned,
    times and any given number format applied. A row ``None`` leaves a blank line; a row
    whose value is ``SECTION`` is a section heading."""
    ws = wb.active
    assert ws is not None
    ws.title = SUMMARY
    labels = [r[0] for r in rows if r is not None]
    ws.column_dimensions["A"].width = max([widths[0], *(text_width(x) + 2 for x in labels)])
    ws.column_dimensions["B"].width = widths[1]
    for row in rows:
        if row is None:
            ws.append([])
            continue
        label, value, *fmt = row
        if value is SECTION:
            ws.append([label])
            ws.cell(row=ws.max_row, column=1).font = SECTION_FONT
            continue
        ws.append([label, value])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
        cell = ws.cell(row=ws.max_row, column=2)
        if fmt:
            cell.number_format = fmt[0]
        elif isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        cell.alignment = Alignment(horizontal="left")
    print_setup(ws, title_rows=False, landscape=False)
    return ws


SECTION = object()  # a summary row's value: the label is a section heading


def field_rows(counts: Mapping[str, int]) -> list[SummaryRow | None]:
    """The 汇总's section on fields the run could not read on some pages (field health),
    each with how often: nothing when every field read everywhere."""
    unread = health(counts)
    if not unread:
        return []
    rows: list[SummaryRow | None] = [
        None,
        ("无法读取的字段 unreadable fields（次数 / 读取次数）", SECTION),
    ]
    rows += [(f"  {h.field}", f"{h.unreadable} / {h.reads}") for h in unread]
    return rows


def run_rows(run: Any, status: str, *, dry_run: str | None = None) -> list[SummaryRow | None]:
    """The rows every run's 汇总 starts with: which run (``run``: its ``run_id``,
    ``scenario``, ``started_at`` and ``ended_at``, a ledger ``RunView`` or a report's
    summary), when, whether a dry run (``dry_run``: what its "yes" says, for a robot that has
    one) and how it ended (``status``)."""
    rows: list[SummaryRow | None] = [
        ("运行编号 run id", run.run_id),
        ("场景 scenario", run.scenario),
        ("开始 start", run.started_at),
        ("结束 end", run.ended_at or run.started_at),
    ]
    if dry_run is not None:
        rows.append(("演练 dry run", dry_run))
    return [*rows, ("运行状态 status", status)]


def status_of(run: RunView, not_started: int, *, unit: str = "条") -> str:
    """``run_status`` of a run as the ledger recorded it."""
    return run_status(
        failure=run.failure,
        ended=run.ended_at is not None,
        stopped=run.stopped,
        not_started=not_started,
        unit=unit,
    )


def run_status(
    *, failure: str, ended: bool, stopped: bool, not_started: int, unit: str = "条"
) -> str:
    """How a run ended, as every robot's 汇总 says it (运行状态), with what it left undone."""
    if failure:
        return f"失败：{failure}"
    if not ended:
        return f"中断（进程被终止，未正常结束），{not_started} {unit}未开始，下次运行继续"
    if stopped:
        return f"已停止（收到停止信号 SIGTERM/Ctrl-C），{not_started} {unit}未开始，下次运行继续"
    return "完成"


def print_setup(ws: Worksheet, *, title_rows: bool = True, landscape: bool = True) -> None:
    """A4, landscape, every column on one page width (as many pages down as it takes),
    the header row repeated on every printed page."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    if title_rows:
        ws.print_title_rows = "1:1"


def evidence_link(cell: object, path: str, label: str = "截图") -> None:
    """A link to an evidence file by its absolute address (a workbook mailed or copied to
    another folder still points at it on the machine that ran the robot)."""
    link(cell, Path(path).resolve().as_uri(), label)


def header(ws: Worksheet, columns: Columns) -> None:
    """The header row: bold, filled, frozen, and repeated on every printed page."""
    ws.append([h for h, _ in columns])
    for i, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
        cell = ws.cell(row=1, column=i)
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    ws.freeze_panes = "A2"
    print_setup(ws)


def link(cell: object, target: str, label: str) -> None:
    cell.value = label  # type: ignore[attr-defined]
    cell.hyperlink = target  # type: ignore[attr-defined]
    cell.style = "Hyperlink"  # type: ignore[attr-defined]


def mark(ws: Worksheet, row: int, width: int, fill: PatternFill = URGENT_FILL) -> None:
    """Colour a whole row: urgent, critical or failed, so it stands out in a long sheet."""
    for column in range(1, width + 1):
        ws.cell(row=row, column=column).fill = fill


def decision_column(ws: Worksheet, column: int, choices: Sequence[str], rows: int) -> None:
    """A dropdown of ``choices`` in ``column`` for the data rows (and room to add more)."""
    letter = get_column_letter(column)
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(choices) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="处理决定",
        error="请从下拉列表选择：" + " / ".join(choices),
        showInputMessage=True,
        promptTitle="处理决定",
        prompt="选择 " + " / ".join(choices) + "，留空表示暂不处理",
    )
    ws.add_data_validation(validation)
    validation.add(f"{letter}2:{letter}{max(rows + 1, 1000)}")


def filters(ws: Worksheet, columns: Columns, rows: int) -> None:
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(2, rows + 1)}"


def wrap(ws: Worksheet, column: int) -> None:
    """Long texts in ``column`` wrap inside their cell instead of being cut off, and the row
    is made tall enough to show them (Excel and LibreOffice do not grow a row for a file
    written by a program)."""
    width = ws.column_dimensions[get_column_letter(column)].width or 10
    for (cell,) in ws.iter_rows(min_row=2, min_col=column, max_col=column):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if not isinstance(cell.value, str):
            continue
        lines = sum(
            max(1, -(-text_width(line) // max(1, int(width) - 1)))
            for line in cell.value.splitlines() or [""]
        )
        row = ws.row_dimensions[cell.row]
        row.height = max(row.height or 15, 15 * lines)


def save(wb: Workbook, path: Path) -> Path:
    """Write atomically. Mobile numbers inside texts (signals, messages, notes) are masked
    first, a last guard: writers mask the phone fields they know (a cell that is only digits
    is left alone, it may be a shop's numeric order id). Cells of rows made tall for a
    wrapped text sit at the top, level with it."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            tall = (ws.row_dimensions[row[0].row].height or 15) > 15 if row else False
            for cell in row:
                value = cell.value
                if isinstance(value, str) and not value.isdigit() and PHONE.search(value):
                    cell.value = mask_phone(value)
                if tall and cell.alignment.vertical != "top":  # a row read top to bottom
                    a = cell.alignment
                    cell.alignment = Alignment(
                        horizontal=a.horizontal, vertical="top", wrap_text=a.wrap_text
                    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".xlsx.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path
