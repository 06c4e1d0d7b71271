"""`robots apply FILE.xlsx`: act on the decisions ops staff wrote into a refunds workbook."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from robots.commands import BaseUrlOpt, TargetOpt, WorkspaceOpt, console, scenario_for

if TYPE_CHECKING:
    from robots.config import Workspace


def _target_for(ws: Workspace, target: str | None, written_for: str) -> str | None:
    """The target named, else the refunds target whose scenario wrote the workbook."""
    if target is not None:
        return target
    same = [
        t.name
        for t in ws.config.targets
        if t.robot == "refunds" and t.enabled and str(ws.path(t.scenario)) == written_for
    ]
    return same[0] if same else None


def apply(
    workbook: Annotated[
        Path,
        typer.Argument(
            help="A refunds workbook (or the open-exceptions queue) with decisions filled in."
        ),
    ],
    target: TargetOpt = None,
    base_url: BaseUrlOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every item.")] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Validate a reviewed workbook, then apply each approve decision exactly once."""
    from robots.engine.run import RunOptions
    from robots.ledger import Ledger
    from robots.ops import execute_run
    from robots.refunds.apply import ReviewedApprovals
    from robots.refunds.review import read_review
    from robots.refunds.scenario import load_refund_scenario
    from robots.registry import load_workspace

    ws = load_workspace(workspace)
    robot = _robot_of(workbook)
    if robot == "returns":  # --target names a returns target here
        raise typer.Exit(_apply_parcels(ws, workbook, target, base_url, verbose))
    if robot == "pagescan":
        _apply_findings(ws, workbook)
        return
    ledger = Ledger.of(ws)
    try:

        def run_is_known(run_id: str) -> bool:
            run = ledger.find_run(run_id)
            return run is not None and run.run_id == run_id and run.robot == "refunds"

        def scenario_of(run_id: str) -> str:
            run = ledger.find_run(run_id)
            return run.scenario if run is not None else ""

        review = read_review(
            workbook.resolve(),
            run_is_known=run_is_known,
            item_is_known=lambda key: ledger.get("refunds", key) is not None,
            scenario_of=scenario_of,
        )
    finally:
        ledger.close()
    if review.queue and not review.rows:  # the open-exceptions workbook, parcels decided only
        from robots.returns.apply import has_parcel_decisions

        if has_parcel_decisions(workbook.resolve()):
            raise typer.Exit(_apply_parcels(ws, workbook, None, base_url, verbose))
    approve = sum(1 for r in review.rows if r.decision == "approve")
    console.print(
        f"{workbook}: {f'run {review.run_id}' if review.run_id else 'open-exceptions queue'}, "
        f"{len(review.rows)} decisions "
        f"({approve} approve, {len(review.rows) - approve} hold)"
    )
    target = _target_for(ws, target, review.scenario)
    written_by = Path(review.scenario)
    fallback = (  # no refunds target at all: the scenario that wrote the workbook
        written_by
        if target is None and ws.target("refunds") is None and written_by.is_file()
        else None
    )
    scenario, base_url = scenario_for(ws, "refunds", target, fallback, base_url)
    loaded = load_refund_scenario(scenario, base_url=base_url)
    result = execute_run(
        ws,
        "refunds",
        target,
        lambda stop: ReviewedApprovals(
            ws,
            loaded,
            scenario,
            review=review,
            options=RunOptions(console=console, verbose=verbose, stop=stop),
        ),
    )
    c = result.counts
    console.print(
        f"[bold]applied[/]: {c.get('applied', 0)} approved, {c.get('held', 0)} held, "
        f"{c.get('already_done', 0)} already done, {c.get('changed_since_review', 0)} changed "
        f"since the review, {c.get('refused_hard_rule', 0)} refused by a hard rule, "
        f"{c.get('handled_elsewhere', 0)} handled elsewhere, "
        f"{c.get('failed', 0)} failed"
    )
    console.print(f"result: {result.report}")
    console.print(f"logs:   {result.run_dir}")
    code = result.exit_code
    if review.queue:  # the open-exceptions workbook: its parcels' decisions too
        from robots.returns.apply import has_parcel_decisions

        if has_parcel_decisions(workbook.resolve()):
            code = max(code, _apply_parcels(ws, workbook, None, base_url, verbose))
    raise typer.Exit(code)


