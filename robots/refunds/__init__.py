"""The refunds robot: approve eligible refunds, hand every other one to a person."""

from __future__ import annotations

from functools import partial
from typing import Any

from robots.engine.spec import SYSTEM, RobotParts, RobotSpec, done_line


def _first_list(scenario: Any) -> dict[str, str]:
    """The list `robots scenario probe` reads: the first pending status's."""
    first, _ = scenario.list.lists(scenario.shop.pending_statuses)[0]
    return {"status": first} if first is not None else {}


def parts() -> RobotParts:
    from robots.engine.probe import probe_list_and_page
    from robots.refunds import fields, report, robot, scenario

    probe = partial(
        probe_list_and_page,
        list_kinds=fields.ROW_FIELDS,
        page_kinds=fields.FIELDS,
        key="refund_id",
        list_values=_first_list,
        what="refund page",
    )
    return RobotParts(scenario, robot.RefundsRobot, report, probe)


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
