"""A virtual X display for the warehouse terminal, the tests and the benchmarks.

Xvfb picks the display number itself (``-displayfd``) and holds its lock before it says
which: two programs starting displays at once never share one, and a display left behind by
another run is never mistaken for ours (a number chosen by looking for a free socket can be
taken between the look and the start, and then a test talks to someone else's server, which
goes away when that run ends).
"""

from __future__ import annotations

import os
import select
import subprocess
import time


class Xvfb:
    """A started Xvfb; ``display`` is its ``:N``."""

    def __init__(self, size: str = "1280x800x24", *, timeout: float = 20) -> None:
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_end), "-screen", "0", size, "-nolisten", "tcp"],
                pass_fds=(write_end,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(write_end)
        try:
            number = _read_line(read_end, timeout)
        finally:
            os.close(read_end)
        if not number.isdigit():
            self.stop()
            raise RuntimeError(f"Xvfb did not start (exit {self.process.returncode})")
        self.display = f":{number}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _read_line(fd: int, timeout: float) -> str:
    """What Xvfb writes to ``fd`` before ``timeout``: its display number and a newline, or
    nothing when it exits or hangs."""
    deadline = time.monotonic() + timeout
    got = b""
    while not got.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        chunk = os.read(fd, 64)
        if not chunk:
            break
        got += chunk
    return got.decode("ascii", "replace").strip()
