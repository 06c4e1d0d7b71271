"""One run per robot at a time, whoever starts it: cron, the scheduler or a person.

On one machine, an OS file lock (``flock``) under the ledger's folder: the kernel releases it
when the holder exits, even on SIGKILL, so a crashed run never leaves a stale lock behind. A
small JSON file beside it says who holds it, for the message the second run prints.

With a cluster ledger (PostgreSQL), the lock is the database's: a session advisory lock per
robot, held on its own connection, released by the server when that connection ends (the
holder's exit, a kill, a machine that drops off the network) — so runs on two machines never
overlap either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from robots.errors import RunLocked

if TYPE_CHECKING:
    from robots.config import Workspace


def is_locked(lock_dir: Path, robot: str) -> bool:
    """Whether a live process holds ``robot``'s lock (read from the owner file, so looking
    never competes with a run that is starting; a stale file of a killed run does not count)."""
    try:
        pid = int(json.loads((lock_dir / f"{robot}.owner.json").read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError):
        return False
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` of this machine is alive (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@contextmanager
def robot_lock(lock_dir: Path, robot: str, *, holder: str) -> Iterator[None]:
    """Hold ``robot``'s lock for the block; RunLocked at once if another run has it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_dir / f"{robot}.lock", timeout=0)
    owner = lock_dir / f"{robot}.owner.json"
    try:
        lock.acquire()
    except Timeout:
        try:
            who = json.loads(owner.read_text(encoding="utf-8"))
            since = f" (pid {who['pid']}, {who['holder']}, since {who['since']})"
        except (OSError, ValueError, KeyError):
            since = ""
        raise RunLocked(robot, since) from None
    try:
        owner.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "holder": holder,
                    "since": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
                }
            ),
            encoding="utf-8",
        )
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


@contextmanager
def _connected(engine: Any) -> Iterator[Any]:
    """A connection of the cluster's ledger; one that cannot be made is one clear line."""
    from sqlalchemy.exc import OperationalError

    from robots.errors import LedgerUnavailable

    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise LedgerUnavailable.of(engine.url, exc) from None
    with conn:
        yield conn


def _advisory_key(robot: str) -> int:
    """The robot's advisory lock number (31 bits: ``classid`` 0, ``objid`` the key)."""
    import zlib

    return zlib.crc32(f"robots:run:{robot}".encode()) & 0x7FFFFFFF


@contextmanager
def cluster_lock(url: str, robot: str, *, holder: str) -> Iterator[None]:
    """Hold ``robot``'s advisory lock on the cluster's PostgreSQL for the block; RunLocked at
    once if a run anywhere has it. Who holds it is the lock's session's application name."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        url,
        poolclass=sqlalchemy.pool.NullPool,
        connect_args={"application_name": f"robots {robot} run, {holder}"[:63]},
    )
    try:
        with _connected(engine) as conn:
            key = _advisory_key(robot)
            got = conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            if not got.scalar():
                who = conn.execute(
                    sqlalchemy.text(
                        "SELECT a.application_name, a.client_addr, a.backend_start "
                        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = :k "
                        "AND l.granted AND l.database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"k": key},
                ).first()
                since = (
                    f" ({who[0]} from {who[1] or 'this host'}, since {who[2]:%F %T})"
                    if who is not None
                    else ""
                )
                raise RunLocked(robot, since, anywhere=True)
            conn.commit()  # the lock is the session's, not a transaction's
            try:
                yield
            finally:
                try:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except sqlalchemy.exc.DBAPIError:  # the server ended the session (a restart,
                    pass  # an outage): the lock went with it
    finally:
        engine.dispose()


def cluster_is_locked(url: str, robot: str) -> bool:
    """Whether a session anywhere holds ``robot``'s advisory lock in this ledger's database
    (looked up, never taken; another database on the same server is another workspace)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with _connected(engine) as conn:
            held = conn.execute(
                sqlalchemy.text(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
                    "AND objid = :k AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"k": _advisory_key(robot)},
            ).first()
            return held is not None
    finally:
        engine.dispose()


def run_lock(ws: Workspace, robot: str, *, holder: str) -> AbstractContextManager[None]:
    """The robot's run lock for this workspace: the cluster's when its ledger is shared."""
    url = ws.ledger_url
    if url.startswith("postgresql"):
        return cluster_lock(url, robot, holder=holder)
    return robot_lock(ws.lock_dir, robot, holder=holder)


def run_is_locked(ws: Workspace, robot: str) -> bool:
    url = ws.ledger_url
    if url.startswith("postgresql"):
        return cluster_is_locked(url, robot)
    return is_locked(ws.lock_dir, robot)
