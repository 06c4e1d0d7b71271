"""`robots apply FILE.xlsx`: act on the decisions ops staff wrote into a refunds workbook."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robots.commands import BaseUrlOpt, TargetOpt, WorkspaceOpt, console
from robots.config import Workspace, load_refund_scenario, load_workspace
from robots.errors import ConfigError
from robots.ledger import Ledger
from robots.ops import execute_run


def _scenario(ws: Workspace, target: str | None, written_for: str) -> tuple[Path, str | None]:
    """The target named, else the one whose scenario wrote the workbook, else the default."""
    candidates = [t for t in ws.config.targets if t.robot == "refunds" and t.enabled]
    if target is not None:
        chosen = next((t for t in candidates if t.name == target), None)
        if chosen is None:
            raise ConfigError(
                f"no enabled refunds target named {target!r}", file=str(ws.file), key="targets"
            )
    else:
        same = [t for t in candidates if str(ws.path(t.scenario)) == written_for]
        chosen = (same or candidates)[0] if (same or candidates) else None
    if chosen is None:
        if written_for and Path(written_for).is_file():
            return Path(written_for), None
        raise ConfigError(
            "no refunds target to apply the workbook with; add a [[targets]] with robot = "
            '"refunds"',
            file=str(ws.file),
            key="targets",
        )
    return ws.path(chosen.scenario), str(chosen.base_url) if chosen.base_url else None


def apply(
    workbook: Annotated[Path, typer.Argument(help="A refunds workbook with decisions filled in.")],
    target: TargetOpt = None,
    base_url: BaseUrlOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every item.")] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Validate a reviewed workbook, then apply each approve decision exactly once."""
    from robots.refunds.apply import ApplyResult, ReviewedApprovals
    from robots.refunds.review import read_review

    ws = load_workspace(workspace)
    ledger = Ledger.at(ws.path(ws.config.paths.ledger))
    try:

        def run_is_known(run_id: str) -> bool:
            run = ledger.find_run(run_id)
            return run is not None and run.run_id == run_id and run.robot == "refunds"

        review = read_review(
            workbook.resolve(),
            run_is_known=run_is_known,
            item_is_known=lambda key: ledger.get("refunds", key) is not None,
        )
    finally:
        ledger.close()
    approve = sum(1 for r in review.rows if r.decision == "approve")
    console.print(
        f"{workbook}: run {review.run_id}, {len(review.rows)} decisions "
        f"({approve} approve, {len(review.rows) - approve} hold)"
    )
    scenario, target_url = _scenario(ws, target, review.scenario)
    loaded = load_refund_scenario(scenario, base_url=base_url or target_url)
    result = execute_run(
        ws,
        "refunds",
        target,
        lambda stop: ReviewedApprovals(
            ws,
            loaded,
            scenario,
            review=review,
            console=console,
            console_level="INFO" if verbose else "WARNING",
            stop=stop,
        ),
    )
    assert isinstance(result, ApplyResult)
    c = result.counts
    console.print(
        f"[bold]applied[/]: {c.get('applied', 0)} approved, {c.get('held', 0)} held, "
        f"{c.get('already_done', 0)} already done, {c.get('changed_since_review', 0)} changed "
        f"since the review, {c.get('handled_elsewhere', 0)} handled elsewhere, "
        f"{c.get('failed', 0)} failed"
    )
    console.print(f"result: {result.report}")
    console.print(f"logs:   {result.run_dir}")
    raise typer.Exit(result.exit_code)
