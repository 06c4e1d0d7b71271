"""The refunds robot's exception report: Summary, Exceptions (for people), Approved.

Written for Excel/WPS users: header frozen, filters on, amounts as numbers, reasons as a
stable code plus plain Chinese, links to the back office and the evidence, and a *Decision*
column with a dropdown (approve / hold) and a *Reviewer* column, which `robots apply` acts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from robots.reports import workbook as book

DECISIONS = ("approve", "hold")
LAST = datetime(9999, 12, 31)  # noqa: DTZ001 - a naive wall time, as the sheet shows them

EXCEPTION_COLUMNS = [  # (header, width)
    ("紧急", 6),
    ("退款编号", 20),
    ("订单编号", 20),
    ("买家", 14),
    ("退款金额", 11),
    ("原因代码", 26),
    ("原因说明", 40),
    ("超时时间", 17),
    ("后台链接", 12),
    ("证据", 10),
    ("处理决定", 10),
    ("复核人", 10),
    ("备注", 30),
    # hidden: which ledger item and which run each row was written for, so `robots apply`
    # can tell an edited id or a row pasted from another run's workbook
    ("条目 item", 12),
    ("运行 run", 12),
]
DECISION_COLUMN, REVIEWER_COLUMN, ITEM_COLUMN, RUN_COLUMN = 11, 12, 14, 15
APPROVED_COLUMNS = [
    ("退款编号", 20),
    ("订单编号", 20),
    ("买家", 14),
    ("操作", 16),
    ("退款金额", 11),
    ("处理时间", 17),
    ("后台链接", 12),
]


@dataclass(frozen=True)
class ExceptionRow:
    refund_id: str
    order_id: str
    buyer: str
    amount: Decimal
    reason_code: str
    reason: str
    deadline: datetime | None
    urgent: bool
    link: str
    evidence: str = ""
    item_key: str = ""


@dataclass(frozen=True)
class ApprovedRow:
    refund_id: str
    order_id: str
    buyer: str
    action: str
    amount: Decimal
    at: datetime
    link: str


@dataclass(frozen=True)
class RunSummary(book.RunFacts):
    money_approved: Decimal

    @property
    def auto_rate(self) -> float:
        decided = self.counts.get("approved", 0) + self.counts.get("handed_to_person", 0)
        return self.counts.get("approved", 0) / decided if decided else 0.0


def write_refund_report(
    path: Path, summary: RunSummary, exceptions: list[ExceptionRow], approved: list[ApprovedRow]
) -> Path:
    wb = Workbook()
    verb = "将同意（演练）" if summary.dry_run else "已自动同意"
    rows: list[book.SummaryRow] = [
        ("运行编号 run id", summary.run_id),
        ("场景 scenario", summary.scenario),
        ("开始 start", summary.started_at),
        ("结束 end", summary.ended_at),
        ("演练 dry run", "是（未做任何修改）" if summary.dry_run else "否"),
        (f"{verb} approved", summary.counts.get("approved", 0)),
        ("转人工 handed to a person", summary.counts.get("handed_to_person", 0)),
        ("系统异常 system exceptions", summary.counts.get("system_exception", 0)),
        ("已由他人处理 handled elsewhere", summary.counts.get("handled_elsewhere", 0)),
        ("自动通过率 auto-approval rate", summary.auto_rate, "0.0%"),
        ("自动退款金额 money approved", summary.money_approved, book.MONEY_FORMAT),
    ]
    book.summary_sheet(wb, rows, widths=(22, 48))

    ex = wb.create_sheet("Exceptions")
    book.header(ex, EXCEPTION_COLUMNS)
    ordered = sorted(exceptions, key=lambda e: (not e.urgent, e.deadline or LAST))
    for r, e in enumerate(ordered, start=2):
        ex.append(
            [
                "是" if e.urgent else "",
                e.refund_id,
                e.order_id,
                e.buyer,
                float(e.amount),
                e.reason_code,
                e.reason,
                e.deadline,
                None,
                None,
                None,
                None,
                None,
                e.item_key,
                summary.run_id,
            ]
        )
        ex.cell(row=r, column=5).number_format = book.MONEY_FORMAT
        ex.cell(row=r, column=8).number_format = book.TIME_FORMAT
        book.link(ex.cell(row=r, column=9), e.link, "打开")
        if e.evidence:
            book.link(ex.cell(row=r, column=10), e.evidence, "截图")
        if e.urgent:
            book.mark(ex, r, len(EXCEPTION_COLUMNS))
    book.decision_column(ex, DECISION_COLUMN, DECISIONS, len(ordered))
    book.filters(ex, EXCEPTION_COLUMNS, len(ordered))
    for column in (ITEM_COLUMN, RUN_COLUMN):
        ex.column_dimensions[get_column_letter(column)].hidden = True

    ap = wb.create_sheet("Approved")
    book.header(ap, APPROVED_COLUMNS)
    for r, a in enumerate(sorted(approved, key=lambda a: a.at), start=2):
        ap.append([a.refund_id, a.order_id, a.buyer, a.action, float(a.amount), a.at, None])
        ap.cell(row=r, column=5).number_format = book.MONEY_FORMAT
        ap.cell(row=r, column=6).number_format = "yyyy-mm-dd hh:mm:ss"
        book.link(ap.cell(row=r, column=7), a.link, "打开")
    book.filters(ap, APPROVED_COLUMNS, len(approved))
    return book.save(wb, path)
