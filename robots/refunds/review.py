"""Reading a refunds workbook that a person reviewed: every problem found, or the decisions.

Pure openpyxl, no browser. The workbook must be one the refunds robot wrote for a real run
in this ledger (or the open-exceptions queue, whose rows come from many runs); each decided
row must still carry the hidden item and run the robot wrote, an unchanged refund id, a
known decision (同意/暂缓, or approve/hold) and a reviewer. Columns are found by their
header. One bad row rejects the whole file (nothing is applied), and the error names the
sheet, row and column of every problem.
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
from robots.refunds.report import EXCEPTIONS, HEADERS, QUEUE_SHEET
from robots.reports.decisions import cell_text, console_rows
from robots.reports.queue import QUEUE_KEY  # the open-exceptions queue's Summary key
from robots.reports.workbook import SUMMARY

# the refunds sheet by the names it has had (Chinese first now; workbooks written before
# keep working), in a run's workbook and in the open-exceptions queue
SHEETS = (EXCEPTIONS, QUEUE_SHEET, "Exceptions")
SUMMARIES = (SUMMARY, "Summary")
# what people type, in either language, for the two decisions
DECISION_WORDS = {"approve": "approve", "同意": "approve", "hold": "hold", "暂缓": "hold"}
# the columns apply reads, found by their header (moved columns are fine)
COLUMNS = {
    "refund_id": "退款编号",
    "decision": "处理决定",
    "reviewer": "复核人",
    "note": "备注",
    "item": "条目 item",
    "run": "运行 run",
}


@dataclass(frozen=True)
class ReviewedRow:
    row: int
    refund_id: str
    item_key: str
    decision: str  # approve | hold
    reviewer: str
    note: str
    run_id: str = ""  # the run whose workbook first listed it


@dataclass(frozen=True)
class ReviewedWorkbook:
    file: Path
    run_id: str  # "" for the open-exceptions queue (its rows come from many runs)
    scenario: str
    rows: list[ReviewedRow]  # the decided rows only
    queue: bool = False


def read_review(
    file: Path,
    *,
    run_is_known: Callable[[str], bool],
    item_is_known: Callable[[str], bool],
    scenario_of: Callable[[str], str] = lambda _run: "",
) -> ReviewedWorkbook:
    """Validate the whole workbook; raise InvalidReview listing every problem. A ``.json``
    file is the console's decisions on the open-exceptions queue (``read_console``)."""
    if file.suffix.lower() == ".json":
        return read_console(
            file, run_is_known=run_is_known, item_is_known=item_is_known, scenario_of=scenario_of
        )
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
    sheet_name = next((n for n in SHEETS if n in wb.sheetnames), None)
    summary_name = next((n for n in SUMMARIES if n in wb.sheetnames), None)
    if sheet_name is None or summary_name is None:
        names = set(wb.sheetnames)
        kind = (
            "a page-scan report (its findings are fixed in the shop, not applied by a robot)"
            if names & {"Price errors", "价格问题"}
            else "a returns report (its 待人工确认 sheet is applied as parcel decisions)"
            if names & {"Suggestions", "待人工确认"}
            else f"sheets {wb.sheetnames}"
        )
        raise InvalidReview(
            file,
            [
                f"not a refunds exception workbook: expected sheets {SUMMARIES[0]} and "
                f"{SHEETS[0]} (or Summary and Exceptions), found {kind}"
            ],
        )
    summary = {
        cell_text(k): v for k, v, *_ in wb[summary_name].iter_rows(max_col=2, values_only=True)
    }
    queue = QUEUE_KEY in summary
    run_id = "" if queue else cell_text(summary.get("运行编号 run id"))
    scenario = cell_text(summary.get("场景 scenario"))
    if not queue:
        if not run_id:
            raise InvalidReview(
                file, [f"sheet '{summary_name}': the run id (运行编号 run id) is missing"]
            )
        if cell_text(summary.get("演练 dry run")).startswith("是"):
            raise InvalidReview(
                file, [f"run {run_id} was a dry run: its workbook cannot be applied"]
            )
        if not run_is_known(run_id):
            raise InvalidReview(
                file, [f"sheet '{summary_name}': run {run_id} is not in this workspace's ledger"]
            )

    sheet = wb[sheet_name]
    headers = [cell_text(c.value) for c in sheet[1]]
    where_of: dict[str, int] = {}
    problems: list[str] = []
    for name, header in COLUMNS.items():
        if header in headers:
            where_of[name] = headers.index(header) + 1
    # every column the robot wrote: what apply reads, and what the reviewer decided by (a
    # deleted amount or reason column means the decisions were taken on a changed sheet)
    for header in HEADERS:
        if header not in headers:
            problems.append(
                f"sheet '{sheet_name}', row 1: no column {header!r} (columns may be moved, "
                "but not renamed or deleted)"
            )
    if problems:
        raise InvalidReview(file, problems)

    def where(row: int, name: str) -> str:
        column = where_of[name]
        return (
            f"sheet '{sheet_name}', row {row}, column {get_column_letter(column)} ({COLUMNS[name]})"
        )

    records = [
        (
            r,
            {
                name: cell_text(values[c - 1]) if c <= len(values) else ""
                for name, c in where_of.items()
            },
        )
        for r, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2)
    ]
    return _decided(
        file, run_id, scenario, queue, records, where,
        run_is_known=run_is_known, item_is_known=item_is_known, scenario_of=scenario_of,
    )  # fmt: skip


