"""The stalled-shipment check (物流停滞): hand every shipped order whose tracking has not moved
for ``stalled_after_hours`` to a person. Read-only: the example robot of ARCHITECTURE.md."""

from __future__ import annotations

from functools import partial

from robots.engine.spec import RobotParts, RobotSpec


def parts() -> RobotParts:
    from robots.engine.probe import probe_list_and_page
    from robots.stalled import report, robot, scenario

    probe = partial(
        probe_list_and_page, list_kinds=scenario.ROW, page_kinds=scenario.PAGE, key="order_id"
    )
    return RobotParts(scenario, robot.StalledRobot, report.REPORT, probe)


SPEC = RobotSpec(
    name="stalled",
    title="物流停滞",
    help="Hand shipped orders whose tracking has not moved for days to a person; read-only.",
    parts=parts,
    count_names={"handed_to_person": "stalled"},
    dry_run=False,
)
