"""Reading a refunds workbook that a person reviewed: every problem found, or the decisions.

Pure openpyxl, no browser. The workbook must be one the refunds robot wrote for a real run
in this ledger; each decided row must still carry the hidden item and run the robot wrote,
an unchanged refund id, a known decision and a reviewer. One bad row rejects the whole file
(nothing is applied), and the error names the sheet, row and column of every problem.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from robots.errors import InvalidReview
from robots.refunds.report import (
    DECISION_COLUMN,
    EXCEPTION_COLUMNS,
    ITEM_COLUMN,
    REVIEWER_COLUMN,
    RUN_COLUMN,
)

SHEET = "Exceptions"
# what people type, in either language, for the two decisions
DECISION_WORDS = {"approve": "approve", "同意": "approve", "hold": "hold", "暂缓": "hold"}
REFUND_ID_COLUMN, NOTE_COLUMN = 2, 13


@dataclass(frozen=True)
class ReviewedRow:
    row: int
    refund_id: str
    item_key: str
    decision: str  # approve | hold
    reviewer: str
    note: str


@dataclass(frozen=True)
class ReviewedWorkbook:
    file: Path
    run_id: str
    scenario: str
    rows: list[ReviewedRow]  # the decided rows only


def _cell_text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _where(row: int, column: int) -> str:
    header = EXCEPTION_COLUMNS[column - 1][0]
    return f"sheet '{SHEET}', row {row}, column {get_column_letter(column)} ({header})"


def read_review(
    file: Path,
    *,
    run_is_known: Callable[[str], bool],
    item_is_known: Callable[[str], bool],
) -> ReviewedWorkbook:
    """Validate the whole workbook; raise InvalidReview listing every problem."""
    if file.suffix.lower() not in (".xlsx", ".xlsm"):
        raise InvalidReview(
            file, [f"not an .xlsx workbook (a {file.suffix or 'nameless'} file); save it as .xlsx"]
        )
    try:
        wb = openpyxl.load_workbook(file, data_only=True)
    except FileNotFoundError:
        raise InvalidReview(file, ["no such file"]) from None
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, InvalidFileException) as exc:
        raise InvalidReview(file, [f"not an .xlsx workbook ({exc})"]) from None
    if "Summary" not in wb.sheetnames or SHEET not in wb.sheetnames:
        kind = (
            "a page-scan report (its findings are fixed in the shop, not applied by a robot)"
            if "Price errors" in wb.sheetnames
            else "a returns report (apply supports refunds workbooks so far)"
            if "Suggestions" in wb.sheetnames
            else f"sheets {wb.sheetnames}"
        )
        raise InvalidReview(
            file,
            [
                f"not a refunds exception workbook: expected sheets Summary and {SHEET}, "
                f"found {kind}"
            ],
        )
    summary = {
        _cell_text(k): v for k, v, *_ in wb["Summary"].iter_rows(max_col=2, values_only=True)
    }
    run_id = _cell_text(summary.get("运行编号 run id"))
    scenario = _cell_text(summary.get("场景 scenario"))
    if not run_id:
        raise InvalidReview(file, ["sheet 'Summary': the run id (运行编号 run id) is missing"])
    if _cell_text(summary.get("演练 dry run")).startswith("是"):
        raise InvalidReview(file, [f"run {run_id} was a dry run: its workbook cannot be applied"])
    if not run_is_known(run_id):
        raise InvalidReview(
            file, [f"sheet 'Summary': run {run_id} is not in this workspace's ledger"]
        )

    sheet = wb[SHEET]
    problems: list[str] = []
    headers = [_cell_text(c.value) for c in sheet[1]][: len(EXCEPTION_COLUMNS)]
    for i, (expected, _) in enumerate(EXCEPTION_COLUMNS, start=1):
        got = headers[i - 1] if i <= len(headers) else ""
        if got != expected:
            problems.append(
                f"sheet '{SHEET}', row 1, column {get_column_letter(i)}: header {got!r}, "
                f"expected {expected!r} (columns must not be moved, added or deleted)"
            )
    if problems:
        raise InvalidReview(file, problems)

    rows: list[ReviewedRow] = []
    seen: dict[str, int] = {}
    for r, values in enumerate(
        sheet.iter_rows(min_row=2, max_col=len(EXCEPTION_COLUMNS), values_only=True), start=2
    ):
        cells = [_cell_text(v) for v in values]
        raw_decision = cells[DECISION_COLUMN - 1]
        if not raw_decision:
            continue
        decision = DECISION_WORDS.get(raw_decision.lower())
        if decision is None:
            problems.append(
                f"{_where(r, DECISION_COLUMN)}: unknown decision {raw_decision!r} "
                "(expected approve or hold, or leave it empty)"
            )
        reviewer = cells[REVIEWER_COLUMN - 1]
        if not reviewer:
            problems.append(f"{_where(r, REVIEWER_COLUMN)}: a decision needs the reviewer's name")
        refund_id, key, row_run = (
            cells[REFUND_ID_COLUMN - 1],
            cells[ITEM_COLUMN - 1],
            cells[RUN_COLUMN - 1],
        )
        if not key or not row_run:
            problems.append(
                f"{_where(r, ITEM_COLUMN)}: the hidden item/run columns are empty; rows "
                "typed in by hand cannot be applied"
            )
            continue
        if row_run != run_id:
            problems.append(
                f"{_where(r, RUN_COLUMN)}: this row comes from run {row_run}, the workbook is "
                f"run {run_id} (rows copied between workbooks cannot be applied)"
            )
        if key.split("@", 1)[0] != refund_id:
            problems.append(
                f"{_where(r, REFUND_ID_COLUMN)}: refund id {refund_id!r} was edited; the row "
                f"was written for {key.split('@', 1)[0]!r}"
            )
        elif not item_is_known(key):
            problems.append(f"{_where(r, ITEM_COLUMN)}: item {key} is not in the ledger")
        if key in seen:
            problems.append(
                f"{_where(r, REFUND_ID_COLUMN)}: {refund_id} is also on row {seen[key]}"
            )
        seen[key] = r
        if decision is not None and reviewer:
            rows.append(ReviewedRow(r, refund_id, key, decision, reviewer, cells[NOTE_COLUMN - 1]))
    if problems:
        raise InvalidReview(file, problems)
    return ReviewedWorkbook(file, run_id, scenario, rows)
