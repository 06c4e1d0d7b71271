"""Synthetic unlabelled returns (无名件): orders, after-sales requests and the parcels that came
back without a reference, with the noise real ones have, and a hidden ground truth.

Each parcel is drawn from one *kind* (DOMAIN.md §2): the waybill the buyer typed into the
after-sales request; the same with a one-character typo; a refused delivery coming back under
the outbound waybill; a request without a waybill; two plausible orders of one buyer; and
parcels with no order at all. On top: masked phones, nicknames and surname-only names, and
partial SKU sets. The truth file says which order (and request) each parcel belongs to and
what a careful person would do with it; the robots never read it.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PARCELS_TRUTH_NAME = "parcels_truth.jsonl"


@dataclass(frozen=True)
class People:
    """What the buyers and their parcels are made of: couriers (name → a waybill drawn from a
    random generator), surnames and given-name characters, delivery districts."""

    couriers: dict[str, Callable[[random.Random], str]]
    surnames: str
    given: str
    districts: list[str]


SCHEMA = """
CREATE TABLE IF NOT EXISTS parcels (
    parcel_id     TEXT PRIMARY KEY,
    waybill       TEXT NOT NULL,
    courier       TEXT NOT NULL,
    sender_name   TEXT NOT NULL,
    sender_phone  TEXT NOT NULL,
    district      TEXT NOT NULL,
    items         TEXT NOT NULL,           -- JSON [[sku, quantity], ...]
    weight_kg     TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    linked_to     TEXT,                    -- refund id or order id
    linked_at     TEXT,
    linked_by     TEXT
);
CREATE INDEX IF NOT EXISTS parcels_open ON parcels(linked_to, received_at);
CREATE TABLE IF NOT EXISTS parcel_links (    -- every link the terminal made, for audits
    link_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    parcel_id  TEXT NOT NULL,
    target     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_lines_order ON order_lines(order_id);
CREATE INDEX IF NOT EXISTS order_lines_sid ON order_lines(outbound_sid);
CREATE INDEX IF NOT EXISTS refunds_return_sid ON refunds(return_sid);
CREATE INDEX IF NOT EXISTS buyers_phone ON buyers(substr(phone, -4));
"""

KINDS = [  # (kind, weight, what a careful person does)
    ("return_waybill", 0.55, "link"),
    ("waybill_typo", 0.10, "link"),
    ("refused_delivery", 0.10, "link"),
    ("request_without_waybill", 0.12, "link"),
    ("two_plausible_orders", 0.05, "suggest"),
    ("no_order", 0.08, "leave"),
]
TITLES = {"TS": "T恤", "DR": "连衣裙", "JN": "牛仔裤", "CT": "外套", "SH": "鞋"}
COLORS = ["BLK", "WHT", "NAV", "GRY", "KHA"]
SIZES = ["S", "M", "L", "XL"]


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


class _Maker:
    def __init__(
        self,
        seed: int,
        now: datetime,
        people: People,
    ) -> None:
        self.r = random.Random(seed * 104729 + 3)
        self.now = now
        self.couriers, self.surnames = people.couriers, people.surnames
        self.given, self.districts = people.given, people.districts
        self.seq = 0
        self.used_waybills: set[str] = set()
        self.nicks: set[str] = set()

    def next(self) -> int:
        self.seq += 1
        return self.seq

    def waybill(self, courier: str) -> str:
        w = self.couriers[courier](self.r)
        while w in self.used_waybills:
            w = self.couriers[courier](self.r)
        self.used_waybills.add(w)
        return w

    def sku(self) -> str:
        r = self.r
        return (
            f"{r.choice(list(TITLES))}{r.randint(4001, 4060)}-{r.choice(COLORS)}-{r.choice(SIZES)}"
        )

    def buyer(self) -> tuple[str, str, str, str]:
        r = self.r
        nick = f"rt_{r.randrange(16**8):08x}"
        while nick in self.nicks:
            nick = f"rt_{r.randrange(16**8):08x}"
        self.nicks.add(nick)
        name = r.choice(self.surnames) + "".join(
            r.choice(self.given) for _ in range(r.choice((1, 2)))
        )
        phone = f"1{r.choice('3578')}{r.randrange(10**9):09d}"
        return nick, name, phone, r.choice(self.districts)


def _typo(r: random.Random, w: str) -> str:
    i = r.randrange(len(w))
    pool = "0123456789" if w[i].isdigit() else "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return w[:i] + r.choice([c for c in pool if c != w[i]]) + w[i + 1 :]


def generate(
    seed: int,
    parcels: int,
    orders: int,
    now: datetime,
    people: People,
) -> tuple[dict[str, list[tuple[Any, ...]]], list[dict[str, Any]]]:
    """Rows per table (buyers, order_lines, refunds, parcels) and one truth row per parcel."""
    m = _Maker(seed, now, people)
    couriers = people.couriers
    r = m.r
    rows: dict[str, list[tuple[Any, ...]]] = {
        "buyers": [],
        "order_lines": [],
        "refunds": [],
        "parcels": [],
    }

    def order(
        buyer: tuple[str, str, str, str],
        lines: list[tuple[str, int]],
        *,
        signed: bool,
        shipped_days_ago: float,
    ) -> dict[str, Any]:
        n = m.next()
        order_id = f"TB{5100000000000000 + n * 17 + r.randrange(17)}"
        courier = r.choice(list(couriers))
        outbound = m.waybill(courier)
        shipped_at = now - timedelta(days=shipped_days_ago)
        signed_at = shipped_at + timedelta(days=r.uniform(1, 3)) if signed else None
        payments = []
        for i, (sku, qty) in enumerate(lines, start=1):
            price = Decimal(r.randint(59, 299))
            payments.append(str(price * qty))
            rows["order_lines"].append(
                (
                    order_id,
                    f"{order_id}-{i}",
                    buyer[0],
                    sku,
                    f"{TITLES[sku[:2]]} {sku}",
                    TITLES[sku[:2]],
                    qty,
                    str(price * qty),
                    "TRADE_FINISHED" if signed else "WAIT_BUYER_CONFIRM_GOODS",
                    _fmt(shipped_at - timedelta(hours=r.uniform(3, 40))),
                    _fmt(shipped_at),
                    signed_at and _fmt(signed_at),
                    courier,
                    outbound,
                    0,
                    0,
                )
            )
        return {
            "order_id": order_id,
            "lines": lines,
            "courier": courier,
            "outbound": outbound,
            "signed_at": signed_at,
            "shipped_at": shipped_at,
            "payments": payments,
        }

    def request(
        o: dict[str, Any],
        line_no: int,
        return_sid: str | None,
        courier: str | None,
        created: datetime,
    ) -> str:
        n = m.next()
        refund_id = f"RF{30261100000000 + n * 7 + r.randrange(7)}"
        sku, qty = o["lines"][line_no - 1]
        rows["refunds"].append(
            (
                refund_id,
                f"{o['order_id']}-{line_no}",
                sku,
                qty,
                o["payments"][line_no - 1],
                "REFUND",
                1,
                "BUYER_RETURNED_GOODS" if return_sid else "BUYER_RECEIVED",
                "WAIT_SELLER_CONFIRM_GOODS" if return_sid else "WAIT_BUYER_RETURN_GOODS",
                "七天无理由",
                "",
                0,
                courier if return_sid else None,
                return_sid,
                _fmt(created + timedelta(hours=6)) if return_sid else None,
                _fmt(created),
                _fmt(created + timedelta(days=10)),
                1,
                None,
            )
        )
        return refund_id

    def sender_name(b: tuple[str, str, str, str]) -> str:
        roll = r.random()
        if roll < 0.50:
            return b[1]
        if roll < 0.70:
            return b[1][0] + "*"
        if roll < 0.85:
            return b[1][0] + r.choice(("先生", "女士"))
        if roll < 0.95:
            return b[0]
        return ""

    def sender_phone(b: tuple[str, str, str, str]) -> str:
        roll = r.random()
        if roll < 0.85:
            return f"{b[2][:3]}****{b[2][-4:]}"
        return b[2] if roll < 0.90 else ""

    truth: list[dict[str, Any]] = []
    kinds = [k for k, _, _ in KINDS]
    weights = [w for _, w, _ in KINDS]
    expected_of = {k: e for k, _, e in KINDS}
    made_orders = 0
    for p in range(parcels):
        kind = r.choices(kinds, weights)[0]
        buyer = m.buyer()
        rows["buyers"].append((buyer[0], buyer[1], buyer[2], buyer[3], 0, r.randint(2, 20), 0))
        lines = [(m.sku(), r.choice((1, 1, 1, 2))) for _ in range(r.choice((1, 1, 2, 3)))]
        lines = list(dict(lines).items())
        received = now - timedelta(days=r.uniform(0, 20))
        target = order_id = ""
        courier = r.choice(list(couriers))
        waybill = m.waybill(courier)
        items = [lines[0]]
        if kind == "no_order":
            items = [(m.sku(), 1)]
        elif kind == "refused_delivery":
            o = order(buyer, lines, signed=False, shipped_days_ago=r.uniform(6, 25))
            made_orders += 1
            received = o["shipped_at"] + timedelta(days=r.uniform(4, 9))
            courier, waybill, items = o["courier"], o["outbound"], lines
            order_id = target = o["order_id"]
        else:
            created = received - timedelta(days=r.uniform(1, 8))
            o = order(
                buyer, lines, signed=True, shipped_days_ago=(now - created).days + r.uniform(3, 8)
            )
            made_orders += 1
            order_id = o["order_id"]
            typed = waybill if kind == "return_waybill" else None
            if kind == "waybill_typo":
                typed = waybill
                waybill = _typo(r, waybill)
            target = request(o, 1, typed, courier if typed else None, created)
            if kind == "two_plausible_orders":
                twin = order(
                    buyer,
                    lines,
                    signed=True,
                    shipped_days_ago=(now - created).days + r.uniform(3, 8),
                )
                made_orders += 1
                request(twin, 1, None, None, created + timedelta(hours=r.uniform(1, 30)))
        partial = kind != "refused_delivery" and r.random() < 0.15 and items[0][1] > 1
        if partial:
            items = [(items[0][0], 1)]  # a partial set: one of two came back
        rows["parcels"].append(
            (
                f"WH{20261100000 + p * 3 + r.randrange(3)}",
                waybill,
                courier,
                sender_name(buyer) if kind != "no_order" else r.choice(("李*", "张先生", "")),
                sender_phone(buyer)
                if kind != "no_order"
                else f"13{r.randrange(10)}****{r.randrange(10**4):04d}",
                buyer[3] if r.random() < 0.9 else r.choice(m.districts),
                json.dumps(items),
                f"{r.uniform(0.2, 2.5):.2f}",
                _fmt(received),
                "",
                None,
                None,
                None,
            )
        )
        # once linked (and so received), what the refunds robot should do with the request
        # the buyer sent a waybill for (WAIT_SELLER_CONFIRM_GOODS): confirm it, or hand it
        # to a person for these rules (the default policy: ¥300 cap)
        after_link: list[str] = []
        if kind in ("return_waybill", "waybill_typo"):
            paid = Decimal(o["payments"][0])
            after_link = [
                *(["OVER_AMOUNT_CAP"] if paid > 300 else []),
                *(["RETURN_MISMATCH"] if partial else []),
            ] or ["confirm_refund"]
        truth.append(
            {
                "parcel_id": rows["parcels"][-1][0],
                "kind": kind,
                "order_id": order_id,
                "target": target,
                "expected": expected_of[kind],
                "after_link": after_link,
            }
        )
    while made_orders < orders:  # the rest of the shop's open orders: nothing came back
        buyer = m.buyer()
        rows["buyers"].append((buyer[0], buyer[1], buyer[2], buyer[3], 0, r.randint(2, 20), 0))
        lines = list(dict((m.sku(), r.choice((1, 2))) for _ in range(r.choice((1, 2)))).items())
        o = order(buyer, lines, signed=True, shipped_days_ago=r.uniform(2, 30))
        made_orders += 1
        if r.random() < 0.3:
            w_courier = r.choice(list(couriers))
            request(o, 1, m.waybill(w_courier), w_courier, now - timedelta(days=r.uniform(0, 9)))
    return rows, truth


def seed_parcels(
    conn: sqlite3.Connection,
    data_dir: Path,
    *,
    parcels: int,
    orders: int,
    seed: int,
    now: datetime,
    people: People,
) -> None:
    """Insert the returns data (inside the caller's transaction) and write its ground truth."""
    rows, truth = generate(seed, parcels, orders, now, people)
    conn.executemany("INSERT INTO buyers VALUES (?,?,?,?,?,?,?)", rows["buyers"])
    conn.executemany(
        "INSERT INTO order_lines VALUES (" + ",".join("?" * 16) + ")", rows["order_lines"]
    )
    conn.executemany("INSERT INTO refunds VALUES (" + ",".join("?" * 19) + ")", rows["refunds"])
    conn.executemany("INSERT INTO parcels VALUES (" + ",".join("?" * 13) + ")", rows["parcels"])
    with (data_dir / PARCELS_TRUTH_NAME).open("w", encoding="utf-8") as f:
        for row in truth:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
