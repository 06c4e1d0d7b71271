"""Sub-commands of `robots` and what they share: option types, consoles, running a robot.

Each robot's `robots run <robot>` command is generated here from its declared spec
(``robot_command``) and calls ``run_robot``, so choosing the target and scenario, the lock,
alerts and the closing lines are written once. Imports here stay light: `robots --help`
loads this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from robots.errors import ConfigError

if TYPE_CHECKING:
    from robots.config import Workspace
    from robots.engine.spec import RobotSpec

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


def authoring_browser(ws: Workspace) -> Any:
    """The workspace's browser (``[browser]``) for a command a specialist runs by hand (a
    probe, `robots flow new`): untraced, as ``browser_session`` opens it."""
    from robots.runtime.browser import browser_session

    b = ws.config.browser
    return browser_session(
        executable=b.executable,
        headless=b.headless,
        timeout_ms=b.timeout_ms,
        trace=False,
        args=b.args,
    )


def scenario_for(
    ws: Workspace,
    robot: str,
    target: str | None,
    scenario: Path | None,
    base_url: str | None,
    *,
    named: str | None = None,
    named_files: str = "",
) -> tuple[Path, str | None]:
    """The scenario file and shop address a run uses: explicit options, else the target's.
    ``named`` (`robots run flow logistics`): the target of that name, else the one file
    ``named_files`` finds under the workspace."""
    if named is not None:
        if target is not None or scenario is not None:
            raise ConfigError(
                f"give {named!r} or --target / --scenario, not both",
                file=f"robots run {robot}",
                key="NAME",
            )
        if ws.target(robot, named) is not None:
            target = named
        else:
            pattern = named_files.format(name=named)
            found = sorted(ws.root.glob(pattern)) if pattern else []
            if len(found) != 1:
                why = "none" if not found else ", ".join(str(f) for f in found)
                raise ConfigError(
                    f"no {robot} target named {named!r}, and not one file {pattern} "
                    f"under {ws.root} (found: {why})",
                    file=str(ws.file),
                    key="targets",
                )
            scenario = found[0]
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


def robot_command(robot: RobotSpec) -> Callable[..., None]:
    """`robots run <robot>` from its spec: the common options (--dry-run for a robot that
    changes the shop, --cluster for one whose items the cluster's workers take), then the
    robot's own (``RobotSpec.options``), each handed to its scenario's ``load`` or to the
    robot."""
    params: list[tuple[str, Any, Any]] = []
    if robot.named:
        argument = typer.Argument(help=robot.named, metavar="NAME", show_default=False)
        params.append(("named", Annotated[str | None, argument], None))
    params.append(("scenario", ScenarioOpt, None))
    if robot.dry_run:
        params.append(("dry_run", DryRunOpt, False))
    params.append(("limit", LimitOpt, None))
    params += [
        (o.name, Annotated[o.type, typer.Option(o.flag, help=o.help)], None) for o in robot.options
    ]
    params += [("target", TargetOpt, None), ("base_url", BaseUrlOpt, None)]
    params.append(("verbose", VerboseOpt, False))
    if robot.on_cluster:
        params.append(("cluster", ClusterOpt, False))
    params.append(("workspace", WorkspaceOpt, Path(".")))

    def run(**given: Any) -> None:
        own = {o.name: given.pop(o.name) for o in robot.options}
        run_robot(robot.name, **given, own=own)  # with ``named`` when the robot takes one

    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for n, a, d in params
        ]
    )
    run.__annotations__ = {n: a for n, a, _ in params}
    run.__doc__ = robot.help
    return run


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
    own: dict[str, Any] | None = None,
    named: str | None = None,
) -> None:
    """`robots run <name>`: the robot's target and scenario, then one run under its lock;
    prints the robot's summary line, the report and the logs, and exits with the run's code.
    ``own``: the robot's own options (``RobotSpec.options``) as given. The engine is
    imported once the workspace and the scenario have loaded: a mistake in either is said
    without that cost (a third of a second of CPU)."""
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
    own = own or {}
    for option in robot.options:
        if cluster and option.not_on_cluster and own.get(option.name) is not None:
            raise ConfigError(option.not_on_cluster, file=f"robots run {name}", key=option.flag)
    scenario_options = {o.name: own.get(o.name) for o in robot.options if o.to == "scenario"}
    robot_options = {o.name: own.get(o.name) for o in robot.options if o.to == "robot"}
    dispatch = None
    if cluster:  # the items go to the cluster's workers: how the run sends them
        from robots.cluster.coordinator import Dispatch

        dispatch = Dispatch.open
    scenario_file, base_url = scenario_for(
        ws, name, target, scenario, base_url, named=named, named_files=robot.named_files
    )
    loaded = robot.load_scenario(scenario_file, base_url=base_url, **scenario_options)
    build = robot.build()
    from robots.engine.run import RunOptions
    from robots.ops import execute_run

    result = execute_run(
        ws,
        name,
        target,
        lambda stop: build(
            ws,
            loaded,
            scenario_file,
            RunOptions(dry_run, limit, console, verbose, stop, cluster=cluster, dispatch=dispatch),
            **robot_options,
        ),
        dry_run=dry_run,
        lock=robot.lock_name(scenario_file),
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
