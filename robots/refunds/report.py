"""The refunds robot's workbook, written from the ledger: 汇总, 待人工处理, 已同意.

Written for Excel/WPS users who read Chinese: every failed rule of a hand-over in plain
Chinese (the codes in a narrow column beside them for filters), hours left until the
platform's deadline (已超时 first), amounts as numbers, links to the back office and the
evidence, a *处理决定* dropdown (同意 / 暂缓) and a *复核人* column that `robots apply` acts
on, and a Summary a manager reads in ten seconds.

The rows come from the ledger (each item keeps the row it would show, see
``robots.engine.item.Item.row``), so a run killed, stopped or failed still gets its
workbook: `robots report RUN`, the next run, and the open-exceptions queue all write it the
same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from robots.ledger import ItemView, Ledger, RunView, State
from robots.refunds.model import ROBOT
from robots.refunds.policy import MOVES_MONEY, REASONS
from robots.reports import workbook as book

EXCEPTIONS, APPROVED = "待人工处理", "已同意"
DECISIONS = ("同意", "暂缓")
ACTIONS = {
    "agree_refund": "同意退款",
    "agree_return": "同意退货",
    "confirm_refund": "确认收货并退款",
}
LAST = datetime(9999, 12, 31)  # noqa: DTZ001 - a naive wall time, as the sheet shows them

EXCEPTION_COLUMNS = [  # (header, width)
    ("时限", 8),
    ("剩余小时", 9),
    ("退款编号", 20),
    ("订单编号", 20),
    ("买家", 14),
    ("退款金额", 11),
    ("原因（全部未通过的规则）", 46),
    ("原因代码", 24),
    ("截止时间", 17),
    ("后台链接", 9),
    ("证据", 8),
    ("处理决定", 10),
    ("复核人", 10),
    ("备注", 24),
    # hidden: which ledger item and which run each row was written for, so `robots apply`
    # can tell an edited id or a row pasted from another run's workbook
    ("条目 item", 12),
    ("运行 run", 12),
]
HEADERS = [h for h, _ in EXCEPTION_COLUMNS]
COLUMN = {h: i for i, h in enumerate(HEADERS, start=1)}
DECISION_COLUMN, REVIEWER_COLUMN = COLUMN["处理决定"], COLUMN["复核人"]
ITEM_COLUMN, RUN_COLUMN = COLUMN["条目 item"], COLUMN["运行 run"]
APPROVED_COLUMNS = [
    ("退款编号", 20),
    ("订单编号", 20),
    ("买家", 14),
    ("操作", 16),
    ("操作代码", 14),
    ("退款金额", 11),
    ("处理时间", 17),
    ("后台链接", 9),
]


@dataclass(frozen=True)
class ExceptionRow:
    refund_id: str
    order_id: str
    buyer: str
    amount: Decimal
    codes: tuple[str, ...]  # every failed rule; the first is the headline
    reason: str  # what people read: every rule in Chinese (and what the page showed)
    deadline: datetime | None  # the shop's wall time
    link: str
    evidence: str = ""  # an absolute path
    item_key: str = ""
    run_id: str = ""
    review: str = ""  # an earlier decision on it (e.g. held by 王芳)

    @property
    def reason_code(self) -> str:
        return self.codes[0] if self.codes else ""

    def hours_left(self, now: datetime) -> float | None:
        if self.deadline is None:
            return None
        return round((self.deadline - now).total_seconds() / 3600, 1)

    def urgency(self, now: datetime, within: float) -> str:
        """已超时 (the hours left, as shown, are none), 紧急 (due within ``within`` hours)
        or ""."""
        left = self.hours_left(now)
        if left is None:
            return ""
        return "已超时" if left <= 0 else "紧急" if left <= within else ""


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
    now: datetime = field(default=LAST)  # the shop's wall time when written: hours left
    escalate_within_hours: float = 12
    status: str = "完成"
    not_started: int = 0

    @property
    def auto_rate(self) -> float:
        decided = self.counts.get("approved", 0) + self.counts.get("handed_to_person", 0)
        return self.counts.get("approved", 0) / decided if decided else 0.0


# -- rows from the ledger ---------------------------------------------------------------------
def _wall(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _money(text: Any) -> Decimal:
    return Decimal(str(text)) if text not in (None, "") else Decimal("0")


def needs_person(view: ItemView) -> bool:
    """An item a person must look at: handed over, given up after retries, or acting with
    nothing proving whether the action landed."""
    return view.state in (State.BUSINESS_EXCEPTION, State.SYSTEM_EXCEPTION) or (
        view.state == State.ACTING and bool(view.reason_code)
    )


def exception_row(view: ItemView) -> ExceptionRow:
    row: dict[str, Any] = view.details.get("row", {})
    refund_id = row.get("refund_id") or view.item_key.split("@", 1)[0]
    code = view.reason_code or "SYSTEM_ERROR"
    codes = tuple(row.get("reasons") or ()) if code not in ("SYSTEM_ERROR",) else ()
    if not codes or codes[0] != code:
        codes = (code,)
    texts = [REASONS.get(c, c) for c in codes]
    if code in ("UNREADABLE_FIELD", "STALE_RECORD", "SYSTEM_ERROR") and view.error_message:
        texts = [f"{texts[0]}：{view.error_message}"]
    review = view.details.get("review") or {}
    return ExceptionRow(
        refund_id=refund_id,
        order_id=row.get("order_id", ""),
        buyer=row.get("buyer", ""),
        amount=_money(row.get("amount")),
        codes=codes,
        reason="；\n".join(texts),
        deadline=_wall(row.get("deadline")),
        link=row.get("link", ""),
        evidence=view.evidence[0] if view.evidence and code == "SYSTEM_ERROR" else "",
        item_key=view.item_key,
        run_id=view.run_id,
        review=(
            f"{'暂缓' if review.get('decision') == 'hold' else '已复核'}："
            f"{review.get('reviewer', '')} {review.get('note', '')}".strip()
            if review
            else ""
        ),
    )


def approved_row(view: ItemView) -> ApprovedRow:
    row: dict[str, Any] = view.details.get("row", {})
    return ApprovedRow(
        refund_id=row.get("refund_id") or view.item_key.split("@", 1)[0],
        order_id=row.get("order_id", ""),
        buyer=row.get("buyer", ""),
        action=view.action,
        amount=_money(row.get("amount")),
        at=_wall(row.get("at")) or view.updated_at,
        link=row.get("link", ""),
    )


def is_approval(view: ItemView) -> bool:
    """Done by the robot's own action (not handled elsewhere, not a reviewed approval)."""
    return view.state == State.DONE and bool(view.action) and "review" not in view.details