def read_console(
    file: Path,
    *,
    run_is_known: Callable[[str], bool],
    item_is_known: Callable[[str], bool],
    scenario_of: Callable[[str], str] = lambda _run: "",
) -> ReviewedWorkbook:
    """The decisions a reviewer took in the console (``robots console``) on the open-exceptions
    queue, written as ``{"rows": [{"refund_id", "item", "run", "decision", "reviewer",
    "note"}, …]}``: checked as the queue's rows are, the n-th decision named as ``decision n``."""
    records = [(i, {name: r.get(name, "") for name in COLUMNS}) for i, r in console_rows(file)]
    return _decided(
        file, "", "", True, records, lambda i, name: f"decision {i}, {name}",
        run_is_known=run_is_known, item_is_known=item_is_known, scenario_of=scenario_of,
    )  # fmt: skip


def _decided(
    file: Path,
    run_id: str,
    scenario: str,
    queue: bool,
    records: list[tuple[int, dict[str, str]]],
    where: Callable[[int, str], str],
    *,
    run_is_known: Callable[[str], bool],
    item_is_known: Callable[[str], bool],
    scenario_of: Callable[[str], str],
) -> ReviewedWorkbook:
    """Every decided row of ``records`` checked (a known decision, a reviewer, the hidden item
    and run, an unedited refund id, each item once); raise InvalidReview naming each problem."""
    problems: list[str] = []
    rows: list[ReviewedRow] = []
    seen: dict[str, int] = {}
    scenarios: set[str] = set()
    for r, cells in records:
        raw_decision = cells["decision"]
        if not raw_decision:
            continue
        decision = DECISION_WORDS.get(raw_decision.lower())
        if decision is None:
            problems.append(
                f"{where(r, 'decision')}: unknown decision {raw_decision!r} "
                "(expected 同意 or 暂缓 (approve or hold), or leave it empty)"
            )
        reviewer = cells["reviewer"]
        if not reviewer:
            problems.append(f"{where(r, 'reviewer')}: a decision needs the reviewer's name")
        refund_id, key, row_run = cells["refund_id"], cells["item"], cells["run"]
        if not key or not row_run:
            problems.append(
                f"{where(r, 'item')}: the hidden item/run columns are empty; rows "
                "typed in by hand cannot be applied"
            )
            continue
        if queue:
            if not run_is_known(row_run):
                problems.append(f"{where(r, 'run')}: run {row_run} is not in this ledger")
            else:
                scenarios.add(scenario_of(row_run))
        elif row_run != run_id:
            problems.append(
                f"{where(r, 'run')}: this row comes from run {row_run}, the workbook is "
                f"run {run_id} (rows copied between workbooks cannot be applied)"
            )
        if key.split("@", 1)[0] != refund_id:
            problems.append(
                f"{where(r, 'refund_id')}: refund id {refund_id!r} was edited; the row "
                f"was written for {key.split('@', 1)[0]!r}"
            )
        elif not item_is_known(key):
            problems.append(f"{where(r, 'item')}: item {key} is not in the ledger")
        if key in seen:
            problems.append(f"{where(r, 'refund_id')}: {refund_id} is also on row {seen[key]}")
        seen[key] = r
        if decision is not None and reviewer:
            rows.append(ReviewedRow(r, refund_id, key, decision, reviewer, cells["note"], row_run))
    if problems:
        raise InvalidReview(file, problems)
    if queue:
        if len(scenarios) > 1:  # more than one shop's refunds were decided in one queue
            raise InvalidReview(
                file,
                [
                    "the decided rows come from more than one shop's runs; decide and apply "
                    "one shop's rows at a time"
                ],
            )
        scenario = next(iter(scenarios), "")
    return ReviewedWorkbook(file, run_id, scenario, rows, queue)
