"""The returns robot's workbook: Summary, Linked, Suggestions (pick one), Unmatched.

Same conventions as the other reports (``robots.reports.workbook``). In *Suggestions* each
parcel has its top candidates side by side with scores and the signals that fired, and a
Decision column where a person writes which candidate (1, 2, 3) or ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook

from robots.reports import workbook as book
from robots.returns.matching import Scored, UnlabelledParcel

DECISIONS = ("1", "2", "3", "none")
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
    ("命中信号", 60),
    ("包裹页", 8),
]
SUGGESTION_COLUMNS = [
    *PARCEL_COLUMNS,
    ("原因代码", 14),
    ("原因说明", 30),
    *[
        (f"候选{i} {what}", w)
        for i in (1, 2, 3)
        for what, w in (("单号", 20), ("得分", 7), ("信号", 40))
    ],
    ("处理决定", 10),
    ("备注", 30),
]
UNMATCHED_COLUMNS = [*PARCEL_COLUMNS, ("原因代码", 14), ("原因说明", 30), ("证据", 8), ("备注", 30)]


@dataclass(frozen=True)
class LinkRow:
    parcel: UnlabelledParcel
    target: str
    order_id: str
    score: int
    signals: tuple[str, ...]
    runner_up: int | None
    link: str


@dataclass(frozen=True)
class SuggestionRow:
    parcel: UnlabelledParcel
    code: str
    reason: str
    top: tuple[Scored, ...]
    runner_up: int | None
    evidence: str


ReturnsSummary = book.RunFacts  # the returns workbook says nothing more about its run


def _parcel_cells(p: UnlabelledParcel) -> list[object]:
    items = "; ".join(f"{sku}×{qty}" for sku, qty in p.items)
    return [p.parcel_id, p.waybill, p.sender_name, p.sender_phone, items, p.received_at]


def write_returns_report(
    path: Path,
    summary: ReturnsSummary,
    linked: list[LinkRow],
    suggestions: list[SuggestionRow],
    unmatched: list[SuggestionRow],
) -> Path:
    wb = Workbook()
    c = summary.counts
    rows: list[book.SummaryRow] = [
        ("运行编号 run id", summary.run_id),
        ("场景 scenario", summary.scenario),
        ("开始 start", summary.started_at),
        ("结束 end", summary.ended_at),
        ("演练 dry run", "是（未做任何关联）" if summary.dry_run else "否"),
        ("已关联 linked" if not summary.dry_run else "将关联 would link", c.get("linked", 0)),
        ("待人工选择 suggestions", c.get("suggested", 0)),
        ("未匹配 unmatched", c.get("unmatched", 0)),
        ("系统异常 system exceptions", c.get("system_exception", 0)),
    ]
    book.summary_sheet(wb, rows)

    sheet = wb.create_sheet("Linked")
    book.header(sheet, LINKED_COLUMNS)
    for r, row in enumerate(linked, start=2):
        sheet.append(
            [
                *_parcel_cells(row.parcel),
                row.target,
                row.order_id,
                row.score,
                row.runner_up,
                " / ".join(row.signals),
                None,
            ]
        )
        sheet.cell(row=r, column=6).number_format = book.TIME_FORMAT
        book.link(sheet.cell(row=r, column=12), row.link, "打开")
    book.filters(sheet, LINKED_COLUMNS, len(linked))

    sheet = wb.create_sheet("Suggestions")
    book.header(sheet, SUGGESTION_COLUMNS)
    for r, suggestion in enumerate(suggestions, start=2):
        cells: list[object] = [
            *_parcel_cells(suggestion.parcel),
            suggestion.code,
            suggestion.reason,
        ]
        for i in range(3):
            if i < len(suggestion.top):
                s = suggestion.top[i]
                cells += [s.candidate.target, s.score, " / ".join(s.signals)]
            else:
                cells += [None, None, None]
        sheet.append([*cells, None, None])
        sheet.cell(row=r, column=6).number_format = book.TIME_FORMAT
    book.decision_column(sheet, len(SUGGESTION_COLUMNS) - 1, DECISIONS, len(suggestions))
    book.filters(sheet, SUGGESTION_COLUMNS, len(suggestions))

    sheet = wb.create_sheet("Unmatched")
    book.header(sheet, UNMATCHED_COLUMNS)
    for r, left in enumerate(unmatched, start=2):
        sheet.append([*_parcel_cells(left.parcel), left.code, left.reason, None, None])
        sheet.cell(row=r, column=6).number_format = book.TIME_FORMAT
        if left.evidence:
            book.link(sheet.cell(row=r, column=9), left.evidence, "截图")
    book.filters(sheet, UNMATCHED_COLUMNS, len(unmatched))
    return book.save(wb, path)
