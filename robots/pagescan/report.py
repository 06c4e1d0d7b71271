"""The page scan's workbook: Summary, Price errors, Banned words, Failed pages.

Same conventions as the refunds report (see ``robots.reports.workbook``): one sheet per kind
of finding, most severe first, prices as numbers, a link to the product page, a stable rule
code beside plain Chinese, and a Decision column (fix / ignore / false_positive) with a Note.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from robots.ledger import ItemView
from robots.pagescan.model import PriceFinding, WordFinding
from robots.pagescan.prices import RULES, SEVERITY_ORDER
from robots.reports import workbook as book

DECISIONS = ("fix", "ignore", "false_positive")
SEVERITY_NAMES = {"critical": "严重", "high": "高", "medium": "中", "low": "低"}
PRICE_COLUMNS = [
    ("严重程度", 9),
    ("商品编号", 11),
    ("SKU", 22),
    ("页面", 8),
    ("页面价格", 11),
    ("参考价格", 11),
    ("规则代码", 22),
    ("规则说明", 44),
    ("处理决定", 12),
    ("备注", 30),
]
WORD_COLUMNS = [
    ("严重程度", 9),
    ("商品编号", 11),
    ("页面", 8),
    ("位置", 10),
    ("命中词", 14),
    ("原文", 16),
    ("上下文", 48),
    ("类别", 12),
    ("处理决定", 12),
    ("备注", 30),
]
FAILED_COLUMNS = [("页面", 50), ("状态", 20), ("原因", 60), ("证据", 10)]
FIELD_NAMES = {
    "title": "标题",
    "subtitle": "副标题",
    "image_alt": "图片说明",
    "detail": "详情",
    "sku_name": "SKU名称",
}


@dataclass(frozen=True)
class ScanSummary:
    run_id: str
    scan_id: str
    scenario: str
    shop: str
    started_at: datetime
    ended_at: datetime
    complete: bool
    pages_total: int
    pages_read: int
    pages_failed: int
    this_run: dict[str, int]


def _price_cells(f: PriceFinding) -> tuple[object, ...]:
    reference = float(f.reference) if f.reference is not None else None
    return (f.severity, f.product_id, f.sku, None, float(f.shown), reference, f.rule, f.note)


def _word_cells(w: WordFinding) -> tuple[object, ...]:
    where = FIELD_NAMES.get(w.field, w.field)
    return (w.severity, w.product_id, None, where, w.word, w.spelling, w.context, w.category)


def _findings(
    sheet: Worksheet,
    columns: list[tuple[str, int]],
    rows: Sequence[tuple[Sequence[object], str, str]],  # (cells before the decision, url, severity)
    *,
    link_column: int,
    money_columns: tuple[int, ...] = (),
) -> None:
    """One sheet of findings: most severe first, a link to the page, critical rows coloured,
    and the Decision column (9) with its dropdown."""
    book.header(sheet, columns)
    for r, (cells, url, severity) in enumerate(rows, start=2):
        sheet.append([*cells, None, None])
        book.link(sheet.cell(row=r, column=link_column), url, "打开")
        for c in money_columns:
            sheet.cell(row=r, column=c).number_format = book.MONEY_FORMAT
        if severity == "critical":
            book.mark(sheet, r, len(columns))
    book.decision_column(sheet, 9, DECISIONS, len(rows))
    book.filters(sheet, columns, len(rows))


def write_pagescan_report(
    path: Path,
    summary: ScanSummary,
    prices: list[PriceFinding],
    words: list[WordFinding],
    failed: list[ItemView],
    *,
    reports_dir: Path,
) -> Path:
    wb = Workbook()
    rows: list[book.SummaryRow] = [
        ("运行编号 run id", summary.run_id),
        ("扫描编号 scan id", summary.scan_id),
        ("店铺 shop", summary.shop),
        ("场景 scenario", summary.scenario),
        ("开始 start", summary.started_at),
        ("结束 end", summary.ended_at),
        ("扫描完成 scan complete", "是" if summary.complete else "否（下次运行继续）"),
        ("商品页 pages in scan", summary.pages_total),
        ("已检查 pages checked", summary.pages_read),
        ("本次检查 checked this run", summary.this_run.get("pages_read", 0)),
        ("失败页面 pages failed", summary.pages_failed),
        ("价格问题 price findings", len(prices)),
        ("违禁词 banned-word findings", len(words)),
    ]
    for level in SEVERITY_ORDER:
        n = sum(1 for f in prices if f.severity == level) + sum(
            1 for f in words if f.severity == level
        )
        rows.append((f"{SEVERITY_NAMES[level]} {level}", n))
    ws = book.summary_sheet(wb, rows)
    ws.append([])
    ws.append(["规则代码 rule", "说明"])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    for code, (_, text) in RULES.items():
        ws.append([code, text])

    ordered_prices = sorted(
        prices, key=lambda f: (SEVERITY_ORDER[f.severity], f.rule, f.product_id, f.sku)
    )
    ordered_words = sorted(
        words, key=lambda f: (SEVERITY_ORDER[f.severity], f.product_id, f.field, f.word)
    )
    # (sheet, columns, findings, their cells, the link's column, the money columns)
    sheets: list[
        tuple[str, Any, list[Any], Callable[[Any], tuple[object, ...]], int, tuple[int, ...]]
    ] = [
        ("Price errors", PRICE_COLUMNS, ordered_prices, _price_cells, 4, (5, 6)),
        ("Banned words", WORD_COLUMNS, ordered_words, _word_cells, 3, ()),
    ]
    for title, columns, found, cells, link_column, money_columns in sheets:
        _findings(
            wb.create_sheet(title),
            columns,
            [(cells(f), f.url, f.severity) for f in found],
            link_column=link_column,
            money_columns=money_columns,
        )

    fp = wb.create_sheet("Failed pages")
    book.header(fp, FAILED_COLUMNS)
    for r, item in enumerate(failed, start=2):
        url = str(item.details.get("url", item.item_key))
        fp.append([None, item.state.value, item.error_message or item.reason_code, None])
        book.link(fp.cell(row=r, column=1), url, url)
        if item.evidence:
            book.link(
                fp.cell(row=r, column=4), os.path.relpath(item.evidence[0], reports_dir), "截图"
            )
    book.filters(fp, FAILED_COLUMNS, len(failed))
    return book.save(wb, path)
