"""The returns robot's workbook, written from the ledger: 汇总, 已关联, 待人工确认, 未匹配.

Same conventions as the other reports (``robots.reports.workbook``): Chinese first, phone
numbers masked to their last four digits, signals in Chinese and wrapped whole. In 待人工确认
each parcel has its top candidates side by side with scores and the signals that fired, and a
处理决定 column where a person writes which candidate (1, 2, 3) or 无, with their name in 复核人
(`robots apply` links it, ``robots.returns.apply``); in 未匹配 each row says
what to do next. Every parcel keeps its row in the ledger (``Item.row``), so a killed run's
parcels still reach a workbook and the open-exceptions queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from robots.ledger import ItemView, Ledger, RunView, State
from robots.reports import workbook as book

ROBOT = "returns"
REASONS = {
    "NEEDS_REVIEW": "有可能的订单但不够确定，请从候选中选择",
    "NO_MATCH": "没有找到可能的订单",
    "LINKED_ELSEWHERE": "包裹已被他人关联到其他单据",
    "SYSTEM_ERROR": "系统异常，多次重试仍失败，请人工处理",
}
CUT_NOTE = "查询结果过多，候选未全部看过，仅凭运单号才会自动关联"
NEXT_STEP = {  # what a person does next with a parcel under 未匹配
    "NO_MATCH": "在后台按手机号、姓名或商品再查；仍无结果请联系快递查寄件人，按无主件登记保管",
    "LINKED_ELSEWHERE": "核对已关联的单据；若关联有误，在仓库终端撤销后重新关联",
    "SYSTEM_ERROR": "下次运行会自动重试；多次失败请检查仓库终端和后台是否正常",
}
LINKED, SUGGESTIONS, UNMATCHED = "已关联", "待人工确认", "未匹配"
DECISIONS = ("1", "2", "3", "无")
PARCEL_COLUMNS = [
    ("包裹号", 16),
    ("运单号", 17),
    ("寄件人", 10),
    ("寄件电话", 13),
    ("商品", 28),
    ("到货时间", 17),
]
LINKED_COLUMNS = [
    *PARCEL_COLUMNS,
    ("关联到", 20),
    ("订单号", 20),
    ("得分", 7),
    ("次高分", 7),
    ("命中信号", 48),
    ("包裹页", 8),
]
SUGGESTION_COLUMNS = [
    *PARCEL_COLUMNS,
    ("原因", 30),
    ("原因代码", 14),
    *[
        (f"候选{i} {what}", w)
        for i in (1, 2, 3)
        for what, w in (("单号", 20), ("得分", 7), ("信号", 34))
    ],
    ("处理决定", 10),
    ("复核人", 10),
    ("备注", 24),
]
DECISION_COLUMN = [name for name, _ in SUGGESTION_COLUMNS].index("处理决定") + 1
QUEUE_SUGGESTIONS = "无名件待人工确认"
UNMATCHED_COLUMNS = [
    *PARCEL_COLUMNS,
    ("原因", 30),
    ("原因代码", 14),
    ("下一步", 44),
    ("证据", 8),
    ("备注", 24),
]


def parcel_row(
    parcel_id: str,
    waybill: str,
    sender_name: str,
    sender_phone: str,
    items: Iterable[tuple[str, int]],
    received_at: datetime,
    link: str,
) -> dict[str, Any]:
    """What every sheet shows of a parcel (kept with its item in the ledger), phone masked."""
    return {
        "parcel_id": parcel_id,
        "waybill": waybill,
        "sender_name": sender_name,
        "sender_phone": book.mask_phone(sender_phone),
        "items": "; ".join(f"{sku}×{qty}" for sku, qty in items),
        "received_at": received_at.isoformat(timespec="seconds"),
        "link": link,
    }


def _parcel_cells(row: dict[str, Any], key: str) -> list[object]:
    received = row.get("received_at")
    return [
        row.get("parcel_id", key),
        row.get("waybill", ""),
        row.get("sender_name", ""),
        book.mask_phone(str(row.get("sender_phone", ""))),
        row.get("items", ""),
        datetime.fromisoformat(received) if received else None,
    ]


def _signals(signals: Iterable[str]) -> str:
    return "；".join(signals)


def sort_items(items: Iterable[ItemView]) -> tuple[list[ItemView], list[ItemView], list[ItemView]]:
    """Linked by the robot, waiting for a person's pick, and the rest waiting for a person."""
    linked: list[ItemView] = []
    suggestions: list[ItemView] = []
    unmatched: list[ItemView] = []
    for v in items:
        if v.state == State.DONE and v.action:
            linked.append(v)
        elif v.state in (State.BUSINESS_EXCEPTION, State.SYSTEM_EXCEPTION) or (
            v.state == State.ACTING and v.reason_code
        ):
            (suggestions if v.reason_code == "NEEDS_REVIEW" else unmatched).append(v)
    return linked, suggestions, unmatched