def rows_of_run(
    items: Iterable[ItemView],
) -> tuple[list[ExceptionRow], list[ApprovedRow], int]:
    """The run's hand-overs, approvals and items claimed but never started."""
    exceptions, approved, not_started = [], [], 0
    for view in items:
        if needs_person(view):
            exceptions.append(exception_row(view))
        elif is_approval(view):
            approved.append(approved_row(view))
        elif view.state == State.PENDING:
            not_started += 1
    return exceptions, approved, not_started


def write_from_ledger(
    ledger: Ledger,
    run: RunView,
    path: Path,
    *,
    robot: str,
    now: datetime,
    escalate_within_hours: float,
) -> Path:
    """The workbook of ``run`` as the ledger holds it now (its items as they last ended)."""
    exceptions, approved, not_started = rows_of_run(ledger.items(robot, run_id=run.run_id))
    counts = dict(run.summary.get("counts", {}))
    counts["approved"] = len(approved)
    counts["handed_to_person"] = sum(r.reason_code != "SYSTEM_ERROR" for r in exceptions)
    counts["system_exception"] = sum(r.reason_code == "SYSTEM_ERROR" for r in exceptions)
    money = sum((a.amount for a in approved if a.action in MOVES_MONEY), start=Decimal("0"))
    summary = RunSummary(
        run.run_id,
        run.scenario,
        run.started_at,
        run.ended_at or run.started_at,
        run.dry_run,
        counts,
        money,
        now=now,
        escalate_within_hours=escalate_within_hours,
        status=book.status_of(run, not_started),
        not_started=not_started,
    )
    return write_refund_report(path, summary, exceptions, approved)


