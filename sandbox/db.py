"""SQLite storage of the sandbox shop: schema, connections and the few writes pages make."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from pathlib import Path

DB_NAME = "shop.sqlite3"
GROUND_TRUTH_NAME = "ground_truth.jsonl"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    password_salt TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret   TEXT                    -- base32; set: the login asks for a one-time code
);
CREATE TABLE IF NOT EXISTS buyers (
    buyer_nick    TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    phone         TEXT NOT NULL,
    district      TEXT NOT NULL,
    blacklisted   INTEGER NOT NULL DEFAULT 0,
    orders_90d    INTEGER NOT NULL,
    refunds_90d   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id         TEXT NOT NULL,
    line_id          TEXT PRIMARY KEY,
    buyer_nick       TEXT NOT NULL REFERENCES buyers(buyer_nick),
    sku              TEXT NOT NULL,
    title            TEXT NOT NULL,
    category         TEXT NOT NULL,
    quantity         INTEGER NOT NULL,
    payment          TEXT NOT NULL,          -- paid amount of the line, 2 decimals
    order_status     TEXT NOT NULL,
    paid_at          TEXT NOT NULL,
    shipped_at       TEXT,
    signed_at        TEXT,
    outbound_company TEXT,
    outbound_sid     TEXT,
    has_gift         INTEGER NOT NULL DEFAULT 0,
    shared_discount  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refunds (
    refund_id       TEXT PRIMARY KEY,
    line_id         TEXT NOT NULL REFERENCES order_lines(line_id),
    sku             TEXT NOT NULL,
    quantity        INTEGER NOT NULL,
    refund_fee      TEXT NOT NULL,
    refund_type     TEXT NOT NULL,           -- REFUND | PRICE_PROTECTION | PRICE_DIFFERENCE
    has_good_return INTEGER NOT NULL,
    good_status     TEXT NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    intervention    INTEGER NOT NULL DEFAULT 0,
    return_company  TEXT,
    return_sid      TEXT,
    return_sent_at  TEXT,
    created_at      TEXT NOT NULL,
    deadline        TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    modified_at     TEXT  -- shop time of the last change; NULL: never changed since created
);
CREATE INDEX IF NOT EXISTS refunds_status ON refunds(status, created_at);
CREATE INDEX IF NOT EXISTS refunds_line ON refunds(line_id);
CREATE TABLE IF NOT EXISTS warehouse_receipts (
    receipt_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    waybill      TEXT NOT NULL,
    courier      TEXT NOT NULL,
    sku          TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    received_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_waybill ON warehouse_receipts(waybill);
CREATE TABLE IF NOT EXISTS audit_log (
    audit_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    refund_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    amount      TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_refund ON audit_log(refund_id);
"""


def connect(data_dir: Path) -> sqlite3.Connection:
    """Open the shop database; WAL so the server and test readers do not block each other."""
    conn = sqlite3.connect(data_dir / DB_NAME, timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def hash_password(password: str, salt: str) -> str:
    return hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**14, r=8, p=1).hex()


def add_user(
    conn: sqlite3.Connection,
    username: str,
    password: str,
    display_name: str,
    *,
    totp_secret: str | None = None,
) -> None:
    salt = secrets.token_hex(16)
    conn.execute(
        "INSERT OR REPLACE INTO users (username, display_name, password_salt, password_hash,"
        " totp_secret) VALUES (?, ?, ?, ?, ?)",
        (username, display_name, salt, hash_password(password, salt), totp_secret),
    )


def totp_secret(conn: sqlite3.Connection, username: str) -> str | None:
    row = conn.execute("SELECT totp_secret FROM users WHERE username = ?", (username,)).fetchone()
    return row["totp_secret"] if row else None


def check_password(conn: sqlite3.Connection, username: str, password: str) -> bool:
    row = conn.execute(
        "SELECT password_salt, password_hash FROM users WHERE username = ?", (username,)
    ).fetchone()
    if row is None:
        return False
    return secrets.compare_digest(
        hash_password(password, row["password_salt"]), row["password_hash"]
    )
