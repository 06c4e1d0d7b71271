"""The page-scan robot: price errors and banned words across a storefront (DOMAIN.md §3-§4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robots.engine.spec import Option, RobotParts, RobotSpec


def parts() -> RobotParts:
    from robots.pagescan import report, robot, scenario

    return RobotParts(scenario, robot.PageScanRobot, report)


def _summary(result: Any, dry_run: bool) -> str:
    c = result.counts
    state = "complete" if result.details["complete"] else "not complete yet (the next run goes on)"
    return (
        f"[bold]scan {result.details['scan']}[/] {state}: "
        f"{c.get('pages_read', 0)} pages read this run, "
        f"{c.get('pages_with_findings', 0)} with findings, {c.get('system_exception', 0)} failed"
        + (f", {c['page_unreadable']} unreadable" if c.get("page_unreadable") else "")
    )


SPEC = RobotSpec(
    name="pagescan",
    title="商品页巡检",
    help="Check every product page for price errors and banned words; never changes the shop.",
    parts=parts,
    count_names={"pages_read": "pages", "pages_with_findings": "with findings"},
    exception_counts=("pages_with_findings", "page_unreadable", "system_exception"),
    summary=_summary,
    on_cluster=True,  # `robots run pagescan --cluster`: the cluster's workers read the pages
    dry_run=False,
    options=(
        Option(
            "--only",
            list[str] | None,
            "Check only this product URL or path (repeatable).",
            to="robot",
        ),
        Option(
            "--price-list",
            Path | None,
            "Approved price list (.xlsx), overriding the scenario's.",
            to="scenario",
            not_on_cluster="the cluster's workers check against the scenario's price list; "
            "set price_list.file in the scenario instead of --price-list",
        ),
    ),
)
