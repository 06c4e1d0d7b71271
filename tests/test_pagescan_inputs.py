"""The page scan's inputs as ops keep them: bad files are refused with sheet, row and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_pagescan, write_pagescan_workspace
from report_checks import one_sheet

from robots.errors import ConfigError
from robots.pagescan.inputs import load_allowlist, load_banned_words, load_price_list
from robots.pagescan.scenario import PriceListSpec

HEADER = ["SKU", "款号", "品名", "核准价", "成本价", "最低价", "吊牌价", "尺码加价"]
GOOD = [
    ["TS1-BLK-M", "TS1", "T恤", 199, 70, 110, 299, "否"],
    ["TS1-BLK-L", "TS1", "T恤", "199.00", 70, 110, 299, "是"],
]


def workbook(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    return one_sheet(path, "价格表", header, rows)


def load(path: Path) -> dict:
    return load_price_list(PriceListSpec(file=path, sheet="价格表"), path)


def test_a_good_price_list_loads_with_numbers_as_decimals(tmp_path: Path) -> None:
    entries = load(workbook(tmp_path / "p.xlsx", GOOD))
    m, big = entries["TS1-BLK-M"], entries["TS1-BLK-L"]
    assert (str(m.approved), str(m.cost), str(m.floor), m.size_premium) == (
        "199.00",
        "70.00",
        "110.00",
        False,
    )
    assert (str(big.approved), big.size_premium, big.row) == ("199.00", True, 3)


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (GOOD, [h for h in HEADER if h != "成本价"], "row 1: missing column '成本价'"),
        (
            [GOOD[0], ["TS1-BLK-L", "TS1", "T恤", "¥199", 70, 110, 299, "否"]],
            HEADER,
            "row 3, column D (核准价): expected a number, got text '¥199'",
        ),
        (
            [GOOD[0], ["TS1-BLK-L", "TS1", "T恤", 199, "七十", 110, 299, "否"]],
            HEADER,
            "row 3, column E (成本价): expected a number, got text '七十'",
        ),
        (
            [GOOD[0], GOOD[0]],
            HEADER,
            "row 3, column A (SKU): duplicate SKU 'TS1-BLK-M' (first on row 2)",
        ),
        (
            [["TS1-BLK-M", "TS1", "T恤", None, 70, 110, 299, "否"]],
            HEADER,
            "row 2, column D (核准价): empty cell",
        ),
        (
            [["TS1-BLK-M", "TS1", "T恤", 199, 70, 110, 299, "maybe"]],
            HEADER,
            "row 2, column H (尺码加价): expected 是 or 否",
        ),
    ],
)
def test_a_malformed_price_list_names_sheet_row_and_column(
    tmp_path: Path, rows: list, header: list[str], message: str
) -> None:
    path = workbook(tmp_path / "bad.xlsx", rows, header)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: sheet '价格表', ")
    assert message in str(caught.value)


def test_a_file_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "prices.xlsx"
    path.write_text("SKU,price\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read the workbook"):
        load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("最好 极限词\n", "line 1: expected 3 or 4 columns, got 2"),
        ("# c\n最好 极限词 high\n顶级 极限词 severe\n", "line 3: unknown severity 'severe'"),
        (
            "最好 极限词 high\n最好 极限词 high\n",
            "line 2: '最好' is listed twice (first on line 1)",
        ),
        ("特供 平台 high TG\nTG 平台 high\n", "line 2: 'TG' is listed twice (first on line 1)"),
        ("*** 符号 high\n", "line 1: '***' has no letters or digits to match"),
        ("", "the banned-word list is empty"),
    ],
)
def test_a_malformed_word_list_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "words.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_banned_words(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_word_files_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_bytes("最好 极限词 high\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_banned_words(path)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_allowlist(path)


def test_the_cli_refuses_bad_inputs_with_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = workbook(tmp_path / "bad.xlsx", [GOOD[0], GOOD[0]])
    ws = write_pagescan_workspace(tmp_path / "ws", "http://127.0.0.1:9/", bad)
    result = run_pagescan(ws)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "ConfigError" in result.stderr and "duplicate SKU 'TS1-BLK-M'" in result.stderr

    words = tmp_path / "words.txt"
    words.write_text("最好 极限词 urgent\n", encoding="utf-8")
    good = workbook(tmp_path / "good.xlsx", GOOD)
    ws = write_pagescan_workspace(tmp_path / "ws2", "http://127.0.0.1:9/", good, banned=words)
    result = run_pagescan(ws)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{words}: line 1: unknown severity 'urgent'" in result.stderr.replace("\n", "")
