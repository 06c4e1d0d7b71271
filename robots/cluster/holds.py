"""Which process works an item right now, across machines.

A session advisory lock per item on the cluster's PostgreSQL (class ``ITEMS``; the run
locks are class 0), taken on a connection of the holder's own: the server releases it when
that connection ends, so a worker that is SIGKILLed or drops off the network never leaves
an item held. Two deliveries of one item (a redelivery after a worker died, the
coordinator's resend) never work it at once: the second finds it held and leaves it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
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
        self.engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    @contextmanager
    def hold(self, robot: str, key: str) -> Iterator[bool]:
        """True (and held for the block) when no other process holds the item."""
        lock = item_lock(robot, key)
        try:
            conn = self._connection()
            got = bool(
                conn.execute(
                    sqlalchemy.text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": ITEMS, "k": lock}
                ).scalar()
            )
        except OperationalError:
            self._conn = None  # a connection the server dropped: a new one next time
            raise
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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()