QUEUE_SHEET = "退款待人工处理"


def write_run(ledger: Ledger, run: RunView, path: Path, *, now: datetime) -> Path:
    """`robots report RUN`, and the next run for a run that was killed."""
    return write_from_ledger(
        ledger, run, path, robot=ROBOT, now=now, escalate_within_hours=ESCALATE_HOURS
    )


def queue_sheet(wb: Workbook, ledger: Ledger, *, now: datetime) -> dict[str, Any]:
    """The open-exceptions queue's refunds sheet: every refund still waiting for a person,
    whichever run handed it over (the run's id in its hidden column: `robots apply` takes
    this sheet as it takes a run's). Returns what the queue's Summary says of it."""
    rows = [exception_row(v) for v in ledger.open_items(ROBOT)]
    exception_sheet(wb.create_sheet(QUEUE_SHEET), rows, now, ESCALATE_HOURS)
    overdue, soon = due(rows, now, ESCALATE_HOURS)
    return {
        "sheet": QUEUE_SHEET,
        "open": len(rows),
        "overdue": overdue,
        "due_soon": soon,
        "money": sum((r.amount for r in rows), start=Decimal("0")),
        "oldest_deadline": min((r.deadline for r in rows if r.deadline), default=None),
    }


ESCALATE_HOURS = 12.0  # the queue's "紧急" (each scenario's own setting marks its run's book)


# -- the workbook -----------------------------------------------------------------------------
def due(rows: list[ExceptionRow], now: datetime, within: float) -> tuple[int, int]:
    """How many rows are overdue, and how many fall due within ``within`` hours."""
    flags = Counter(r.urgency(now, within) for r in rows)
    return flags["已超时"], flags["紧急"]


def by_reason(exceptions: list[ExceptionRow]) -> list[tuple[str, int, Decimal]]:
    """Each headline reason with its count and money, the most frequent first."""
    money: dict[str, Decimal] = {}
    for e in exceptions:
        money[e.reason_code] = money.get(e.reason_code, Decimal("0")) + e.amount
    counts = Counter(e.reason_code for e in exceptions)
    return [(code, n, money[code]) for code, n in counts.most_common()]


def summary_rows(
    summary: RunSummary, exceptions: list[ExceptionRow]
) -> list[book.SummaryRow | None]:
    verb = "将同意（演练）" if summary.dry_run else "已自动同意"
    counts = summary.counts
    overdue, soon = due(exceptions, summary.now, summary.escalate_within_hours)
    awaiting = sum((e.amount for e in exceptions), start=Decimal("0"))
    rows: list[book.SummaryRow | None] = [
        *book.run_rows(
            summary, summary.status, dry_run="是（未做任何修改）" if summary.dry_run else "否"
        ),
        None,
        ("一览 at a glance", book.SECTION),
        (f"{verb} approved", counts.get("approved", 0)),
        ("待人工处理 to a person", len(exceptions)),
        ("  其中已超时 overdue", overdue),
        (f"  其中{summary.escalate_within_hours:g}小时内到期 due soon", soon),
        ("待复核金额 money awaiting review", awaiting, book.MONEY_FORMAT),
        ("自动退款金额 money approved", summary.money_approved, book.MONEY_FORMAT),
        ("自动通过率 auto-approval rate", summary.auto_rate, "0.0%"),
        ("系统异常 system exceptions", counts.get("system_exception", 0)),
        ("已由他人处理 handled elsewhere", counts.get("handled_elsewhere", 0)),
        ("未变化未重复列出 unchanged since last run", counts.get("unchanged_since_last_run", 0)),
        ("未开始 not started", summary.not_started),
        *book.field_rows(counts),
    ]
    reasons = by_reason(exceptions)
    if reasons:  # the last section: write_refund_report puts each one's money beside it
        rows += [None, ("按主要原因 by headline reason（笔数 / 金额）", book.SECTION)]
        for code, n, _money in reasons:
            rows.append((f"{REASONS.get(code, code)} {code}", n))
    return rows


