"""`robots run refunds`, the line it prints when done, and how its counts read."""

from __future__ import annotations

from typing import Any

from robots.commands import done_line, robot_command

run = robot_command(
    "refunds", "Approve the eligible refunds; hand every other one to a person with the reason."
)
TITLE = "退款"  # what ops read: run summaries, the open-exceptions workbook
COUNT_NAMES = {"approved": "approved", "handed_to_person": "to a person"}
EXCEPTION_COUNTS = ("handed_to_person", "system_exception")
ON_CLUSTER = True  # `robots run refunds --cluster`: the cluster's workers approve
SYSTEM = ("system_exception", "system exceptions")


def summary(result: Any, dry_run: bool) -> str:
    money = f", ¥{result.details['money']:,.2f}{' would be' if dry_run else ''} approved"
    batched = result.counts.get("approved_in_batch", 0)
    money += f" ({batched} in batches)" if batched else ""
    return done_line(result, dry_run, [*COUNT_NAMES.items(), SYSTEM], money)
