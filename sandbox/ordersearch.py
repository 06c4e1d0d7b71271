"""The shop's order / after-sales search, as a seller's back office offers it.

One keyword ``q``: an order or after-sales number, a waybill (outbound or return; typed with
spaces, dashes, lower case or full width, it is read as the carrier prints it), a 4-digit
phone tail, or a buyer's name or nickname. Narrowed by ``sku`` (orders holding that SKU) and
``since`` (orders paid on or after that day). ``fuzzy`` also finds waybills one character
apart (a digit misread or typed twice) or with two neighbours swapped, as a person trying
near spellings would. Hits come
exact keys first, then near waybills, then by phone tail or name, newest order first; the
whole list is paged, ``PAGE_ROWS`` to a page, with the total.

The back office's ``/search`` and the warehouse terminal's 查找订单 both answer through
``find_orders``, so the two sides of the sandbox agree on the same data.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import OSA

PAGE_ROWS = 50
NEAR_KEY = 4  # one edit leaves the first or the last NEAR_KEY characters of a waybill intact

# indexes the search relies on (applied with the warehouse schema on every start)
INDEXES = f"""
CREATE INDEX IF NOT EXISTS order_lines_sid_head ON order_lines(substr(outbound_sid, 1, {NEAR_KEY}));
CREATE INDEX IF NOT EXISTS order_lines_sid_tail ON order_lines(substr(outbound_sid, -{NEAR_KEY}));
CREATE INDEX IF NOT EXISTS refunds_sid_head ON refunds(substr(return_sid, 1, {NEAR_KEY}));
CREATE INDEX IF NOT EXISTS refunds_sid_tail ON refunds(substr(return_sid, -{NEAR_KEY}));
CREATE INDEX IF NOT EXISTS buyers_name ON buyers(name);
CREATE INDEX IF NOT EXISTS order_lines_buyer ON order_lines(buyer_nick, paid_at);
CREATE INDEX IF NOT EXISTS order_lines_sku ON order_lines(sku, order_id);
"""


@dataclass(frozen=True)
class OrderQuery:
    q: str
    sku: str = ""
    since: str = ""  # YYYY-MM-DD
    fuzzy: bool = False
    page: int = 1


@dataclass(frozen=True)
class OrderHits:
    order_ids: list[str]  # this page's
    total: int
    page: int
    pages: int


def waybill_form(text: str) -> str:
    """A typed waybill as carriers print it: full width folded, upper case, only letters and
    digits ("sf 1234-5678 90" → "SF1234567890")."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(c for c in folded if c.isascii() and c.isalnum())


def find_orders(conn: sqlite3.Connection, query: OrderQuery) -> OrderHits:
    q = query.q.strip()
    found: dict[str, None] = {}
    if q:
        for order_id in _matching(conn, query, q):
            found.setdefault(order_id, None)
    ids = list(found)
    pages = max(1, -(-len(ids) // PAGE_ROWS))
    page = min(max(1, query.page), pages)
    return OrderHits(ids[(page - 1) * PAGE_ROWS : page * PAGE_ROWS], len(ids), page, pages)


def _matching(conn: sqlite3.Connection, query: OrderQuery, q: str) -> list[str]:
    narrow, args = "", []
    if query.sku:
        narrow += " AND l.order_id IN (SELECT order_id FROM order_lines WHERE sku = ?)"
        args.append(query.sku)
    if query.since:
        narrow += " AND l.paid_at >= ?"
        args.append(query.since)

    def ids(sql: str, *params: str) -> list[str]:
        return [
            r[0] for r in conn.execute(sql + narrow + " ORDER BY l.paid_at DESC", (*params, *args))
        ]

    out = ids("SELECT l.order_id FROM order_lines l WHERE l.order_id = ?", q)
    out += ids(
        "SELECT l.order_id FROM refunds r JOIN order_lines l USING (line_id) WHERE r.refund_id = ?",
        q,
    )
    waybill = waybill_form(q)
    if waybill:
        out += ids("SELECT l.order_id FROM order_lines l WHERE l.outbound_sid = ?", waybill)
        out += ids(
            "SELECT l.order_id FROM refunds r JOIN order_lines l USING (line_id) "
            "WHERE r.return_sid = ?",
            waybill,
        )
    if query.fuzzy and len(waybill) >= 2 * NEAR_KEY:
        head, tail = waybill[:NEAR_KEY], waybill[-NEAR_KEY:]
        near = [
            (sid, order_id)
            for sid, order_id in conn.execute(
                f"SELECT l.outbound_sid, l.order_id FROM order_lines l "
                f"WHERE (substr(l.outbound_sid, 1, {NEAR_KEY}) = ? "
                f"OR substr(l.outbound_sid, -{NEAR_KEY}) = ?){narrow} "
                f"UNION ALL SELECT r.return_sid, l.order_id FROM refunds r "
                f"JOIN order_lines l USING (line_id) "
                f"WHERE (substr(r.return_sid, 1, {NEAR_KEY}) = ? "
                f"OR substr(r.return_sid, -{NEAR_KEY}) = ?){narrow}",
                (head, tail, *args, head, tail, *args),
            )
        ]
        out += [
            order_id
            for sid, order_id in sorted(near)
            if OSA.distance(waybill, sid, score_cutoff=1) <= 1
        ]
    if re.fullmatch(r"\d{4}", q):
        out += ids(
            "SELECT l.order_id FROM buyers b JOIN order_lines l USING (buyer_nick) "
            "WHERE substr(b.phone, -4) = ?",
            q,
        )
    else:
        out += ids(
            "SELECT l.order_id FROM buyers b JOIN order_lines l USING (buyer_nick) "
            "WHERE (b.name = ? OR b.buyer_nick = ?)",
            q,
            q,
        )
    return out
