"""One run per robot at a time, whoever starts it: cron, the scheduler or a person.

An OS file lock (``flock``) under the ledger's folder: the kernel releases it when the holder
exits, even on SIGKILL, so a crashed run never leaves a stale lock behind. A small JSON file
beside it says who holds it, for the message the second run prints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from robots.errors import RunLocked


def is_locked(lock_dir: Path, robot: str) -> bool:
    """Whether a live process holds ``robot``'s lock (read from the owner file, so looking
    never competes with a run that is starting; a stale file of a killed run does not count)."""
    try:
        pid = int(json.loads((lock_dir / f"{robot}.owner.json").read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError):
        return False
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
        raise RunLocked(
            f"another {robot} run is in progress{since}; this one did not start. "
            "Runs of one robot never overlap; try again when it ends.",
            robot=robot,
        ) from None
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
