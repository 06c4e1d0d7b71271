"""The workbook of a robot that declares its columns, written from the ledger: the report a
small robot gets without writing one (``robots/stalled`` uses it).

``ItemsReport(robot, title, columns, reasons)`` gives the robot's ``write_run`` (a run's
workbook: 汇总, then 待人工处理 with every item this run handed to a person, its reason in
Chinese with the code beside it, then 已完成) and its ``queue_sheet`` (its open items in the
open-exceptions workbook, whichever run handed them over). A column names a key of the
item's row (``item.row``, kept in the ledger however the item ended), and its format:
``time`` or ``money`` where a value is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from robots.ledger import ItemView, Ledger, RunView, State
from robots.reports import workbook as book

FORMATS = {"time": book.TIME_FORMAT, "money": book.MONEY_FORMAT}


@dataclass(frozen=True)
class Column:
    header: str  # Chinese first, the code beside it: "订单号 order"
    key: str  # the key of the item's row
    width: int = 16
    format: str = ""  # "time", "money" or "" (as shown)
    names: Mapping[str, str] = field(default_factory=dict)  # a code as ops read it


@dataclass(frozen=True)
class ItemsReport:
    robot: str
    title: str  # the robot's name as ops read it (物流停滞)
    columns: Sequence[Column]
    reasons: Mapping[str, str]  # reason code → its Chinese text
    unit: str = "条"  # what the items are (单: orders)
    # a sheet of the pages that failed (失败页面): items whose page could not be opened or
    # read (a system exception after its retries, an unreadable field), with the page's
    # address (the row's ``@url``) and why
    failed_pages: bool = False

    def write_run(self, ledger: Ledger, run: RunView, path: Path, *, now: datetime) -> Path:
        """This run's workbook (`robots report RUN`; the next run for one that was killed)."""
        items = ledger.items(self.robot, run_id=run.run_id)
        handed = [v for v in items if v.state in _HANDED]
        done = [v for v in items if v.state == State.DONE]
        waiting = sum(v.state == State.PENDING for v in items)
        status = book.status_of(run, waiting, unit=self.unit)
        wb = Workbook()
        rows: list[book.SummaryRow | None] = [
            ("报表 report", self.title),
            *book.run_rows(run, status),
            None,
            ("一览 at a glance", book.SECTION),
            ("待人工处理 to a person", len(handed)),
            ("  其中系统异常 system exceptions", sum(v.state != _BUSINESS for v in handed)),
            ("已完成 done", len(done)),
            ("未开始 not started", waiting),
            *book.field_rows(run.summary.get("counts", {})),
        ]
        failed = [v for v in handed if v.state != _BUSINESS or v.reason_code in PAGE_FAILURES]
        if self.failed_pages:  # beside the hand-overs it is part of
            at = rows.index(("待人工处理 to a person", len(handed))) + 2
            rows.insert(at, ("  其中页面失败 failed pages", len(failed)))
        book.summary_sheet(wb, rows)
        self._sheet(wb.create_sheet("待人工处理"), handed, reasons=True)
        self._sheet(wb.create_sheet("已完成"), done, reasons=False)
        if self.failed_pages:
            _failed_sheet(wb.create_sheet("失败页面"), failed)
        return book.save(wb, path)

    def queue_sheet(self, wb: Workbook, ledger: Ledger, *, now: datetime) -> dict[str, Any]:
        """Its part of the open-exceptions queue: every item still waiting for a person."""
        name = f"{self.title}待处理"
        items = ledger.open_items(self.robot)
        self._sheet(wb.create_sheet(name), items, reasons=True)
        return {"sheet": name, "open": len(items)}

    def _sheet(self, sheet: Worksheet, items: list[ItemView], *, reasons: bool) -> None:
        columns: list[tuple[str, int]] = [("条目 item", 30)]
        columns += [(c.header, c.width) for c in self.columns]
        if reasons:
            columns += [("原因 reason", 36), ("原因代码 code", 18), ("处理备注 notes", 24)]
        book.header(sheet, columns)
        for r, v in enumerate(items, start=2):
            row = v.details.get("row", {})
            cells: list[object] = [v.item_key, *(_cell(row.get(c.key), c) for c in self.columns)]
            if reasons:
                code = v.reason_code or "SYSTEM_ERROR"
                # a code the report does not name (a flow's rule): its message says it all
                text = self.reasons.get(code, "系统异常" if v.state != _BUSINESS else "")
                said = "：".join(t for t in (text, v.error_message) if t) or code
                cells += [said, code, None]
            sheet.append(cells)
            for i, c in enumerate(self.columns, start=2):
                if c.format:
                    sheet.cell(row=r, column=i).number_format = FORMATS[c.format]
        if reasons:
            book.wrap(sheet, len(self.columns) + 2)
        book.filters(sheet, columns, len(items))
        book.print_setup(sheet)


def _failed_sheet(sheet: Worksheet, items: list[ItemView]) -> None:
    columns = [
        ("条目 item", 30),
        ("页面 page", 48),
        ("原因 reason", 48),
        ("原因代码 code", 18),
    ]
    book.header(sheet, columns)
    for v in items:
        code = v.reason_code or "SYSTEM_ERROR"
        url = v.details.get("row", {}).get("@url", "")
        sheet.append([v.item_key, url, v.error_message or code, code])
    book.wrap(sheet, 3)
    book.filters(sheet, columns, len(items))
    book.print_setup(sheet)


# what a failed page hands over as, besides a system exception: a value it did not show
PAGE_FAILURES = ("UNREADABLE_FIELD",)
_BUSINESS = State.BUSINESS_EXCEPTION
_HANDED = (State.BUSINESS_EXCEPTION, State.SYSTEM_EXCEPTION, State.ACTING)


def _cell(value: Any, column: Column) -> object:
    """A row value as a cell: a code by its Chinese name, code beside it; times back to times
    (the ledger keeps them as ISO text), as the shop's wall time they were read in."""
    if isinstance(value, str) and value in column.names:
        return f"{column.names[value]} {value}"
    if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and value[10] in "T ":
        try:
            return datetime.fromisoformat(value).replace(tzinfo=None)
        except ValueError:
            return value
    return value
