"""A person's decisions on the page scan's findings: 已修改 (fixed), 忽略 (ignore), 误报 (a
false positive).

A finding is named by its page and what it is about (``url|sku`` for a SKU's prices,
``url|field|word`` for a banned word) and fingerprinted by what the page showed (the rules
and prices; the spelling and the text around it). A decision is remembered in the ledger
with that fingerprint, so it holds only for the finding as the person saw it: a price that
changes, or other text around the word, is a new finding and comes back.

- 忽略 / 误报: the finding leaves the open queue (and the console's) while scans keep seeing
  it exactly so;
- 已修改: it leaves the queue until a scan that started after the decision: if that scan
  still sees it, it is back, marked as reported fixed (the page was not fixed after all).

Decisions come from the console as a decisions file (``{"robot": "pagescan", "rows":
[{"finding", "fingerprint", "decision", "reviewer", "note"}, …]}``) and are applied by
`robots apply`: each checked against the finding as the newest scan has it now (one that
changed since the person saw it is not decided: CHANGED_SINCE_REVIEW).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from robots.errors import InvalidReview
from robots.ledger import ItemView, Ledger, RunView
from robots.pagescan.model import WordFinding
from robots.pagescan.report import ROBOT, SkuPrices, by_sku, latest_scans, scan_findings
from robots.reports import workbook as book
from robots.reports.decisions import console_rows

REVIEWED = "reviewed|"  # the ledger's remembered values: a person's decision on a finding
DECISIONS = {"fixed": "已修改", "ignore": "忽略", "false_positive": "误报"}
RESULTS = {
    "RECORDED": "已记录",
    "CHANGED_SINCE_REVIEW": "复核后页面已变化，未记录，请重新查看",
    "GONE": "最新巡检已不再发现，无需处理",
}


def price_key(group: SkuPrices) -> tuple[str, str]:
    """(name, fingerprint) of a SKU's price findings on a page."""
    f = group.head
    shown = ",".join(sorted(f"{x.rule}:{x.shown}" for x in group.findings))
    return f"{f.url}|{f.sku}", shown


def word_key(w: WordFinding) -> tuple[str, str]:
    return f"{w.url}|{w.field}|{w.word}", f"{w.spelling}|{w.context}"


@dataclass(frozen=True)
class Open:
    """A finding still waiting for a person, with the scan that saw it."""

    run: RunView
    key: str
    fingerprint: str
    finding: SkuPrices | WordFinding | ItemView
    note: str = ""  # e.g. reported fixed, but the newest scan still sees it


def open_findings(ledger: Ledger) -> list[Open]:
    """Every finding of each scenario's newest scan that no decision has settled, and the
    pages that scan could not read."""
    seen: list[Open] = []
    for run in latest_scans(ledger):
        prices, words, failed = scan_findings(
            ledger.items(ROBOT, key_prefix=f"{run.summary['scan']}|")
        )
        for group in by_sku(prices):
            key, fp = price_key(group)
            seen.append(Open(run, key, fp, group))
        for w in words:
            key, fp = word_key(w)
            seen.append(Open(run, key, fp, w))
        seen += [Open(run, v.item_key, v.fingerprint, v) for v in failed]
    reviews = {
        k.removeprefix(REVIEWED): json.loads(v)
        for k, v in ledger.recall(ROBOT, [REVIEWED + o.key for o in seen]).items()
    }
    kept = []
    for o in seen:
        review = reviews.get(o.key)
        if review is None or review.get("fingerprint") != o.fingerprint:
            kept.append(o)
        elif review["decision"] == "fixed":
            decided = datetime.fromisoformat(review["at"])
            if o.run.started_at > decided:  # a scan after the fix still sees it
                kept.append(
                    Open(o.run, o.key, o.fingerprint, o.finding,
                         f"{review['reviewer']} 标记已修改，但之后的巡检仍发现")
                )  # fmt: skip
    return kept


@dataclass(frozen=True)
class FindingDecision:
    row: int
    finding: str
    fingerprint: str
    decision: str
    reviewer: str
    note: str


def read_finding_decisions(file: Path) -> list[FindingDecision]:
    """The decisions in ``file``; every problem named (``decision N, field``)."""
    problems, decided = [], []
    for n, cell in console_rows(file):
        if cell.get("decision") not in DECISIONS:
            problems.append(
                f"decision {n}, decision: unknown decision {cell.get('decision')!r} "
                f"(expected {', '.join(DECISIONS)})"
            )
        if not cell.get("reviewer"):
            problems.append(f"decision {n}, reviewer: a decision needs the reviewer's name")
        if not cell.get("finding"):
            problems.append(f"decision {n}, finding: which finding is missing")
        decided.append(
            FindingDecision(
                n, cell.get("finding", ""), cell.get("fingerprint", ""),
                cell.get("decision", ""), cell.get("reviewer", ""), cell.get("note", ""),
            )
        )  # fmt: skip
    if problems:
        raise InvalidReview(file, problems)
    return decided


def apply_finding_decisions(
    ledger: Ledger, decisions: list[FindingDecision], *, now: datetime, by_run: str
) -> list[tuple[FindingDecision, str]]:
    """Remember each decision on the finding as the newest scan has it; (decision, result)."""
    current = {o.key: o for o in open_findings(ledger)}
    done: list[tuple[FindingDecision, str]] = []
    for d in decisions:
        found = current.get(d.finding)
        if found is None:
            done.append((d, "GONE"))
            continue
        if found.fingerprint != d.fingerprint:
            done.append((d, "CHANGED_SINCE_REVIEW"))
            continue
        review: dict[str, Any] = {
            "decision": d.decision,
            "reviewer": d.reviewer,
            "note": d.note,
            "fingerprint": d.fingerprint,
            "at": now.isoformat(timespec="seconds"),
        }
        ledger.remember(
            ROBOT, {REVIEWED + d.finding: json.dumps(review, ensure_ascii=False)}, run_id=by_run
        )
        done.append((d, "RECORDED"))
    return done


def write_results(path: Path, done: list[tuple[FindingDecision, str]], *, source: Path) -> Path:
    wb = Workbook()
    book.summary_sheet(
        wb,
        [
            ("复核的决定 decisions", str(source)),
            None,
            ("各结果笔数 results", book.SECTION),
            *(
                (f"{text} {code}", sum(1 for _, c in done if c == code))
                for code, text in RESULTS.items()
            ),
        ],
        widths=(30, 60),
    )
    columns = [("行号 row", 8), ("问题", 60), ("处理决定", 10), ("复核人", 10), ("结果", 40),
               ("结果代码", 22)]  # fmt: skip
    sheet = wb.create_sheet("应用结果")
    book.header(sheet, columns)
    for d, code in done:
        sheet.append(
            [d.row, d.finding, DECISIONS.get(d.decision, d.decision), d.reviewer,
             RESULTS[code], code]
        )  # fmt: skip
    book.wrap(sheet, 2)
    return book.save(wb, path)
