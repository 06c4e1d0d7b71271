"""Which robots there are: each robot package's declared ``SPEC`` (``robots.engine.spec``),
one line per robot. A spec imports its robot's parts only when one is used, so the
workspace config (which checks a target's ``robot``), the CLI and alerts ask freely.
Adding a robot: its package with its ``SPEC``, and one line below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from robots import flow, pagescan, refunds, returns, stalled
from robots.engine.spec import RobotSpec

if TYPE_CHECKING:
    from robots.config import Workspace
    from robots.reports.queue import QueueSheet

ROBOTS: dict[str, RobotSpec] = {
    s.name: s
    for s in (
        refunds.SPEC,
        pagescan.SPEC,
        returns.SPEC,
        stalled.SPEC,
        flow.SPEC,
    )
}


def spec(name: str) -> RobotSpec:
    """The robot's spec; KeyError for a name not registered (config checks names first)."""
    return ROBOTS[name]


def title(name: str) -> str:
    """A robot's Chinese name (its own name for one not registered)."""
    return spec(name).title if name in ROBOTS else name


def load_workspace(root: Path) -> Workspace:
    """The workspace in ``root`` (robots.toml), its targets naming robots registered here:
    how every command loads one (``robots.config`` knows no robot)."""
    from robots.config import load_workspace as load

    return load(root, robots=ROBOTS)


def queue_sheets() -> list[QueueSheet]:
    """Every robot's part of the open-exceptions queue (its ``report.queue_sheet``)."""
    from robots.reports.queue import QueueSheet

    return [
        QueueSheet(s.name, s.title, sheet)
        for s in specs()
        if (sheet := s.report_part("queue_sheet")) is not None
    ]


def specs() -> list[RobotSpec]:
    return list(ROBOTS.values())
