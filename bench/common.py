"""What the benchmarks share: a free port and a fresh copy of a seeded shop, served."""

from __future__ import annotations

import os
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


def seeded_shop(tmp: Path, *, seed: int, password: str, **counts: int) -> Path:
    """A shop seeded in ``tmp/seeded`` for the account ``robot``: one refund unless
    ``counts`` asks for more, and the products, parcels and orders it names."""
    from sandbox.seed import seed_shop

    seeded = tmp / "seeded"
    refunds = counts.pop("refunds", 1)
    seed_shop(seeded, refunds=refunds, seed=seed, username="robot", password=password, **counts)
    return seeded


class Shop:
    """A fresh copy of the seeded shop, served on its own port."""

    def __init__(self, seeded: Path, into: Path, *, latency_ms: float = 0) -> None:
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
                "--latency-ms",
                str(latency_ms),
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

    def cpu_s(self) -> float:
        """CPU seconds the shop's server has used so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def uncommented(text: str, table: str) -> str:
    """A scenario's text with its commented-out ``[table]`` (and its sub-tables) switched on:
    the demo scenarios carry optional tables that way, ready to use."""
    lines, on = [], False
    for line in text.splitlines(keepends=True):
        header = line.startswith("# [")
        if header:
            on = line.startswith((f"# [{table}]", f"# [{table}."))
        elif not line.startswith("# "):
            on = False
        lines.append(line[2:] if on else line)
    out = "".join(lines)
    if f"\n[{table}]" not in out:
        raise ValueError(f"no commented-out [{table}] table in the scenario")
    return out
