"""The `robots` command line. Catches ``RobotsError`` only: anything else is a bug.

`robots run <robot>` has one sub-command per robot in the registry (``robots.registry``),
generated from the robot's declared spec (``robots.commands.robot_command``).
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from robots.commands import WorkspaceOpt, console
from robots.errors import RobotsError

app = typer.Typer(
    help="Unattended RPA robots for e-commerce operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: [[schedules]] stays [[schedules]]
)
run_app = typer.Typer(help="Run a robot once.", no_args_is_help=True, rich_markup_mode=None)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(config_app, name="config")


def _subcommands() -> None:
    from robots.commands import (
        apply,
        control_room,
        flow,
        report,
        robot_command,
        runs,
        scenario,
        scheduler,
        vault,
        worker,
    )
    from robots.registry import specs

    for robot in specs():
        run_app.command(robot.name)(robot_command(robot))
    app.command("apply")(apply.apply)
    app.command("report")(report.report)
    app.command("worker")(worker.worker)
    app.add_typer(vault.app, name="vault")
    app.add_typer(runs.app, name="runs")
    app.add_typer(scheduler.app, name="scheduler")
    app.add_typer(scenario.app, name="scenario")
    app.add_typer(flow.app, name="flow")
    app.add_typer(control_room.app, name="console")


@config_app.command("check")
def config_check(
    workspace: WorkspaceOpt = Path("."),
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Then read a live item of --target as the robot would (the probe)."
        ),
    ] = False,
    target: Annotated[str | None, typer.Option(help="The target --live reads.")] = None,
) -> None:
    """Check robots.toml, every target's scenario (every mistake at once: unknown codes,
    formats, fields, duplicates), the files each scenario names (price list, word lists) and
    that each credential it needs is stored; with --live, read a live item of a target."""
    from robots.errors import ConfigError
    from robots.registry import load_workspace, spec

    if live and target is None:
        raise ConfigError("--live reads one target's pages: name it with --target", file="")
    ws = load_workspace(workspace)
    if target is not None:
        ws.target_named(target)
    store = ws.credentials()
    problems: list[str] = []
    good: list[str] = []
    for t in ws.config.targets:
        found: list[str] = []
        robot = spec(t.robot)
        try:
            scenario = robot.load_scenario(ws.path(t.scenario))
        except RobotsError as exc:
            found.append(str(exc))
        else:
            try:
                robot.check_inputs(scenario)
            except RobotsError as exc:
                found.append(str(exc))
            credential = getattr(scenario.shop, "credential", None)
            if credential:
                try:
                    store.get(credential)
                except RobotsError as exc:
                    found.append(f"{t.scenario}: shop.credential: {exc}")
        state = "" if t.enabled else " (disabled)"
        if not found:
            good.append(f"ok  {t.name}: {t.robot} ← {t.scenario}{state}")
        problems += [f"{p} [target {t.name}]" for p in found]
    if problems:  # every problem, the first on the first line
        raise ConfigError(
            "\n".join([*problems, f"{len(problems)} problem(s) in the targets of {ws.file}"]),
            file="",
        )
    for line in good:
        console.print(line)
    console.print(f"ok  {ws.file}")
    if live:
        from robots.commands.scenario import probe

        probe(target=target, workspace=workspace)


def _plugins() -> None:
    """Sub-commands other packages contribute (the sandbox adds `robots sandbox`)."""
    for ep in entry_points(group="robots.commands"):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    from robots.runtime.logs import quiet_console

    quiet_console()
    _subcommands()
    _plugins()
    try:
        code = app(standalone_mode=False)
    except RobotsError as exc:
        console.print(f"[red]{type(exc).__name__}[/]: {escape(str(exc))}", highlight=False)
        for later in getattr(exc, "deferred", ()):  # alerts about the failure, after its line
            later()
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
