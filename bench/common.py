"""What the benchmarks share: a free port and a fresh copy of a seeded shop, served."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Shop:
    """A fresh copy of the seeded shop, served on its own port."""

    def __init__(self, seeded: Path, into: Path) -> None:
        shutil.copytree(seeded, into)
        self.data = into
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "robots",
                "sandbox",
                "serve",
                "--data",
                str(into),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                if httpx.get(self.url + "healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("sandbox did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
