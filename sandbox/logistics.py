"""Order logistics (物流跟踪): shipped orders still on their way and each one's tracking, as a
seller's back office shows them: the pages of the stalled-shipment check (``robots/stalled``,
the example robot ARCHITECTURE.md walks through).

``/shipments`` lists the open shipments (not signed for), ``PAGE_ROWS`` to a page with a
下一页 link; ``/shipments/{order_id}`` shows one: its state and newest tracking time beside
their labels, then every tracking event, newest first. A shipment is of one *kind*: moving
(its newest event at most ``FRESH_HOURS`` old), stalled (at least ``STALLED_HOURS`` old, a
gap either side of 3 days so a run minutes later agrees with the truth), delivered between
the list and its page (签收: its state says so), or returning to the sender (退回中, moving).
``shipments_truth.jsonl`` says which; the robots never read it.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.routing import Guard, Render, guarded, query_int

SHIPMENTS_TRUTH_NAME = "shipments_truth.jsonl"
PAGE_ROWS = 50
FRESH_HOURS, STALLED_HOURS = 66, 78
KINDS = {"moving": 0.6, "stalled": 0.2, "delivered": 0.12, "returning": 0.08}
PLACES = ("杭州转运中心", "上海分拨中心", "南京转运中心", "武汉分拨中心", "广州转运中心")

SCHEMA = """
CREATE TABLE IF NOT EXISTS shipments (
    order_id    TEXT PRIMARY KEY,
    company     TEXT NOT NULL,
    waybill     TEXT NOT NULL,
    shipped_at  TEXT NOT NULL,
    state       TEXT NOT NULL,          -- 运输中 | 派送中 | 已签收 | 退回中
    listed      INTEGER NOT NULL        -- shown on /shipments (a delivered one signed since)
);
CREATE TABLE IF NOT EXISTS tracking (
    order_id  TEXT NOT NULL REFERENCES shipments(order_id),
    at        TEXT NOT NULL,
    place     TEXT NOT NULL,
    text      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tracking_order ON tracking(order_id, at);
"""


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def seed_shipments(
    conn: sqlite3.Connection,
    data_dir: Path,
    *,
    shipments: int,
    seed: int,
    now: datetime,
    couriers: Mapping[str, Callable[[random.Random], str]],
) -> None:
    """``shipments`` open shipments with their tracking, and their truth file."""
    r = random.Random(f"shipments-{seed}")
    with (data_dir / SHIPMENTS_TRUTH_NAME).open("w", encoding="utf-8") as truth:
        for i in range(shipments):
            kind = r.choices(list(KINDS), weights=list(KINDS.values()))[0]
            hours = (
                r.uniform(STALLED_HOURS, 240) if kind == "stalled" else r.uniform(1, FRESH_HOURS)
            )
            last = now - timedelta(hours=hours)
            shipped = last - timedelta(hours=r.uniform(8, 96))
            company = r.choice(list(couriers))
            order_id = f"{shipped:%y%m%d}{seed % 100:02d}{i:07d}"
            events = [(shipped, PLACES[0], f"【{company}】已揽收")]
            steps = r.randint(1, 4)
            for n in range(1, steps + 1):
                at = shipped + (last - shipped) * n / steps
                place = r.choice(PLACES)
                events.append((at, place, f"运输中，已到达【{place}】"))
            state = {"delivered": "已签收", "returning": "退回中"}.get(kind, "运输中")
            if kind == "delivered":
                events[-1] = (events[-1][0], PLACES[-1], "已签收，签收人：本人")
            elif kind == "returning":
                events[-1] = (events[-1][0], PLACES[-1], "收件人拒收，退回中")
            conn.execute(
                "INSERT INTO shipments VALUES (?, ?, ?, ?, ?, 1)",
                (order_id, company, couriers[company](r), _fmt(shipped), state),
            )
            conn.executemany(
                "INSERT INTO tracking VALUES (?, ?, ?, ?)",
                [(order_id, _fmt(at), place, text) for at, place, text in events],
            )
            row = {"order_id": order_id, "kind": kind, "last_at": _fmt(events[-1][0])}
            truth.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_shipments_truth(data_dir: Path) -> dict[str, dict[str, Any]]:
    with (data_dir / SHIPMENTS_TRUTH_NAME).open(encoding="utf-8") as f:
        return {row["order_id"]: row for row in map(json.loads, f)}


def logistics_routes(
    conn: sqlite3.Connection, render: Render, login_required: Guard
) -> list[Route]:
    async def shipments(request: Request) -> Response:
        page = query_int(request, "page", 1)
        rows = conn.execute(
            "SELECT * FROM shipments WHERE listed = 1 ORDER BY shipped_at, order_id "
            "LIMIT ? OFFSET ?",
            (PAGE_ROWS + 1, (page - 1) * PAGE_ROWS),
        ).fetchall()
        more = f"/shipments?{urlencode({'page': page + 1})}" if len(rows) > PAGE_ROWS else ""
        return render(request, "shipments.html", {"rows": rows[:PAGE_ROWS], "next": more})

    async def shipment(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        row = conn.execute("SELECT * FROM shipments WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return render(request, "not_found.html", {}, 404)
        events = conn.execute(
            "SELECT * FROM tracking WHERE order_id = ? ORDER BY at DESC", (order_id,)
        ).fetchall()
        return render(request, "shipment.html", {"s": row, "events": events})

    return [
        Route("/shipments", guarded(login_required, shipments)),
        Route("/shipments/{order_id}", guarded(login_required, shipment)),
    ]
