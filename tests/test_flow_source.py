"""A flow's items from a workbook or CSV a person prepared: typed columns found by header;
a file with a bad row is refused whole, every problem named with sheet, row and column."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from robots.config import FieldSpec
from robots.engine.fields import FieldKind
from robots.errors import ConfigError
from robots.flow.scenario import FileColumn, kinds_of
from robots.flow.source import read_rows
from robots.runtime.clock import ShopClock

COLUMNS = {
    "sku": FileColumn(header="商品编码"),
    "qty": FileColumn(header="数量", type="int"),
    "price": FileColumn(header="直播价", type="money"),
    "note": FileColumn(header="备注", required=False),
}
SPECS: dict[str, FieldSpec] = {n: c.field_spec() for n, c in COLUMNS.items()}
HEADERS = {n: c.header for n, c in COLUMNS.items()}
KINDS: dict[str, FieldKind] = kinds_of(SPECS)


def workbook(path: Path, rows: list[list[object]], sheet: str = "商品") -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def read(path: Path, sheet: str | None = None) -> list[dict[str, object]]:
    return read_rows(path, sheet, SPECS, HEADERS, KINDS, ShopClock())


def test_a_good_workbook_reads_typed_rows_by_header(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "live.xlsx",
        [
            ["备注", "直播价", "商品编码", "数量"],  # columns in any order, found by header
            ["首发", 59.9, "TS-001-BLK", 2],
            [None, None, None, None],  # a blank row is left out
            [None, "129", "DR-002-WHT", "1"],
        ],
    )
    rows = read(path)
    assert rows == [
        {"sku": "TS-001-BLK", "qty": 2, "price": Decimal("59.90"), "note": "首发"},
        {"sku": "DR-002-WHT", "qty": 1, "price": Decimal("129.00"), "note": None},
    ]


def test_a_csv_reads_like_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "live.csv"
    path.write_text("商品编码,数量,直播价,备注\nTS-001-BLK,2,59.90,\n", encoding="utf-8-sig")
    assert read(path) == [{"sku": "TS-001-BLK", "qty": 2, "price": Decimal("59.90"), "note": None}]


def test_a_file_with_bad_rows_is_refused_whole_naming_sheet_row_and_column(
    tmp_path: Path,
) -> None:
    path = workbook(
        tmp_path / "live.xlsx",
        [
            ["商品编码", "数量", "直播价", "备注"],
            ["TS-001-BLK", 2, 59.9, ""],
            ["DR-002-WHT", "两个", 129, ""],
            ["", 1, "abc", ""],
        ],
    )
    with pytest.raises(ConfigError) as caught:
        read(path)
    text = str(caught.value)
    first = text.splitlines()[0]
    assert "live.xlsx" in first and "sheet 商品 row 3 column 数量 (B)" in first, first
    assert "'两个'" in first and "(and 2 more problems:)" in first
    assert "sheet 商品 row 4 column 商品编码 (A)" in text
    assert "sheet 商品 row 4 column 直播价 (C)" in text and "'abc'" in text


@pytest.mark.parametrize(
    ("rows", "sheet", "says"),
    [
        ([["商品编码", "数量"], ["TS-001", 1]], None, "has no column '直播价'"),
        ([["商品编码", "数量", "直播价"]], "别的表", "has no sheet '别的表'"),
        ([], None, "is empty"),
    ],
)
def test_a_file_that_is_not_the_list_is_one_line(
    tmp_path: Path, rows: list[list[object]], sheet: str | None, says: str
) -> None:
    path = workbook(tmp_path / "live.xlsx", rows)
    with pytest.raises(ConfigError) as caught:
        read(path, sheet)
    assert says in str(caught.value).splitlines()[0]


def test_a_file_that_is_not_a_workbook_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "live.xlsx"
    path.write_text("not a workbook", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read(path)
    assert "cannot open live.xlsx as a workbook" in str(caught.value)
    with pytest.raises(ConfigError, match="no file"):
        read(tmp_path / "gone.xlsx")
