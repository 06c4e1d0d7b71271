"""The refunds robot: approve eligible refunds, hand every other one to a person."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from robots.engine.spec import SYSTEM, RobotSpec, done_line


def _scenario() -> ModuleType:
    from robots.refunds import scenario

    return scenario


def _robot() -> type:
    from robots.refunds.robot import RefundsRobot

    return RefundsRobot


def _report() -> ModuleType:
    from robots.refunds import report

    return report


def _probe() -> Any:
    from robots.refunds.probe import probe

    return probe


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
    scenario=_scenario,
    robot=_robot,
    report=_report,
    probe_part=_probe,
    count_names=COUNTS,
    exception_counts=("handed_to_person", "system_exception"),
    summary=_summary,
    on_cluster=True,  # `robots run refunds --cluster`: the cluster's workers approve
)