def write_from_ledger(ledger: Ledger, run: RunView, path: Path) -> Path:
    items = ledger.items(ROBOT, run_id=run.run_id)
    linked, suggestions, unmatched = sort_items(items)
    not_started = sum(v.state == State.PENDING for v in items)
    status = book.status_of(run, not_started, unit="个包裹")
    wb = Workbook()
    rows: list[book.SummaryRow | None] = [
        *book.run_rows(run, status, dry_run="是（未做任何关联）" if run.dry_run else "否"),
        None,
        ("一览 at a glance", book.SECTION),
        ("将关联 would link" if run.dry_run else "已关联 linked", len(linked)),
        ("待人工确认 suggestions", len(suggestions)),
        ("未匹配 unmatched", len(unmatched)),
        ("  其中已被他人关联 linked elsewhere", _count(unmatched, "LINKED_ELSEWHERE")),
        ("  其中系统异常 system exceptions", _count(unmatched, "SYSTEM_ERROR")),
        ("未开始 not started", not_started),
        *book.field_rows(run.summary.get("counts", {})),
    ]
    book.summary_sheet(wb, rows)
    linked_sheet(wb.create_sheet(LINKED), linked)
    suggestion_sheet(wb.create_sheet(SUGGESTIONS), suggestions)
    unmatched_sheet(wb.create_sheet(UNMATCHED), unmatched)
    return book.save(wb, path)


def _count(items: list[ItemView], code: str) -> int:
    return sum(v.reason_code == code for v in items)


def write_run(ledger: Ledger, run: RunView, path: Path, *, now: datetime) -> Path:
    """`robots report RUN`, and the next run for a run that was killed."""
    return write_from_ledger(ledger, run, path)


def queue_sheet(wb: Workbook, ledger: Ledger, *, now: datetime) -> dict[str, Any]:
    """The open-exceptions queue's returns sheets: every parcel still waiting for a person."""
    _linked, suggestions, unmatched = sort_items(ledger.open_items(ROBOT))
    suggestion_sheet(wb.create_sheet(QUEUE_SUGGESTIONS), suggestions)
    unmatched_sheet(wb.create_sheet("无名件未匹配"), unmatched)
    return {
        "sheet": f"{QUEUE_SUGGESTIONS} / 无名件未匹配",
        "open": len(suggestions) + len(unmatched),
    }


def linked_sheet(sheet: Worksheet, items: list[ItemView]) -> None:
    book.header(sheet, LINKED_COLUMNS)
    for r, v in enumerate(items, start=2):
        row = v.details.get("row", {})
        facts = v.details.get("decision", {})
        sheet.append(
            [
                *_parcel_cells(row, v.item_key),
                v.details.get("linked_to", ""),
                facts.get("order_id", ""),
                facts.get("score"),
                facts.get("runner_up"),
                _signals(facts.get("signals", ())),
                None,
            ]
        )
        sheet.cell(row=r, column=6).number_format = book.TIME_FORMAT
        if row.get("link"):
            book.link(sheet.cell(row=r, column=12), row["link"], "打开")
    book.wrap(sheet, 11)
    book.filters(sheet, LINKED_COLUMNS, len(items))


def suggestion_sheet(sheet: Worksheet, items: list[ItemView]) -> None:
    book.header(sheet, SUGGESTION_COLUMNS)
    for r, v in enumerate(items, start=2):
        row = v.details.get("row", {})
        reason = REASONS.get(v.reason_code, v.reason_code)
        if row.get("cut"):  # some candidates were never examined: say which searches
            reason += f"；{CUT_NOTE}：{'、'.join(row['cut'])}"
        cells: list[object] = [*_parcel_cells(row, v.item_key), reason, v.reason_code]
        top = row.get("top", [])
        for i in range(3):
            if i < len(top):
                cells += [top[i]["target"], top[i]["score"], _signals(top[i]["signals"])]
            else:
                cells += [None, None, None]
        sheet.append([*cells, None, None, None])
        sheet.cell(row=r, column=6).number_format = book.TIME_FORMAT
    for column in (11, 14, 17):
        book.wrap(sheet, column)
    book.decision_column(sheet, DECISION_COLUMN, DECISIONS, len(items))
    book.filters(sheet, SUGGESTION_COLUMNS, len(items))


def unmatched_sheet(sheet: Worksheet, items: list[ItemView]) -> None:
    book.header(sheet, UNMATCHED_COLUMNS)
    for r, v in enumerate(items, start=2):
        row = v.details.get("row", {})
        code = v.reason_code or "SYSTEM_ERROR"
        reason = REASONS.get(code, code)
        if code == "LINKED_ELSEWHERE" and v.error_message:
            reason = v.error_message
        sheet.append(
            [*_parcel_cells(row, v.item_key), reason, code, NEXT_STEP.get(code, ""), None, None]
        )
        sheet.cell(row=r, column=6).number_format = book.TIME_FORMAT
        if code == "SYSTEM_ERROR" and v.evidence:
            book.evidence_link(sheet.cell(row=r, column=10), v.evidence[0])
    book.wrap(sheet, 7)
    book.wrap(sheet, 9)
    book.filters(sheet, UNMATCHED_COLUMNS, len(items))
