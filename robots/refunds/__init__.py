"""The refunds robot: approve eligible refunds, hand every other one to a person."""

from __future__ import annotations

from typing import Any

from robots.engine.spec import SYSTEM, RobotParts, RobotSpec, done_line


def parts() -> RobotParts:
    from robots.refunds import probe, report, robot, scenario

    return RobotParts(scenario, robot.RefundsRobot, report, probe.probe)


COUNTS = {"approved": "approved", "handed_to_person": "to a person"}


def _summary(result: Any, dry_run: bool) -> str:
    money = f", ¥{result.details['money']:,.2f}{' would be' if dry_run else ''} approved"
    batched = result.counts.get("approved_in_batch", 0)
    money += f" ({batched} in batches)" if batched else ""
    return done_line(result, dry_run, [*COUNTS.items(), SYSTEM], money)


SPEC = RobotSpec(
    name="refunds",
    title="退款",
    help="Approve the eligible refunds; hand every other one to a person with the reason.",
    parts=parts,
    count_names=COUNTS,
    exception_counts=("handed_to_person", "system_exception"),
    summary=_summary,
    on_cluster=True,  # `robots run refunds --cluster`: the cluster's workers approve
)
