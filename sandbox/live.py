"""Live-stream product listing (直播挂链), as a seller's live console shows it: the job of the
直播挂链 flow (``scenarios/demo-shop/flows/live-listing.toml``).

``/live/{session}`` lists the products added to a live session (``tr.live-item``, with
已选 N/M). ``/live/{session}/sku/{sku}`` is one SKU's card: its name and state (在售, 已下架,
or 不存在 for a code the shop does not know), whether it is in the session (已添加/未添加) and
how full the session is; its 添加到直播间 button opens a dialog whose 确认添加 adds it. A SKU
already in the session, a full session or an off-shelf SKU is refused with an error banner.
Every 确认添加 received is kept in ``live_posts`` with its answer, so a test can count how
often a SKU was pressed (a browser re-sends a form whose connection dropped, once).

A test can have a SKU taken off the shelf once its card has been shown a number of times
(``/_sandbox/live-off-after``): a person acting between a robot's decision and its press.

``seed_live`` writes the products (``live_truth.jsonl``: each SKU's state, and those already
in the session); the robots never read it.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.clock import shop_now
from sandbox.routing import Guard, Render, guarded

LIVE_TRUTH_NAME = "live_truth.jsonl"
SESSION = "LIVE-1"
STATES = {"on": "在售", "off": "已下架"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS live_products (
    sku    TEXT PRIMARY KEY,
    title  TEXT NOT NULL,
    state  TEXT NOT NULL,            -- 在售 | 已下架
    price  TEXT NOT NULL             -- 直播价, yuan
);
CREATE TABLE IF NOT EXISTS live_sessions (
    session_id  TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    capacity    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS live_adds (     -- the session's products
    add_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    slot        INTEGER              -- 讲解序号: where the host presents it (optional)
);
CREATE TABLE IF NOT EXISTS live_posts (    -- every 确认添加 the console received, refused or not
    post_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    at          TEXT NOT NULL,
    answer      TEXT NOT NULL
);
"""


def seed_live(
    conn: sqlite3.Connection, data_dir: Path, *, products: int, capacity: int, seed: int
) -> None:
    """``products`` SKUs (about one in eight off the shelf, one in ten already in the
    session) and session ``LIVE-1`` holding at most ``capacity``, with their truth."""
    r = random.Random(f"live-{seed}")
    conn.execute("INSERT INTO live_sessions VALUES (?, ?, ?)", (SESSION, "双12 专场", capacity))
    with (data_dir / LIVE_TRUTH_NAME).open("w", encoding="utf-8") as truth:
        for i in range(products):
            sku = f"LV-{i:04d}"  # the same codes whatever the seed: a list can be shipped
            state = "off" if r.random() < 0.125 else "on"
            listed = state == "on" and r.random() < 0.1
            price = f"{r.choice((19.9, 39.9, 59.9, 99.0, 129.0)):.2f}"
            conn.execute(
                "INSERT INTO live_products VALUES (?, ?, ?, ?)",
                (sku, f"直播款 {i:04d}", STATES[state], price),
            )
            if listed:
                conn.execute(
                    "INSERT INTO live_adds (session_id, sku, at, actor) VALUES (?, ?, ?, ?)",
                    (SESSION, sku, "2026-12-01 20:00", "person"),
                )
            row = {"sku": sku, "state": state, "listed": listed, "price": price}
            truth.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_live_truth(data_dir: Path) -> dict[str, dict[str, Any]]:
    with (data_dir / LIVE_TRUTH_NAME).open(encoding="utf-8") as f:
        return {row["sku"]: row for row in map(json.loads, f)}


def live_routes(
    conn: sqlite3.Connection,
    render: Render,
    login_required: Guard,
    checked_form: Callable[[Request], Awaitable[dict[str, str]]],
    off_after_renders: dict[str, int],
) -> list[Route]:
    def session_of(session_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM live_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return row

    def used(session_id: str) -> int:
        return int(
            conn.execute(
                "SELECT count(*) FROM live_adds WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
        )

    async def session_page(request: Request) -> Response:
        s = session_of(request.path_params["session_id"])
        if s is None:
            return render(request, "not_found.html", {}, 404)
        items = conn.execute(
            "SELECT a.sku, a.at, p.title FROM live_adds a LEFT JOIN live_products p USING (sku) "
            "WHERE a.session_id = ? ORDER BY a.add_id",
            (s["session_id"],),
        ).fetchall()
        return render(request, "live.html", {"s": s, "items": items, "used": len(items)})

    async def sku_page(request: Request) -> Response:
        s = session_of(request.path_params["session_id"])
        if s is None:
            return render(request, "not_found.html", {}, 404)
        sku = request.path_params["sku"]
        product = conn.execute("SELECT * FROM live_products WHERE sku = ?", (sku,)).fetchone()
        added = conn.execute(
            "SELECT count(*) FROM live_adds WHERE session_id = ? AND sku = ?",
            (s["session_id"], sku),
        ).fetchone()[0]
        context = {
            "s": s,
            "sku": sku,
            "p": product,
            "added": added > 0,
            "used": used(s["session_id"]),
            "flash": request.query_params.get("flash", ""),
            "error": request.query_params.get("error", ""),
        }
        answer = render(request, "live_sku.html", context)
        if sku in off_after_renders:  # the test control: taken down behind the robot's back
            off_after_renders[sku] -= 1
            if off_after_renders[sku] <= 0:
                del off_after_renders[sku]
                conn.execute("UPDATE live_products SET state = '已下架' WHERE sku = ?", (sku,))
        return answer

    async def add(request: Request) -> Response:
        s = session_of(request.path_params["session_id"])
        sku = request.path_params["sku"]
        try:
            form = await checked_form(request)
        except PermissionError:
            return Response("bad form token", status_code=403)
        if s is None:
            return render(request, "not_found.html", {}, 404)
        slot_text = form.get("slot", "").strip()
        session_id = s["session_id"]
        product = conn.execute("SELECT * FROM live_products WHERE sku = ?", (sku,)).fetchone()
        listed = conn.execute(
            "SELECT count(*) FROM live_adds WHERE session_id = ? AND sku = ?", (session_id, sku)
        ).fetchone()[0]
        if slot_text and not (slot_text.isdigit() and 1 <= int(slot_text) <= 999):
            answer = "error=讲解序号须为 1–999 的整数"
        elif product is None:
            answer = "error=商品不存在"
        elif product["state"] != "在售":
            answer = "error=商品已下架，不能添加"
        elif listed:
            answer = "error=该商品已在直播间"
        elif used(session_id) >= s["capacity"]:
            answer = "error=直播间商品已满"
        else:
            answer = "flash=已添加到直播间"
        at = shop_now().strftime("%Y-%m-%d %H:%M:%S")
        conn.execute("BEGIN IMMEDIATE")
        if answer.startswith("flash"):
            conn.execute(
                "INSERT INTO live_adds (session_id, sku, at, actor, slot) "
                "VALUES (?, ?, ?, 'robot', ?)",
                (session_id, sku, at, int(slot_text) if slot_text else None),
            )
        conn.execute(
            "INSERT INTO live_posts (session_id, sku, at, answer) VALUES (?, ?, ?, ?)",
            (session_id, sku, at, answer),
        )
        conn.execute("COMMIT")
        return RedirectResponse(f"/live/{session_id}/sku/{sku}?{answer}", status_code=303)

    return [
        Route("/live/{session_id}", guarded(login_required, session_page)),
        Route("/live/{session_id}/sku/{sku}", guarded(login_required, sku_page)),
        Route("/live/{session_id}/sku/{sku}/add", guarded(login_required, add), methods=["POST"]),
    ]
