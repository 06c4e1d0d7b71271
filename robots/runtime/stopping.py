"""A graceful stop: on SIGTERM, or Ctrl-C (SIGINT) at a terminal, a robot finishes (or
records) the item in hand and takes no more.

The signal handler only sets a flag; the robot's work loop reads it between items, so the
ledger is never left half-written. A second signal is treated the same way: killing harder
is SIGKILL's job, and the ledger copes with that too (items left *acting* are settled on the
next run). The run exits 143 after SIGTERM and 130 after Ctrl-C, as a shell reports them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from loguru import logger

STOPPED_EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a process ended by it
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT: Ctrl-C at a terminal


class StopRequest:
    """Whether someone asked this run to stop; shared by every worker of one run."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal = ""  # the first signal that asked (SIGTERM, SIGINT), if one did

    @property
    def exit_code(self) -> int:
        """What a run this request stopped exits with: 130 after Ctrl-C, else 143."""
        return INTERRUPTED_EXIT_CODE if self.signal == "SIGINT" else STOPPED_EXIT_CODE

    @property
    def how(self) -> str:
        """How the stop was asked for, as a person reads it."""
        return {"SIGINT": "Ctrl-C (SIGINT)", "SIGTERM": "SIGTERM"}.get(self.signal, "a request")

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
        """Turn the given signals (default SIGTERM and SIGINT) into a stop request while
        inside."""
        chosen = signals or (signal.SIGTERM, signal.SIGINT)
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach the main thread only; the caller stops us another way
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            self.signal = self.signal or name
            self.request(f"received {name}")

        previous = {s: signal.signal(s, handler) for s in chosen}
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
