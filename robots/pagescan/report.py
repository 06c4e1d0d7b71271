"""The page scan's workbook: 汇总, 价格问题, 违禁词, 失败页面.

Same conventions as the refunds report (see ``robots.reports.workbook``): Chinese first, one
sheet per kind of finding, most severe first, prices as numbers, the product's title, a link
to the product page, stable rule codes beside plain Chinese, and a 处理决定 column (修改 /
忽略 / 误报) with a note. Price findings are one row per SKU listing every rule it breaks,
each with the reference price it was held to (成本价, 最低价, 核准价...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from robots.ledger import ItemView, Ledger, RunView, State
from robots.pagescan.model import PriceFinding, WordFinding
from robots.pagescan.prices import REFERENCE_NAMES, RULES, SEVERITY_ORDER
from robots.reports import workbook as book

DECISIONS = ("修改", "忽略", "误报")  # fix / ignore / false positive
SEVERITY_NAMES = {"critical": "严重", "high": "高", "medium": "中", "low": "低"}
PRICES, WORDS, FAILED = "价格问题", "违禁词", "失败页面"
QUEUE_PREFIX = "商品页"  # the open-exceptions queue's sheets: 商品页价格问题, …
ROBOT = "pagescan"
PRICE_COLUMNS = [
    ("严重程度", 12),
    ("商品编号", 11),
    ("商品标题", 26),
    ("SKU", 20),
    ("页面", 7),
    ("页面价格", 11),
    ("参考价格", 11),
    ("参考价", 12),
    ("问题（该SKU违反的全部规则）", 50),
    ("规则代码", 22),
    ("处理决定", 10),
    ("备注", 24),
]
WORD_COLUMNS = [
    ("严重程度", 12),
    ("商品编号", 11),
    ("商品标题", 26),
    ("页面", 7),
    ("位置", 10),
    ("命中词", 14),
    ("原文", 16),
    ("上下文", 44),
    ("类别", 12),
    ("处理决定", 10),
    ("备注", 24),
]
FAILED_COLUMNS = [("页面", 46), ("原因", 50), ("原因代码", 16), ("技术信息", 40), ("证据", 8)]
FAILED_REASONS = {
    "SYSTEM_ERROR": "页面打不开或加载失败（已多次重试），请手工打开核对",
    "UNREADABLE_FIELD": "页面内容无法读取，请核对场景中的选择器",
}
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
    status: str = "完成"


def severity_text(severity: str) -> str:
    return f"{SEVERITY_NAMES.get(severity, severity)} {severity}"


def price_finding(d: dict[str, Any]) -> PriceFinding:
    """A price finding as the ledger keeps it (money as strings) back as the dataclass."""
    return PriceFinding(
        **{
            **d,
            "shown": Decimal(d["shown"]),
            "reference": Decimal(d["reference"]) if d["reference"] is not None else None,
        }
    )


def scan_findings(
    items: Iterable[ItemView],
) -> tuple[list[PriceFinding], list[WordFinding], list[ItemView]]:
    """A scan's findings from its pages in the ledger: prices, words, and the pages it could
    not read."""
    prices: list[PriceFinding] = []
    words: list[WordFinding] = []
    failed: list[ItemView] = []
    for item in items:
        if item.state == State.DONE:
            prices += [price_finding(d) for d in item.details.get("prices", [])]
            words += [WordFinding(**d) for d in item.details.get("words", [])]
        elif item.state in (State.SYSTEM_EXCEPTION, State.BUSINESS_EXCEPTION):
            failed.append(item)
    return prices, words, failed


def _money(x: object) -> str:
    return f"¥{x:,.2f}" if x is not None else ""


def price_problem(f: PriceFinding) -> str:
    """One rule a SKU breaks, in Chinese, with the page's price and the reference it missed."""
    text = f.note or RULES.get(f.rule, ("", f.rule))[1]
    reference = (
        f"，{REFERENCE_NAMES.get(f.rule) or '参考价'} {_money(f.reference)}"
        if f.reference is not None
        else ""
    )
    return f"{text}：页面 {_money(f.shown)}{reference}"


