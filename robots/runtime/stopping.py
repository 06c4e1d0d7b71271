"""A graceful stop: on SIGTERM a robot finishes (or records) the item in hand and takes no more.

The signal handler only sets a flag; the robot's work loop reads it between items, so the
ledger is never left half-written. A second SIGTERM is treated the same way: killing harder
is SIGKILL's job, and the ledger copes with that too (items left *acting* are settled on the
next run).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from loguru import logger

STOPPED_EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a process ended by it


class StopRequest:
    """Whether someone asked this run to stop; shared by every worker of one run."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, why: str = "asked to stop", *, console: bool = True) -> None:
        """``console=False``: the reason goes to the run's files only (the CLI says it)."""
        if not self._event.is_set():
            log = logger if console else logger.bind(file_only=True)
            log.warning("{}: finishing the item in hand, then stopping", why)
        self._event.set()

    @contextmanager
    def on_signals(self, *signals: signal.Signals) -> Iterator[StopRequest]:
        """Turn the given signals (default SIGTERM) into a stop request while inside."""
        chosen = signals or (signal.SIGTERM,)
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach the main thread only; the caller stops us another way
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request(f"received {signal.Signals(signum).name}")

        previous = {s: signal.signal(s, handler) for s in chosen}
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
