"""The returns robot: link unlabelled warehouse parcels (无名件) to their orders (DOMAIN.md §2)."""

from __future__ import annotations

from typing import Any

from robots.engine.spec import SYSTEM, RobotParts, RobotSpec, done_line


def parts() -> RobotParts:
    from robots.returns import report, robot, scenario

    return RobotParts(scenario, robot.ReturnsRobot, report)


def _summary(result: Any, dry_run: bool) -> str:
    linked = ("linked", "would be linked" if dry_run else "linked")
    return done_line(
        result,
        dry_run,
        [linked, ("suggested", "suggestions for a person"), ("unmatched", "unmatched"), SYSTEM],
    )


SPEC = RobotSpec(
    name="returns",
    title="无名件",
    help="Link unlabelled returned parcels to their orders through the warehouse terminal.",
    parts=parts,
    count_names={
        "linked": "linked",
        "suggested": "suggestions",
        "unmatched": "unmatched",
        "linked_elsewhere": "linked elsewhere",
    },
    exception_counts=("suggested", "unmatched", "linked_elsewhere", "system_exception"),
    summary=_summary,
    on_cluster=True,  # `robots run returns --cluster`: workers with the terminal link the parcels
)
