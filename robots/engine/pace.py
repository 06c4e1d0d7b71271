"""How many lanes (browser pages) a run works with: fixed, or chosen from what it observes.

A page spends an item partly waiting for the shop and partly computing (the robot, the
browser, the page's scripts). While the machine's cores have idle time, pages that wait
for the shop leave it unused, and another page turns it into items; once the cores are
busy, more pages only queue for them. ``Pace`` reads how busy the machine was (/proc/stat)
over each ``window`` of items, starting from twice the cores: below ``busy`` it scales the
pages up in proportion (at most doubling), above ``full`` with more pages than cores it takes
one away. On a local back office 4 pages beat 3 on 2 cores (bench/refunds.py); one 150 ms
away needs several times more. Without /proc the start value stays.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

AUTO = "auto"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine since boot; None without /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [float(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


@dataclass
class Pace:
    """The number of lanes: ``fixed``, or between 1 and ``most`` from how busy the cores are."""

    fixed: int | None = None
    most: int = 12
    start: int = 0  # 0: twice the cores (local shop, 2 cores: 3 pages 519/min, 4 pages 639)
    window: int = 12
    # below this share of the cores busy, more pages (at 0.80 a local shop settled at 543
    # decisions/min, at 0.90 and twice the cores to start at 667: bench/refunds.py)
    busy: float = 0.90
    full: float = 0.97  # above it, with more pages than cores, one fewer
    cores: int = field(default_factory=cores)
    target: int = 0
    _items: int = 0
    _mark: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.target = self.fixed or max(1, min(self.start or 2 * self.cores, self.most))

    @classmethod
    def of(cls, setting: int | str) -> Pace:
        return cls(fixed=None if setting == AUTO else int(setting))

    def observe(self) -> None:
        """One more item is finished."""
        if self.fixed is not None:
            return
        if self._mark is None:
            self._mark = cpu_times()
            return
        self._items += 1
        if self._items < self.window:
            return
        now = cpu_times()
        if now is None:
            return
        used = (now[0] - self._mark[0]) / max(now[1] - self._mark[1], 1e-9)
        new = self.target
        if used < self.busy:
            new = min(
                self.most, 2 * self.target, math.ceil(self.target * self.busy / max(used, 0.05))
            )
        elif used > self.full and self.target > self.cores:
            new = self.target - 1
        if new != self.target:
            logger.info("pages {} → {} (the cores were {:.0%} busy)", self.target, new, used)
        self.target, self._items, self._mark = new, 0, now


__all__ = ["AUTO", "Pace", "cores"]