@dataclass(frozen=True)
class SkuPrices:
    """Every price finding of one SKU on one page: one row, most severe rule first."""

    findings: tuple[PriceFinding, ...]

    @property
    def head(self) -> PriceFinding:
        return self.findings[0]

    def cells(self) -> tuple[object, ...]:
        h = self.head
        problems = "\n".join(price_problem(f) for f in self.findings)
        return (
            severity_text(h.severity),
            h.product_id,
            h.title,
            h.sku,
            None,
            float(h.shown),
            float(h.reference) if h.reference is not None else None,
            REFERENCE_NAMES.get(h.rule, ""),
            problems,
            ", ".join(f.rule for f in self.findings),
        )


def by_sku(prices: list[PriceFinding]) -> list[SkuPrices]:
    """One entry per (page, SKU): its findings most severe first, the entries likewise."""
    groups: dict[tuple[str, str], list[PriceFinding]] = {}
    for f in prices:
        groups.setdefault((f.url, f.sku), []).append(f)
    rows = [
        SkuPrices(tuple(sorted(g, key=lambda f: (SEVERITY_ORDER[f.severity], f.rule))))
        for g in groups.values()
    ]
    return sorted(
        rows, key=lambda r: (SEVERITY_ORDER[r.head.severity], r.head.product_id, r.head.sku)
    )


def _word_cells(w: WordFinding) -> tuple[object, ...]:
    where = FIELD_NAMES.get(w.field, w.field)
    return (
        severity_text(w.severity),
        w.product_id,
        w.title,
        None,
        where,
        w.word,
        w.spelling,
        w.context,
        w.category,
    )


def _findings(
    sheet: Worksheet,
    columns: list[tuple[str, int]],
    rows: Sequence[tuple[Sequence[object], str, str]],  # (cells before the decision, url, severity)
    *,
    link_column: int,
    money_columns: tuple[int, ...] = (),
    wrap: tuple[int, ...] = (),
) -> None:
    """One sheet of findings: most severe first, a link to the page, critical rows coloured,
    and the 处理决定 column (after the cells) with its dropdown."""
    book.header(sheet, columns)
    decision = len(columns) - 1
    for r, (cells, url, severity) in enumerate(rows, start=2):
        sheet.append([*cells, None, None])
        book.link(sheet.cell(row=r, column=link_column), url, "打开")
        for c in money_columns:
            sheet.cell(row=r, column=c).number_format = book.MONEY_FORMAT
        if severity == "critical":
            book.mark(sheet, r, len(columns))
    for c in wrap:
        book.wrap(sheet, c)
    book.decision_column(sheet, decision, DECISIONS, len(rows))
    book.filters(sheet, columns, len(rows))


def price_sheet(sheet: Worksheet, skus: list[SkuPrices]) -> None:
    _findings(
        sheet,
        PRICE_COLUMNS,
        [(r.cells(), r.head.url, r.head.severity) for r in skus],
        link_column=5,
        money_columns=(6, 7),
        wrap=(3, 9),
    )


def word_sheet(sheet: Worksheet, words: list[WordFinding]) -> None:
    ordered = sorted(
        words, key=lambda f: (SEVERITY_ORDER[f.severity], f.product_id, f.field, f.word)
    )
    _findings(
        sheet,
        WORD_COLUMNS,
        [(_word_cells(f), f.url, f.severity) for f in ordered],
        link_column=4,
        wrap=(3, 8),
    )


