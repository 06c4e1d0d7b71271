"""The short workbook `robots apply` writes: what happened to each reviewed decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

from robots.reports import workbook as book

RESULTS_SHEET = "应用结果"
RESULT_COLUMNS = [
    ("行号 row", 8),
    ("退款编号", 20),
    ("处理决定", 10),
    ("复核人", 10),
    ("结果", 54),
    ("结果代码", 22),
    ("后台链接", 9),
]
DECISION_TEXT = {"approve": "同意", "hold": "暂缓"}
# result codes, with the plain-Chinese text ops staff read
RESULTS = {
    "APPLIED": "已按复核意见同意",
    "HELD": "已记录暂缓，未做操作",
    "ALREADY_DONE": "此前已处理，本次未重复操作",
    "CHANGED_SINCE_REVIEW": "复核后退款单已变化，未操作，请重新复核",
    "REFUSED_HARD_RULE": "未操作：退款单仍未通过不可豁免的规则",
    "HANDLED_ELSEWHERE": "退款单已在后台被他人处理",
    "FAILED": "系统异常，未能确认结果，下次运行会核实",
}


@dataclass(frozen=True)
class ApplyRow:
    row: int
    refund_id: str
    decision: str
    reviewer: str
    result: str  # a key of RESULTS
    message: str
    link: str


def write_apply_report(
    path: Path,
    *,
    source: Path,
    reviewed_run: str,
    run_id: str,
    started: datetime,
    rows: list[ApplyRow],
) -> Path:
    wb = Workbook()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.result] = counts.get(r.result, 0) + 1
    summary: list[book.SummaryRow | None] = [
        ("运行编号 run id", run_id),
        ("复核的工作簿 workbook", str(source)),
        ("复核的运行 reviewed run", reviewed_run),
        ("开始 start", started),
        None,
        ("各结果笔数 results", book.SECTION),
        *((f"{RESULTS[code]} {code}", counts.get(code, 0)) for code in RESULTS),
    ]
    book.summary_sheet(wb, summary, widths=(26, 60))

    res = wb.create_sheet(RESULTS_SHEET)
    book.header(res, RESULT_COLUMNS)
    for i, r in enumerate(rows, start=2):
        decision = DECISION_TEXT.get(r.decision, r.decision)
        res.append([r.row, r.refund_id, decision, r.reviewer, r.message, r.result, None])
        book.link(res.cell(row=i, column=7), r.link, "打开")
        if r.result in ("FAILED", "CHANGED_SINCE_REVIEW", "REFUSED_HARD_RULE"):
            book.mark(res, i, len(RESULT_COLUMNS))
    book.wrap(res, 5)
    book.filters(res, RESULT_COLUMNS, len(rows))
    return book.save(wb, path)
