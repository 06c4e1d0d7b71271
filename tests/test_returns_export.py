"""The terminal's export read back: a malformed one names sheet, row and column."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from report_checks import one_sheet

from robots.returns.export import MalformedExport, parse_items, read_export
from robots.returns.scenario import load_returns_scenario
from sandbox.terminal import EXPORT_HEADERS

SPEC = load_returns_scenario(
    Path(__file__).resolve().parent.parent / "scenarios" / "demo-shop" / "returns.toml"
).export
HEADER = EXPORT_HEADERS  # the sandbox terminal's export, as the scenario reads it
ROW = [
    "WH1",
    "SF1",
    "顺丰速运",
    "王*",
    "138****5678",
    "上海市徐汇区",
    "TS1-BLK-M×1; JN2-NAV-L×2",
    1.2,
    "2026-11-20 10:00:00",
    "",
]


def export(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    return one_sheet(path, "无名件", header, rows)


def test_a_good_export_reads_as_parcels(tmp_path: Path) -> None:
    (p,) = read_export(export(tmp_path / "e.xlsx", [ROW]), SPEC)
    assert (p.parcel_id, p.items, p.received_at) == (
        "WH1",
        (("TS1-BLK-M", 1), ("JN2-NAV-L", 2)),
        datetime(2026, 11, 20, 10, 0),
    )


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([ROW], [h for h in HEADER if h != "商品"], "row 1: missing column '商品'"),
        (
            [[*ROW[:6], "TS1-BLK-M", *ROW[7:]]],
            HEADER,
            "row 2, column G (商品): 'TS1-BLK-M' is not SKU×quantity",
        ),
        (
            [[*ROW[:8], "昨天", ""]],
            HEADER,
            "row 2, column I (到货时间): '昨天' is not a date and time",
        ),
        ([ROW, ROW], HEADER, "row 3, column A (包裹号): parcel WH1 repeated (first on row 2)"),
    ],
)
def test_a_malformed_export_is_refused(
    tmp_path: Path, rows: list, header: list[str], message: str
) -> None:
    with pytest.raises(MalformedExport) as caught:
        read_export(export(tmp_path / "e.xlsx", rows, header), SPEC)
    assert "sheet '无名件', " + message in str(caught.value)


def test_items() -> None:
    assert parse_items("A×1；B x 2") == (("A", 1), ("B", 2))
    with pytest.raises(ValueError):
        parse_items("A×0")