def failed_sheet(sheet: Worksheet, failed: list[ItemView]) -> None:
    """Pages the scan could not read: the reason in Chinese, the technical message beside."""
    book.header(sheet, FAILED_COLUMNS)
    for r, item in enumerate(failed, start=2):
        url = str(item.details.get("url", item.item_key))
        code = item.reason_code or "SYSTEM_ERROR"
        message = item.error_message or ""
        reason = (
            message if code == "UNREADABLE_FIELD" and message else FAILED_REASONS.get(code, code)
        )
        sheet.append([None, reason, code, message if reason != message else "", None])
        book.link(sheet.cell(row=r, column=1), url, url)
        if item.evidence:
            book.evidence_link(sheet.cell(row=r, column=5), item.evidence[0])
    book.wrap(sheet, 2)
    book.wrap(sheet, 4)
    book.filters(sheet, FAILED_COLUMNS, len(failed))


def write_pagescan_report(
    path: Path,
    summary: ScanSummary,
    prices: list[PriceFinding],
    words: list[WordFinding],
    failed: list[ItemView],
) -> Path:
    wb = Workbook()
    skus = by_sku(prices)
    rows: list[book.SummaryRow | None] = [
        *book.run_rows(summary, summary.status),
        ("扫描编号 scan id", summary.scan_id),
        ("店铺 shop", summary.shop),
        ("扫描完成 scan complete", "是" if summary.complete else "否（下次运行继续）"),
        ("商品页 pages in scan", summary.pages_total),
        ("已检查 pages checked", summary.pages_read),
        ("本次检查 checked this run", summary.this_run.get("pages_read", 0)),
        ("失败页面 pages failed", summary.pages_failed),
        ("有价格问题的SKU SKUs with price findings", len(skus)),
        ("违禁词 banned-word findings", len(words)),
        None,
        ("按严重程度 by severity（价格按SKU计）", book.SECTION),
    ]
    for level in SEVERITY_ORDER:
        n = sum(1 for r in skus if r.head.severity == level) + sum(
            1 for f in words if f.severity == level
        )
        rows.append((severity_text(level), n))
    rows += book.field_rows(summary.this_run)
    ws = book.summary_sheet(wb, rows)
    ws.append([])
    ws.append(["规则代码 rule", "说明"])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    for code, (_, text) in RULES.items():
        ws.append([code, text])
    price_sheet(wb.create_sheet(PRICES), skus)
    word_sheet(wb.create_sheet(WORDS), words)
    failed_sheet(wb.create_sheet(FAILED), failed)
    return book.save(wb, path)


def latest_scans(ledger: Ledger) -> list[RunView]:
    """Per scenario, the run of its newest finished full scan (or, before any finished, of its
    newest scan): what the shop's pages look like now, as far as the robot knows."""
    newest: dict[str, RunView] = {}
    finished: dict[str, RunView] = {}
    for run in ledger.runs(ROBOT, limit=500):
        if run.summary.get("partial") or not run.summary.get("scan"):
            continue
        newest.setdefault(run.scenario, run)
        if run.summary.get("complete"):
            finished.setdefault(run.scenario, run)
    return [finished.get(scenario, run) for scenario, run in newest.items()]


def queue_sheet(wb: Workbook, ledger: Ledger, *, now: datetime) -> dict[str, Any]:
    """The open-exceptions queue's page-scan sheets: the findings of each scenario's latest
    scan (a finding stays until a scan no longer sees it, or a person settles it in the
    console: ``review.open_findings``) and the pages it could not read."""
    from robots.pagescan.review import open_findings

    found = open_findings(ledger)
    skus = [o.finding for o in found if isinstance(o.finding, SkuPrices)]
    words = [o.finding for o in found if isinstance(o.finding, WordFinding)]
    failed = [o.finding for o in found if isinstance(o.finding, ItemView)]
    names = [QUEUE_PREFIX + PRICES, QUEUE_PREFIX + WORDS, QUEUE_PREFIX + FAILED]
    price_sheet(wb.create_sheet(names[0]), skus)
    word_sheet(wb.create_sheet(names[1]), words)
    failed_sheet(wb.create_sheet(names[2]), failed)
    return {"sheet": " / ".join(names), "open": len(skus) + len(words) + len(failed)}
