"""How much CPU the CLI spends before it does anything: `robots --help` and `robots runs`.

    python bench/cli_start.py [--rounds 10]

Each command runs ``--rounds`` times in a child process; the CPU seconds (user + system, from
``getrusage`` of the children) are averaged. Baselines measured in the same run: a bare
interpreter (``python -c pass``) and the same interpreter importing every robot eagerly
(what `--help` cost before imports were made lazy). The goal: `robots --help` ≤ 0.3 CPU-s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_of(cmd: list[str], rounds: int) -> float:
    """Average CPU seconds (user + system) of ``cmd`` over ``rounds`` runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(rounds):
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used / rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "robots.toml").write_text(
            f'[[targets]]\nname = "t"\nrobot = "refunds"\n'
            f'scenario = "{ROOT / "scenarios/demo-shop/refunds.toml"}"\n',
            encoding="utf-8",
        )
        eager = (
            "import robots.refunds.robot, robots.pagescan.robot, robots.returns.robot, "
            "robots.refunds.apply, robots.alerts, robots.vault, robots.ops"
        )
        rows = [
            ("python -c pass (baseline)", [py, "-c", "pass"]),
            ("every robot imported (baseline)", [py, "-c", eager]),
            ("robots --help", [py, "-m", "robots", "--help"]),
            ("robots run refunds --help", [py, "-m", "robots", "run", "refunds", "--help"]),
            ("robots runs", [py, "-m", "robots", "runs", "-w", tmp]),
        ]
        figures = {name: cpu_of(cmd, rounds) for name, cmd in rows}
    print(f"CPU seconds per start (user + system), average of {rounds}; load {os.getloadavg()}")
    for name, seconds in figures.items():
        print(f"  {name:<34} {seconds:6.3f} s")
    help_s = figures["robots --help"]
    print("ratios")
    bare, eager_s = figures["python -c pass (baseline)"], figures["every robot imported (baseline)"]
    print(f"  --help / bare interpreter          {help_s / bare:.1f}x")
    print(f"  --help / every robot imported      {help_s / eager_s:.2f}x")
    print(f"  robots --help within 0.3 CPU-s:    {'yes' if help_s <= 0.3 else 'NO'}")


if __name__ == "__main__":
    main()
