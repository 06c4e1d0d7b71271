"""Product operations in the back office (商品管理): the job of the 商品改价/上下架 flow
(``scenarios/demo-shop/flows/product-ops.toml``).

``/admin/skus`` lists the SKUs (``q``: those whose code begins so; 20 a page, ``rel=next``);
``/admin/skus/{sku}`` is one SKU of the storefront's catalogue as a merchandiser edits it:
its product, 售价 (the price the storefront shows), 成本价 and 状态 (在售 / 已下架), a 改价 form
(新售价 → 保存售价) and a 上架 / 下架 button. A price that is not a positive amount is refused
with an error banner; so is a state the SKU already has. Every form received is kept in
``merch_posts`` with its answer, so a test can count how often a SKU was changed.

A test can have a SKU's price changed once its page has been shown a number of times
(``/_sandbox/merch-price-after``): a person editing between a robot's decision and its press.

``write_review`` writes the demo's reviewed workbook (``price-review.xlsx``: SKU编码, 审核时售价,
新售价, 目标状态), as ops hand one over after a price review: mostly small changes, and the
kinds the flow must hand to a person (below cost, too large a change, a price changed since
the review).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.clock import shop_now
from sandbox.routing import Guard, Render, guarded, query_int

REVIEW_NAME = "price-review.xlsx"
PAGE_ROWS = 20
STATES = ("在售", "已下架")

SCHEMA = """
CREATE TABLE IF NOT EXISTS merch_posts (   -- every 改价 / 上下架 the back office received
    post_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    sku      TEXT NOT NULL,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,                -- price | state
    value    TEXT NOT NULL,                -- what was asked: the new price, or the state
    answer   TEXT NOT NULL
);
"""


def write_review(conn: sqlite3.Connection, path: Path, *, rows: int = 24) -> None:
    """The demo's reviewed workbook over the first ``rows`` SKUs: their price when
    reviewed, and a new price (or a target state) for each."""
    from openpyxl import Workbook

    skus = conn.execute(
        "SELECT s.sku, s.price, s.cost FROM skus s JOIN products p USING (product_id) "
        "ORDER BY p.position, s.position LIMIT ?",
        (rows,),
    ).fetchall()
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "改价审核"
    ws.append(["SKU编码", "审核时售价", "新售价", "目标状态", "审核人"])
    for i, (sku, price, cost) in enumerate(skus):
        seen, new, state = Decimal(price), None, None
        if i % 8 == 3:
            state = "下架"
        elif i % 8 == 5:  # below cost: a slip of a digit or a loss leader, a person decides
            new = (Decimal(cost) * Decimal("0.8")).quantize(Decimal("0.1"))
        elif i % 8 == 6:  # a change of more than 30 %
            new = (seen * Decimal("1.5")).quantize(Decimal("0.1"))
        elif i % 8 == 7:  # the price changed after the review: the row is stale
            seen = seen + 10
            new = seen - 5
        else:
            new = (seen * (Decimal("0.92") if i % 2 else Decimal("1.05"))).quantize(Decimal("0.1"))
        ws.append(
            [sku, float(seen), float(new) if new else None, state, "王审核"],
        )
    wb.save(path)


def merch_routes(
    conn: sqlite3.Connection,
    render: Render,
    login_required: Guard,
    checked_form: Callable[[Request], Awaitable[dict[str, str]]],
    price_after_renders: dict[str, tuple[int, str]],
) -> list[Route]:
    def sku_row(sku: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT s.*, p.title FROM skus s JOIN products p USING (product_id) WHERE s.sku = ?",
            (sku,),
        ).fetchone()
        return row

    async def sku_list(request: Request) -> Response:
        page = query_int(request, "page", 1)
        q = request.query_params.get("q", "").strip()
        rows = conn.execute(
            "SELECT s.*, p.title FROM skus s JOIN products p USING (product_id) "
            "WHERE s.sku LIKE ? ESCAPE '\\' ORDER BY p.position, s.position LIMIT ? OFFSET ?",
            (_like_prefix(q), PAGE_ROWS + 1, (page - 1) * PAGE_ROWS),
        ).fetchall()
        more = ""
        if len(rows) > PAGE_ROWS:
            more = f"/admin/skus?{urlencode({'q': q, 'page': page + 1})}"
        context = {"rows": rows[:PAGE_ROWS], "next": more, "q": q}
        return render(request, "merch_list.html", context)

    async def sku_page(request: Request) -> Response:
        sku = request.path_params["sku"]
        context = {
            "sku": sku,
            "s": sku_row(sku),
            "flash": request.query_params.get("flash", ""),
            "error": request.query_params.get("error", ""),
        }
        answer = render(request, "merch_sku.html", context)
        if sku in price_after_renders:  # the test control: edited behind the robot's back
            left, price = price_after_renders[sku]
            if left <= 1:
                del price_after_renders[sku]
                conn.execute("UPDATE skus SET price = ? WHERE sku = ?", (price, sku))
            else:
                price_after_renders[sku] = (left - 1, price)
        return answer

    def record(sku: str, kind: str, value: str, answer: str, change: Any = None) -> Response:
        at = shop_now().strftime("%Y-%m-%d %H:%M:%S")
        conn.execute("BEGIN IMMEDIATE")
        if change is not None:
            conn.execute(f"UPDATE skus SET {kind} = ? WHERE sku = ?", (change, sku))
        conn.execute(
            "INSERT INTO merch_posts (sku, at, kind, value, answer) VALUES (?, ?, ?, ?, ?)",
            (sku, at, kind, value, answer),
        )
        conn.execute("COMMIT")
        return RedirectResponse(f"/admin/skus/{sku}?{answer}", status_code=303)

    async def set_price(request: Request) -> Response:
        sku = request.path_params["sku"]
        try:
            form = await checked_form(request)
        except PermissionError:
            return Response("bad form token", status_code=403)
        text = form.get("price", "").strip().lstrip("¥")
        try:
            price = Decimal(text)
        except InvalidOperation:
            price = Decimal(0)
        if sku_row(sku) is None:
            return record(sku, "price", text, "error=商品不存在")
        if not price.is_finite() or price <= 0 or price != price.quantize(Decimal("0.01")):
            return record(sku, "price", text, "error=售价须为大于 0 的金额（最多两位小数）")
        return record(sku, "price", text, "flash=售价已更新", f"{price:.2f}")

    async def set_state(request: Request) -> Response:
        sku = request.path_params["sku"]
        try:
            form = await checked_form(request)
        except PermissionError:
            return Response("bad form token", status_code=403)
        state = form.get("state", "")
        s = sku_row(sku)
        if s is None:
            return record(sku, "state", state, "error=商品不存在")
        if state not in STATES:
            return record(sku, "state", state, "error=未知的商品状态")
        if s["state"] == state:
            return record(sku, "state", state, f"error=商品已是{state}")
        done = "已上架" if state == "在售" else "已下架"
        return record(sku, "state", state, f"flash=商品{done}", state)

    return [
        Route("/admin/skus", guarded(login_required, sku_list)),
        Route("/admin/skus/{sku}", guarded(login_required, sku_page)),
        Route("/admin/skus/{sku}/price", guarded(login_required, set_price), methods=["POST"]),
        Route("/admin/skus/{sku}/state", guarded(login_required, set_state), methods=["POST"]),
    ]


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
