"""Which robots there are: one line per robot. Each is a package under ``robots/`` laid out
as ``robots.engine.spec`` describes; nothing is imported until a part is used, so the
workspace config (which checks a target's ``robot``), the CLI and alerts ask freely.
Adding a robot: its package, and one line below.
"""

from __future__ import annotations

from robots.engine.spec import RobotSpec

ROBOTS: dict[str, str] = {
    "refunds": "robots.refunds",
    "pagescan": "robots.pagescan",
    "returns": "robots.returns",
}


def spec(name: str) -> RobotSpec:
    """The robot's spec; KeyError for a name not registered (config checks names first)."""
    return RobotSpec(name, ROBOTS[name])


def title(name: str) -> str:
    """A robot's Chinese name (its own name for one not registered)."""
    return spec(name).title if name in ROBOTS else name


def specs() -> list[RobotSpec]:
    return [spec(name) for name in ROBOTS]
