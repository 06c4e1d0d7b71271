"""The `robots` command line. Catches ``RobotsError`` only: anything else is a bug."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from robots.commands import BaseUrlOpt, TargetOpt, WorkspaceOpt, console, scenario_for
from robots.config import load_workspace
from robots.errors import RobotsError
from robots.ops import execute_run

app = typer.Typer(
    help="Unattended RPA robots for e-commerce operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Run a robot once.", no_args_is_help=True)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(config_app, name="config")


def _subcommands() -> None:
    from robots.commands import apply, runs, scheduler, vault

    app.command("apply")(apply.apply)
    app.add_typer(vault.app, name="vault")
    app.add_typer(runs.app, name="runs")
    app.add_typer(scheduler.app, name="scheduler")


@run_app.command("refunds")
def run_refunds(
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file; default: the refunds target in robots.toml.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; report what would be done.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Work on at most N refunds.")] = None,
    target: TargetOpt = None,
    base_url: BaseUrlOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every item.")] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Approve the eligible refunds; hand every other one to a person with the reason."""
    from robots.config import load_refund_scenario
    from robots.refunds.robot import RefundsRobot, RunResult

    ws = load_workspace(workspace)
    scenario, base_url = scenario_for(ws, "refunds", target, scenario, base_url)
    loaded = load_refund_scenario(scenario, base_url=base_url)
    result = execute_run(
        ws,
        "refunds",
        target,
        lambda stop: RefundsRobot(
            ws,
            loaded,
            scenario,
            dry_run=dry_run,
            limit=limit,
            console=console,
            console_level="INFO" if verbose else "WARNING",
            stop=stop,
        ),
        dry_run=dry_run,
    )
    assert isinstance(result, RunResult)
    c = result.counts
    console.print(
        f"[bold]{'dry run ' if dry_run else ''}done[/]: {c.get('approved', 0)} approved, "
        f"{c.get('handed_to_person', 0)} to a person, {c.get('system_exception', 0)} system "
        f"exceptions, ¥{result.money_approved:,.2f}{' would be' if dry_run else ''} approved"
    )
    console.print(f"report: {result.report}")
    console.print(f"logs:   {result.run_dir}")
    raise typer.Exit(result.exit_code)


@run_app.command("pagescan")
def run_pagescan(
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario file; default: the pagescan target in robots.toml."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Read at most N pages now; the next run goes on.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Check only this product URL or path (repeatable)."),
    ] = None,
    target: TargetOpt = None,
    base_url: BaseUrlOpt = None,
    price_list: Annotated[
        Path | None, typer.Option(help="Approved price list (.xlsx), overriding the scenario's.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every page.")] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Check every product page for price errors and banned words; never changes the shop."""
    from robots.config import load_pagescan_scenario
    from robots.pagescan.robot import PageScanRobot, ScanResult

    ws = load_workspace(workspace)
    scenario, base_url = scenario_for(ws, "pagescan", target, scenario, base_url)
    loaded = load_pagescan_scenario(scenario, base_url=base_url, price_list=price_list)
    result = execute_run(
        ws,
        "pagescan",
        target,
        lambda stop: PageScanRobot(
            ws,
            loaded,
            scenario,
            limit=limit,
            only=only,
            console=console,
            console_level="INFO" if verbose else "WARNING",
            stop=stop,
        ),
    )
    assert isinstance(result, ScanResult)
    c = result.counts
    state = "complete" if result.complete else "not complete yet (the next run goes on)"
    console.print(
        f"[bold]scan {result.scan_id}[/] {state}: {c.get('pages_read', 0)} pages read this run, "
        f"{c.get('pages_with_findings', 0)} with findings, {c.get('system_exception', 0)} failed"
    )
    console.print(f"report: {result.report}")
    console.print(f"logs:   {result.run_dir}")
    raise typer.Exit(result.exit_code)


@run_app.command("returns")
def run_returns(
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file; default: the returns target in robots.toml.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Link nothing; report what would be linked.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Work on at most N parcels.")] = None,
    target: TargetOpt = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Back-office address, overriding the target's and the scenario's."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every parcel.")] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Link unlabelled returned parcels to their orders through the warehouse terminal."""
    from robots.config import load_returns_scenario
    from robots.returns.robot import ReturnsResult, ReturnsRobot

    ws = load_workspace(workspace)
    scenario, base_url = scenario_for(ws, "returns", target, scenario, base_url)
    loaded = load_returns_scenario(scenario, base_url=base_url)
    result = execute_run(
        ws,
        "returns",
        target,
        lambda stop: ReturnsRobot(
            ws,
            loaded,
            scenario,
            dry_run=dry_run,
            limit=limit,
            console=console,
            console_level="INFO" if verbose else "WARNING",
            stop=stop,
        ),
        dry_run=dry_run,
    )
    assert isinstance(result, ReturnsResult)
    c = result.counts
    console.print(
        f"[bold]{'dry run ' if dry_run else ''}done[/]: {c.get('linked', 0)} "
        f"{'would be ' if dry_run else ''}linked, {c.get('suggested', 0)} suggestions for a "
        f"person, {c.get('unmatched', 0)} unmatched, {c.get('system_exception', 0)} system "
        "exceptions"
    )
    console.print(f"report: {result.report}")
    console.print(f"logs:   {result.run_dir}")
    raise typer.Exit(result.exit_code)


@config_app.command("check")
def config_check(workspace: WorkspaceOpt = Path(".")) -> None:
    """Load robots.toml and every target's scenario; report the first problem."""
    from robots.config import load_scenario

    ws = load_workspace(workspace)
    for t in ws.config.targets:
        load_scenario(t.robot, ws.path(t.scenario))
        console.print(f"ok  {t.name}: {t.robot} ← {t.scenario}")
    console.print(f"ok  {ws.file}")


def _plugins() -> None:
    """Sub-commands other packages contribute (the sandbox adds `robots sandbox`)."""
    for ep in entry_points(group="robots.commands"):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    _subcommands()
    _plugins()
    try:
        code = app(standalone_mode=False)
    except RobotsError as exc:
        console.print(f"[red]{type(exc).__name__}[/]: {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option values, unknown commands
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
