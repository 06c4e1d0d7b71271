"""The returns robot's searches for one parcel (robots/returns/lookup.py) and the sandbox back
office's search that answers them (sandbox/ordersearch.py): waybills as carriers print them,
one character apart, phone tail or name narrowed by SKU and day, every page, and a search
read only in part marked so."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from test_returns_matching import PARCEL as MATCHING_PARCEL
from test_returns_matching import SEARCH

from robots.returns.lookup import CandidateSearch, Found, Lookup
from robots.returns.matching import Candidate
from sandbox import db, ordersearch, warehouse
from sandbox.ordersearch import PAGE_ROWS, OrderQuery, find_orders

# the matching tests' parcel, its waybill as a courier prints it
PARCEL = replace(MATCHING_PARCEL, waybill="sf 1234 5678 90", courier="顺丰速运")


def candidate(order_id: str, waybill: str = "") -> Candidate:
    return Candidate(
        order_id, "", "王小明", "", "", "", (("TS1-BLK-M", 1),), return_waybill=waybill
    )


def test_lookups_in_the_order_a_person_makes_them() -> None:
    search = CandidateSearch(PARCEL, SEARCH)
    made = []
    for lookup in search.lookups():
        made.append(lookup)
        search.add(lookup, Found([]))
    since = "2025-11-20"  # lookback_days = 365 before the parcel arrived
    assert made == [
        Lookup("SF1234567890"),
        Lookup("sf 1234 5678 90"),
        Lookup("SF1234567890", fuzzy=True),  # nothing carries that waybill
        Lookup("5678", sku="TS1-BLK-M", since=since),
        Lookup("王小明", sku="TS1-BLK-M", since=since),
    ]
    assert [lk.path(SEARCH) for lk in made[2:4]] == [
        "/search?q=SF1234567890&fuzzy=1",
        f"/search?q=5678&sku=TS1-BLK-M&since={since}",
    ]
    assert search.complete


def test_no_fuzzy_search_once_the_waybill_hits_and_a_cut_search_is_remembered() -> None:
    search = CandidateSearch(replace(PARCEL, waybill="SF1234567890"), SEARCH)
    lookups = search.lookups()
    first = next(lookups)
    search.add(first, Found([candidate("TB1", "SF1234567890")]))
    rest = list(lookups)
    assert not any(lk.fuzzy for lk in rest)
    search.add(rest[0], Found([candidate("TB2"), candidate("TB1")], cut=True))
    assert list(search.candidates) == ["TB1", "TB2"] and search.cut == [rest[0]]
    assert not search.complete


def test_a_shop_that_cannot_narrow_or_fuzz_gets_plain_searches() -> None:
    plain = SEARCH.model_copy(update={"fuzzy_path": None, "narrow_path": None})
    made = [lk for lk in CandidateSearch(PARCEL, plain).lookups()]
    assert made == [
        Lookup("SF1234567890"),
        Lookup("sf 1234 5678 90"),
        Lookup("5678"),
        Lookup("王小明"),
    ]
    masked = replace(PARCEL, waybill="", sender_name="王*", sender_phone="")
    assert list(CandidateSearch(masked, plain).lookups()) == []


# -- the sandbox's search --------------------------------------------------------------------
def _shop(tmp_path: Path) -> sqlite3.Connection:
    conn = db.connect(tmp_path)
    db.create_schema(conn)
    conn.executescript(warehouse.SCHEMA)
    conn.executescript(ordersearch.INDEXES)
    conn.execute("INSERT INTO buyers VALUES ('tb_w', '王小明', '13812345678', '杭州', 0, 1, 0)")
    conn.execute("INSERT INTO buyers VALUES ('tb_l', '李四', '13900006888', '杭州', 0, 1, 0)")
    rows = []
    for n in range(120):  # 李四 has a lucky tail and many orders
        sku = "TS1-BLK-M" if n % 40 == 0 else f"X{n}"
        rows.append(
            (f"TB{n:03d}", f"TB{n:03d}-1", "tb_l", sku, "t", "c", 1, "9.90", "TRADE_FINISHED",
             f"2026-{1 + n // 12:02d}-{1 + n % 12:02d} 10:00:00", None, None, "顺丰速运",
             f"SF{700000000000 + n}", 0, 0)
        )  # fmt: skip
    rows.append(
        ("TB900", "TB900-1", "tb_w", "TS1-BLK-M", "t", "c", 1, "9.90", "TRADE_FINISHED",
         "2026-11-01 10:00:00", None, None, "顺丰速运", "SF1234567890", 0, 0)
    )  # fmt: skip
    conn.executemany(f"INSERT INTO order_lines VALUES ({','.join('?' * 16)})", rows)
    return conn


def ids(conn: sqlite3.Connection, **query: object) -> list[str]:
    hits = find_orders(conn, OrderQuery(**query))  # type: ignore[arg-type]
    return hits.order_ids


@pytest.mark.parametrize("typed", ["SF1234567890", "sf 1234-5678 90", "ＳＦ１２３４５６７８９０"])
def test_the_sandbox_finds_a_waybill_however_it_was_typed(tmp_path: Path, typed: str) -> None:
    assert ids(_shop(tmp_path), q=typed) == ["TB900"]


def test_the_sandbox_finds_waybills_one_character_apart_only_when_asked(tmp_path: Path) -> None:
    conn = _shop(tmp_path)
    for near in ("SF1234567891", "SF123456789", "SF12345678900", "SF1234667890"):
        assert ids(conn, q=near) == []
        assert ids(conn, q=near, fuzzy=True) == ["TB900"], near
    assert ids(conn, q="SF1234557891", fuzzy=True) == []  # two apart


def test_the_sandbox_pages_a_crowded_tail_and_narrows_it(tmp_path: Path) -> None:
    conn = _shop(tmp_path)
    first = find_orders(conn, OrderQuery("6888"))
    assert (first.total, first.pages, len(first.order_ids)) == (120, 3, PAGE_ROWS)
    every = [o for page in (1, 2, 3) for o in ids(conn, q="6888", page=page)]
    assert len(set(every)) == 120 and every[0] == "TB119"  # newest first, nothing twice
    assert ids(conn, q="6888", sku="TS1-BLK-M") == ["TB080", "TB040", "TB000"]
    assert ids(conn, q="6888", sku="TS1-BLK-M", since="2026-04-01") == ["TB080", "TB040"]
    assert ids(conn, q="李四", sku="TS1-BLK-M", since="2026-07-01") == ["TB080"]


@pytest.mark.parametrize(
    ("key", "path", "message"),
    [
        ("narrow_path", "/search?q={q}&since={since}", "must contain {sku}"),
        ("narrow_path", "/search?q={q}&sku={sku}&d={day}", "unknown placeholder {day}"),
        ("fuzzy_path", "/search?q={q}&sku={sku}", "unknown placeholder {sku}"),
        ("path", "/search?kw={keyword}", "must contain {q}"),
    ],
)
def test_search_templates_name_only_what_the_robot_fills_in(
    key: str, path: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        type(SEARCH).model_validate({**SEARCH.model_dump(), key: path})
