"""Sub-commands of `robots` beyond `run` and `config`: vault, runs, apply, scheduler.

The option types and consoles every command shares live here, so each is declared once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
