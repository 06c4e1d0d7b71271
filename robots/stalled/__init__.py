"""The stalled-shipment check (物流停滞): hand every shipped order whose tracking has not moved
for ``stalled_after_hours`` to a person. Read-only: the example robot of ARCHITECTURE.md."""

from __future__ import annotations

from robots.engine.spec import RobotParts, RobotSpec


def parts() -> RobotParts:
    from robots.stalled import report, robot, scenario

    return RobotParts(scenario, robot.StalledRobot, report.REPORT)


SPEC = RobotSpec(
    name="stalled",
    title="物流停滞",
    help="Hand shipped orders whose tracking has not moved for days to a person; read-only.",
    parts=parts,
    count_names={"handed_to_person": "stalled", "system_exception": "unread"},
    dry_run=False,
)
