"""The open-exceptions queue: one workbook with everything still waiting for a person.

Rewritten from the ledger after every real run (and by `robots report --open`): for each
robot whose package offers a ``queue_sheet``, its open items, whichever run handed them over.
Items the shop has since closed leave the ledger's open set when the robot's next run re-reads
them, and so leave the queue. `robots apply` accepts the refunds sheet as it accepts a run's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from robots.ledger import Ledger
from robots.reports import workbook as book

QUEUE_KEY = "队列 queue"  # `robots apply` knows the queue by this Summary key


@dataclass(frozen=True)
class QueueSheet:
    """One robot's part of the queue: its name, its Chinese title and the function that
    writes its sheets (``report.queue_sheet``, returning what the Summary says of them)."""

    robot: str
    title: str
    write: Callable[..., dict[str, Any]]


def write_queue(
    ledger: Ledger, path: Path, sheets: Sequence[QueueSheet], *, now: datetime
) -> tuple[Path, dict[str, Any]]:
    """Write the queue with each robot's ``sheets`` (``robots.registry.queue_sheets``);
    returns its path and the totals its Summary shows."""
    wb = Workbook()
    facts: dict[str, dict[str, Any]] = {}
    titles: dict[str, str] = {}
    for sheet in sheets:
        facts[sheet.robot] = sheet.write(wb, ledger, now=now)
        titles[sheet.robot] = sheet.title
    total = sum(f["open"] for f in facts.values())
    rows: list[book.SummaryRow | None] = [
        (QUEUE_KEY, "待处理队列 open exceptions（每次运行后从台账重写）"),
        ("更新时间 updated", now),
        ("待人工处理合计 open in all", total),
        ("  其中已超时 overdue", sum(f.get("overdue", 0) for f in facts.values())),
        ("  其中12小时内到期 due within 12 h", sum(f.get("due_soon", 0) for f in facts.values())),
        (
            "待复核金额 money awaiting review",
            sum((f.get("money", Decimal("0")) for f in facts.values()), start=Decimal("0")),
            book.MONEY_FORMAT,
        ),
        None,
        ("按机器人 by robot（见各工作表）", book.SECTION),
    ]
    for name, f in facts.items():
        rows.append((f"{titles[name]} {name}：{f['sheet']}", f["open"]))
    book.summary_sheet(wb, rows, widths=(30, 44))
    totals: dict[str, Any] = {
        "open": total,
        "overdue": sum(f.get("overdue", 0) for f in facts.values()),
        "due_soon": sum(f.get("due_soon", 0) for f in facts.values()),
        "money": sum((f.get("money", Decimal("0")) for f in facts.values()), start=Decimal("0")),
        "robots": {n: f["open"] for n, f in facts.items()},
    }
    return book.save(wb, path), totals
