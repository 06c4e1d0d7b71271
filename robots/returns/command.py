"""`robots run returns`, the line it prints when done, and how its counts read."""

from __future__ import annotations

from typing import Any

from robots.commands import done_line, robot_command

run = robot_command(
    "returns", "Link unlabelled returned parcels to their orders through the warehouse terminal."
)
ON_CLUSTER = True  # `robots run returns --cluster`: workers with the terminal link the parcels
TITLE = "无名件"  # what ops read: run summaries, the open-exceptions workbook
COUNT_NAMES = {
    "linked": "linked",
    "suggested": "suggestions",
    "unmatched": "unmatched",
    "linked_elsewhere": "linked elsewhere",
}
EXCEPTION_COUNTS = ("suggested", "unmatched", "linked_elsewhere", "system_exception")
SYSTEM = ("system_exception", "system exceptions")


def summary(result: Any, dry_run: bool) -> str:
    linked = ("linked", "would be linked" if dry_run else "linked")
    return done_line(
        result,
        dry_run,
        [linked, ("suggested", "suggestions for a person"), ("unmatched", "unmatched"), SYSTEM],
    )
