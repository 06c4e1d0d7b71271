"""`robots run pagescan`, the line it prints when done, and how its counts read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from robots.commands import (
    BaseUrlOpt,
    ClusterOpt,
    LimitOpt,
    ScenarioOpt,
    TargetOpt,
    VerboseOpt,
    WorkspaceOpt,
    run_robot,
)


def run(
    scenario: ScenarioOpt = None,
    limit: LimitOpt = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Check only this product URL or path (repeatable)."),
    ] = None,
    target: TargetOpt = None,
    base_url: BaseUrlOpt = None,
    price_list: Annotated[
        Path | None, typer.Option(help="Approved price list (.xlsx), overriding the scenario's.")
    ] = None,
    verbose: VerboseOpt = False,
    cluster: ClusterOpt = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Check every product page for price errors and banned words; never changes the shop."""
    if cluster and price_list is not None:  # the workers check prices: they read the scenario's
        from robots.errors import ConfigError

        raise ConfigError(
            "the cluster's workers check against the scenario's price list; set "
            "price_list.file in the scenario instead of --price-list",
            file="robots run pagescan",
            key="--price-list",
        )
    run_robot(
        "pagescan",
        workspace=workspace,
        target=target,
        scenario=scenario,
        base_url=base_url,
        verbose=verbose,
        limit=limit,
        cluster=cluster,
        scenario_options={"price_list": price_list},
        robot_options={"only": only},
    )


ON_CLUSTER = True  # `robots run pagescan --cluster`: the cluster's workers read the pages
TITLE = "商品页巡检"  # what ops read: run summaries, the open-exceptions workbook
COUNT_NAMES = {"pages_read": "pages", "pages_with_findings": "with findings"}
EXCEPTION_COUNTS = ("pages_with_findings", "page_unreadable", "system_exception")


def summary(result: Any, dry_run: bool) -> str:
    c = result.counts
    state = "complete" if result.details["complete"] else "not complete yet (the next run goes on)"
    return (
        f"[bold]scan {result.details['scan']}[/] {state}: "
        f"{c.get('pages_read', 0)} pages read this run, "
        f"{c.get('pages_with_findings', 0)} with findings, {c.get('system_exception', 0)} failed"
        + (f", {c['page_unreadable']} unreadable" if c.get("page_unreadable") else "")
    )
