"""Sub-commands of `robots` beyond `run` and `config`: vault, runs, apply, scheduler.

The option types and consoles every command shares live here, so each is declared once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from robots.config import Workspace
from robots.errors import ConfigError

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
