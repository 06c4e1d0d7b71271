"""Which process works an item right now, across machines.

A session advisory lock per item on the cluster's PostgreSQL (class ``ITEMS``; the run
locks are class 0), taken on a connection of the holder's own: the server releases it when
that connection ends, so a worker that is SIGKILLed or drops off the network never leaves
an item held. Two deliveries of one item (a redelivery after a worker died, the
coordinator's resend) never work it at once: the second finds it held and leaves it.
"""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

ITEMS = 1  # the advisory lock class of work items


def item_lock(robot: str, key: str) -> int:
    """The item's lock number (a 32-bit hash: two items that share one only wait longer)."""
    n = zlib.crc32(f"{robot}\x00{key}".encode())
    return n - (1 << 32) if n >= 1 << 31 else n


class Holds:
    """Item holds on one connection (a worker thread's, or the coordinator's)."""

    def __init__(self, url: str) -> None:
        # who holds an item, as the coordinator names it: this machine and process
        me = f"robots {socket.gethostname()} pid {os.getpid()}"[:63]
        self.engine = sqlalchemy.create_engine(
            url, poolclass=NullPool, connect_args={"application_name": me}
        )
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _execute(self, query: str, **params: Any) -> Any:
        """``query`` on the holds' connection; one the server dropped is forgotten (a new
        one next time) and the error raised."""
        try:
            return self._connection().execute(sqlalchemy.text(query), params)
        except OperationalError:
            self._conn = None
            raise

    @contextmanager
    def hold(self, robot: str, key: str) -> Iterator[bool]:
        """True (and held for the block) when no other process holds the item."""
        lock = item_lock(robot, key)
        got = bool(self._execute("SELECT pg_try_advisory_lock(:c, :k)", c=ITEMS, k=lock).scalar())
        conn = self._conn  # the session that holds it
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(
                        sqlalchemy.text("SELECT pg_advisory_unlock(:c, :k)"),
                        {"c": ITEMS, "k": lock},
                    )
                except OperationalError:
                    self._conn = None  # the server ended the session: the lock went with it

    def holders(self, robot: str, keys: Sequence[str]) -> dict[str, str]:
        """Who holds each of ``keys`` that another session holds: its application name (a
        worker's machine and process), address and server pid."""
        wanted = {item_lock(robot, key) & 0xFFFFFFFF: key for key in keys}  # objid: unsigned
        rows = self._execute(  # objsubid 2: a lock taken with two keys, (ITEMS, item_lock)
            "SELECT l.objid, a.application_name, a.client_addr, a.pid "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = :c AND l.objsubid = 2 "
            "AND l.granted AND l.pid <> pg_backend_pid() AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            c=ITEMS,
        ).all()
        return {
            wanted[int(objid)]: f"{name or '?'} at {addr or 'this host'} (session {pid})"
            for objid, name, addr, pid in rows
            if int(objid) in wanted
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()