def write_refund_report(
    path: Path, summary: RunSummary, exceptions: list[ExceptionRow], approved: list[ApprovedRow]
) -> Path:
    wb = Workbook()
    rows = summary_rows(summary, exceptions)
    ws = book.summary_sheet(wb, rows, widths=(30, 40))
    reasons = by_reason(exceptions)  # the summary's last rows, one sheet row per entry
    for r, (_code, _n, money) in enumerate(reasons, start=len(rows) - len(reasons) + 1):
        ws.cell(row=r, column=3, value=float(money)).number_format = book.MONEY_FORMAT
    ws.column_dimensions["C"].width = 14

    ex = wb.create_sheet(EXCEPTIONS)
    exception_sheet(ex, exceptions, summary.now, summary.escalate_within_hours)

    ap = wb.create_sheet(APPROVED)
    book.header(ap, APPROVED_COLUMNS)
    for r, a in enumerate(sorted(approved, key=lambda a: a.at), start=2):
        ap.append(
            [
                a.refund_id,
                a.order_id,
                a.buyer,
                ACTIONS.get(a.action, a.action),
                a.action,
                float(a.amount),
                a.at,
                None,
            ]
        )
        ap.cell(row=r, column=6).number_format = book.MONEY_FORMAT
        ap.cell(row=r, column=7).number_format = "yyyy-mm-dd hh:mm:ss"
        if a.link:
            book.link(ap.cell(row=r, column=8), a.link, "打开")
    book.filters(ap, APPROVED_COLUMNS, len(approved))
    return book.save(wb, path)


def exception_sheet(
    ex: Worksheet, exceptions: list[ExceptionRow], now: datetime, within: float
) -> None:
    """The rows a person decides on: overdue first, then by deadline."""
    book.header(ex, EXCEPTION_COLUMNS)
    ordered = sorted(exceptions, key=lambda e: (e.deadline or LAST, e.refund_id))
    for r, e in enumerate(ordered, start=2):
        left, flag = e.hours_left(now), e.urgency(now, within)
        ex.append(
            [
                flag,
                left,
                e.refund_id,
                e.order_id,
                e.buyer,
                float(e.amount),
                e.reason,
                ", ".join(e.codes),
                e.deadline,
                None,
                None,
                None,
                None,
                e.review or None,
                e.item_key,
                e.run_id,
            ]
        )
        ex.cell(row=r, column=COLUMN["剩余小时"]).number_format = "0.0"
        ex.cell(row=r, column=COLUMN["退款金额"]).number_format = book.MONEY_FORMAT
        ex.cell(row=r, column=COLUMN["截止时间"]).number_format = book.TIME_FORMAT
        if e.link:
            book.link(ex.cell(row=r, column=COLUMN["后台链接"]), e.link, "打开")
        if e.evidence:
            book.evidence_link(ex.cell(row=r, column=COLUMN["证据"]), e.evidence)
        if flag == "已超时":
            book.mark(ex, r, len(EXCEPTION_COLUMNS))
        elif flag == "紧急":
            book.mark(ex, r, len(EXCEPTION_COLUMNS), book.SOON_FILL)
    book.wrap(ex, COLUMN["原因（全部未通过的规则）"])
    book.wrap(ex, COLUMN["原因代码"])
    book.decision_column(ex, DECISION_COLUMN, DECISIONS, len(ordered))
    book.filters(ex, EXCEPTION_COLUMNS, len(ordered))
    for column in (ITEM_COLUMN, RUN_COLUMN):
        ex.column_dimensions[get_column_letter(column)].hidden = True
