"""Back-office order / after-sales search and the parcel page (the returns robot's web side).

Search (``sandbox.ordersearch``) answers by order number, after-sales number, waybill
(outbound or return, one character apart with ``fuzzy=1``), phone tail (4 digits) or buyer
name, narrowed by SKU and date, paged with a 下一页 link; each result row carries its values in
``data-*`` attributes. The parcel page shows whether, and to what, a parcel is linked.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.ordersearch import OrderQuery, find_orders
from sandbox.routing import Guard, Render, query_int


def order_summary(conn: sqlite3.Connection, order_id: str) -> dict[str, Any]:
    lines = conn.execute(
        "SELECT l.*, b.name, b.phone, b.district FROM order_lines l JOIN buyers b "
        "USING (buyer_nick) WHERE l.order_id = ? ORDER BY l.line_id",
        (order_id,),
    ).fetchall()
    refunds = conn.execute(
        "SELECT r.* FROM refunds r JOIN order_lines l USING (line_id) WHERE l.order_id = ? "
        "ORDER BY r.refund_id",
        (order_id,),
    ).fetchall()
    first = lines[0]
    request = next((r for r in refunds if r["has_good_return"]), None)
    refunded = [r for r in refunds if r["status"] == "SUCCESS"]
    targets = [order_id, *(r["refund_id"] for r in refunds)]
    linked = conn.execute(
        f"SELECT count(*) FROM parcels WHERE linked_to IN ({','.join('?' * len(targets))})",
        targets,
    ).fetchone()[0]
    return {
        "order_id": order_id,
        "refund_id": request["refund_id"] if request else "",
        "buyer_name": first["name"],
        "buyer_nick": first["buyer_nick"],
        "phone": first["phone"],
        "district": first["district"],
        "lines": ";".join(f"{line['sku']}×{line['quantity']}" for line in lines),
        "refunded": ";".join(f"{r['sku']}×{r['quantity']}" for r in refunded),
        "outbound_waybill": first["outbound_sid"] or "",
        "return_waybill": (request["return_sid"] or "") if request else "",
        "refund_created_at": request["created_at"] if request else "",
        "signed_at": first["signed_at"] or "",
        "linked": int(linked > 0),
    }


def aftersales_routes(
    conn: sqlite3.Connection, render: Render, login_required: Guard
) -> list[Route]:
    async def search(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        params = request.query_params
        page = query_int(request, "page", 1)
        query = OrderQuery(
            q=params.get("q", ""),
            sku=params.get("sku", "").strip(),
            since=params.get("since", "").strip(),
            fuzzy=params.get("fuzzy", "") == "1",
            page=page,
        )
        hits = find_orders(conn, query)
        rows = [order_summary(conn, o) for o in hits.order_ids]
        more = (
            f"/search?{urlencode({**params, 'page': str(hits.page + 1)})}"
            if hits.page < hits.pages
            else ""
        )
        return render(
            request, "search.html", {"query": query, "hits": hits, "rows": rows, "next": more}
        )

    async def parcel(request: Request) -> Response:
        if redirect := login_required(request):
            return redirect
        row = conn.execute(
            "SELECT * FROM parcels WHERE parcel_id = ?", (request.path_params["parcel_id"],)
        ).fetchone()
        if row is None:
            return render(request, "not_found.html", {}, 404)
        items = "; ".join(f"{sku}×{qty}" for sku, qty in json.loads(row["items"]))
        return render(request, "parcel.html", {"p": row, "items": items})

    return [Route("/search", search), Route("/parcels/{parcel_id}", parcel)]
