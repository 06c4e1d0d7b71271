"""Sub-commands of `robots` and what they share: option types, consoles, running a robot.

Each robot's `robots run <robot>` command lives in its package (``command.py``) and calls
``run_robot`` here, so choosing the target and scenario, the lock, alerts and the closing
lines are written once. Imports here stay light: `robots --help` loads this module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from robots.errors import ConfigError

if TYPE_CHECKING:
    from robots.config import Workspace

console = Console(stderr=True, soft_wrap=True)  # messages and errors
out = Console(soft_wrap=True, width=200)  # tables a script may capture

WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", help="Folder holding robots.toml.", envvar="ROBOTS_WORKSPACE"
    ),
]
TargetOpt = Annotated[str | None, typer.Option(help="Target name in robots.toml.")]
BaseUrlOpt = Annotated[
    str | None, typer.Option(help="Shop address, overriding the target's and the scenario's.")
]
ScenarioOpt = Annotated[
    Path | None,
    typer.Option(help="Scenario file; default: the robot's enabled target in robots.toml."),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Change nothing; report what would be done.")
]
LimitOpt = Annotated[
    int | None, typer.Option(min=1, help="Work on at most N items now; the next run goes on.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log every item.")]
ClusterOpt = Annotated[
    bool,
    typer.Option(
        "--cluster",
        help="Send the items to the cluster's workers (robots.toml [cluster]); wait, report.",
    ),
]


def scenario_for(
    ws: Workspace, robot: str, target: str | None, scenario: Path | None, base_url: str | None
) -> tuple[Path, str | None]:
    """The scenario file and shop address a run uses: explicit options, else the target's."""
    chosen = ws.target(robot, target)
    if target and chosen is None:
        raise ConfigError(
            f"no enabled {robot} target named {target!r}", file=str(ws.file), key="targets"
        )
    if scenario is None:
        if chosen is None:
            raise ConfigError(
                f'no enabled target with robot = "{robot}" and no --scenario given',
                file=str(ws.file),
                key="targets",
            )
        scenario = ws.path(chosen.scenario)
        # the target's address wins over its scenario's; an explicit --scenario keeps its own
        if base_url is None and chosen.base_url is not None:
            base_url = str(chosen.base_url)
    return scenario, base_url


def robot_command(name: str, help: str) -> Callable[..., None]:
    """The `robots run <name>` command most robots need: the common options, nothing more."""

    def run(
        scenario: ScenarioOpt = None,
        dry_run: DryRunOpt = False,
        limit: LimitOpt = None,
        target: TargetOpt = None,
        base_url: BaseUrlOpt = None,
        verbose: VerboseOpt = False,
        cluster: ClusterOpt = False,
        workspace: WorkspaceOpt = Path("."),
    ) -> None:
        run_robot(
            name,
            workspace=workspace,
            target=target,
            scenario=scenario,
            base_url=base_url,
            verbose=verbose,
            dry_run=dry_run,
            limit=limit,
            cluster=cluster,
        )

    run.__doc__ = help
    return run


def done_line(result: Any, dry_run: bool, parts: list[tuple[str, str]], tail: str = "") -> str:
    """ "[dry run ]done: 3 approved, 2 to a person, …": counts named by ``(count, label)``."""
    body = ", ".join(f"{result.counts.get(key, 0)} {label}" for key, label in parts)
    return f"[bold]{'dry run ' if dry_run else ''}done[/]: {body}{tail}"


def run_robot(
    name: str,
    *,
    workspace: Path,
    target: str | None,
    scenario: Path | None,
    base_url: str | None,
    verbose: bool,
    dry_run: bool = False,
    limit: int | None = None,
    cluster: bool = False,
    scenario_options: dict[str, Any] | None = None,
    robot_options: dict[str, Any] | None = None,
) -> None:
    """`robots run <name>`: the robot's target and scenario, then one run under its lock;
    prints the robot's summary line, the report and the logs, and exits with the run's code."""
    from robots.engine.run import RunOptions
    from robots.ops import execute_run
    from robots.registry import load_workspace, spec

    robot = spec(name)
    ws = load_workspace(workspace)
    if cluster and not robot.on_cluster:
        raise ConfigError(
            f"the {name} robot does not work on the cluster yet; leave out --cluster",
            file=f"robots run {name}",
            key="--cluster",
        )
    if cluster and dry_run:
        raise ConfigError(
            "a dry run changes nothing and runs on this machine; leave out --cluster",
            file=f"robots run {name}",
            key="--cluster",
        )
    dispatch = None
    if cluster:  # the items go to the cluster's workers: how the run sends them
        from robots.cluster.coordinator import Dispatch

        dispatch = Dispatch.open
    scenario_file, base_url = scenario_for(ws, name, target, scenario, base_url)
    loaded = robot.load_scenario(scenario_file, base_url=base_url, **(scenario_options or {}))
    build = robot.build()
    result = execute_run(
        ws,
        name,
        target,
        lambda stop: build(
            ws,
            loaded,
            scenario_file,
            RunOptions(dry_run, limit, console, verbose, stop, cluster=cluster, dispatch=dispatch),
            **(robot_options or {}),
        ),
        dry_run=dry_run,
    )
    console.print(robot.summary_line(result, dry_run))
    for h in result.fields:  # a field that broke on some pages: said, whatever the exit
        over = (
            " [red](over \\[early_stop] field_share: exit 1)[/]"
            if h in result.broken_fields
            else ""
        )
        console.print(f"unreadable: {h.field} on {h.unreadable} of {h.reads} reads{over}")
    if result.stopped:
        how = "Ctrl-C (SIGINT)" if result.exit_code == 130 else "SIGTERM"
        console.print(
            f"stopped by {how}: the items in hand were finished, "
            f"{result.counts.get('not_started', 0)} not started wait for the next run"
        )
    console.print(f"report: {result.report}")
    if result.details.get("open_exceptions"):
        console.print(f"open:   {result.details['open_exceptions']} (everything still waiting)")
    console.print(f"logs:   {result.run_dir}")
    raise typer.Exit(result.exit_code)