def _robot_of(file: Path) -> str:
    """Whose decisions a file holds: a console decisions file names its robot (refunds by
    default); a workbook with a returns suggestions sheet and no refunds sheet is returns'."""
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        import zipfile

        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        from robots.refunds.review import SHEETS
        from robots.returns.apply import WORKBOOK_SHEETS

        try:
            wb = openpyxl.load_workbook(file, read_only=True)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, InvalidFileException):
            return "refunds"  # read_review names what is wrong with the file
        names = set(wb.sheetnames)
        wb.close()
        if names & set(WORKBOOK_SHEETS) and not names & set(SHEETS):
            return "returns"
        return "refunds"
    if file.suffix.lower() != ".json":
        return "refunds"
    import json

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "refunds"  # read_review names what is wrong with it
    return str(data.get("robot") or "refunds") if isinstance(data, dict) else "refunds"


def _apply_parcels(
    ws: Workspace, file: Path, target: str | None, base_url: str | None, verbose: bool
) -> int:
    """Decisions on parcels (the console's, or a returns workbook's 处理决定): link each to
    the chosen candidate, or close it; the exit code."""
    from robots.engine.run import RunOptions
    from robots.ledger import Ledger
    from robots.ops import execute_run
    from robots.returns.apply import ReviewedLinks, read_parcel_decisions
    from robots.returns.scenario import load_returns_scenario

    ledger = Ledger.of(ws)
    try:
        decisions = read_parcel_decisions(
            file.resolve(), item=lambda key: ledger.get("returns", key)
        )
    finally:
        ledger.close()
    links = sum(1 for d in decisions.rows if d.decision == "link")
    console.print(
        f"{file}: {len(decisions.rows)} parcel decisions ({links} link, "
        f"{len(decisions.rows) - links} dismiss)"
    )
    scenario, base_url = scenario_for(ws, "returns", target, None, base_url)
    loaded = load_returns_scenario(scenario, base_url=base_url)
    result = execute_run(
        ws,
        "returns",
        target,
        lambda stop: ReviewedLinks(
            ws,
            loaded,
            scenario,
            decisions=decisions,
            options=RunOptions(console=console, verbose=verbose, stop=stop),
        ),
    )
    c = result.counts
    console.print(
        f"[bold]applied[/]: {c.get('linked', 0)} linked, {c.get('dismissed', 0)} not linked, "
        f"{c.get('already_done', 0)} already done, {c.get('linked_elsewhere', 0)} linked "
        f"elsewhere, {c.get('not_a_candidate', 0)} not a candidate, {c.get('failed', 0)} failed"
    )
    console.print(f"result: {result.report}")
    console.print(f"logs:   {result.run_dir}")
    return result.exit_code


def _apply_findings(ws: Workspace, file: Path) -> None:
    """The console's decisions on page findings (已修改 / 忽略 / 误报): remembered in the
    ledger against each finding as the newest scan has it; nothing is done in the shop."""
    from robots.ledger import Ledger, new_run_id
    from robots.pagescan.review import (
        apply_finding_decisions,
        read_finding_decisions,
        write_results,
    )
    from robots.runtime.clock import host_now

    decisions = read_finding_decisions(file.resolve())
    ledger = Ledger.of(ws)
    try:
        run_id = new_run_id("apply")
        done = apply_finding_decisions(ledger, decisions, now=host_now(), by_run=run_id)
    finally:
        ledger.close()
    report = write_results(
        ws.path(ws.config.paths.reports) / f"apply-{run_id}.xlsx", done, source=file
    )
    recorded = sum(1 for _, code in done if code == "RECORDED")
    console.print(
        f"[bold]applied[/]: {recorded} recorded, "
        f"{sum(1 for _, c in done if c == 'CHANGED_SINCE_REVIEW')} changed since the review, "
        f"{sum(1 for _, c in done if c == 'GONE')} no longer found"
    )
    console.print(f"result: {report}")
