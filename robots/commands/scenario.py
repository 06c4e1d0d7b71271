"""`robots scenario probe`: open a target's pages in the real browser and show, field by
field, what its scenario reads there. Exit 1 when a required field cannot be read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from robots.commands import BaseUrlOpt, WorkspaceOpt, authoring_browser, console, out

app = typer.Typer(help="Author scenarios: see what a scenario reads on the live pages.")


@app.command("probe")
def probe(
    target: Annotated[str | None, typer.Option(help="Target name in robots.toml.")] = None,
    robot: Annotated[
        str | None, typer.Option(help="The robot, when --scenario is given without --target.")
    ] = None,
    scenario: Annotated[Path | None, typer.Option(help="Scenario file to probe.")] = None,
    item: Annotated[
        str | None, typer.Option(help="Open this item's page (e.g. a refund id).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Open this page and read its fields.")] = None,
    base_url: BaseUrlOpt = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Read every field of a scenario on the live pages and print what each one got."""
    from robots.errors import ConfigError, map_foreign
    from robots.registry import load_workspace, spec

    ws = load_workspace(workspace)
    address = base_url
    if target is not None:  # a disabled target can be probed too: that is how one is made
        chosen = ws.target_named(target)
        robot = chosen.robot
        if scenario is None:
            scenario = ws.path(chosen.scenario)
            if address is None and chosen.base_url is not None:
                address = str(chosen.base_url)
    if robot is None or scenario is None:
        raise ConfigError(
            "say which target to probe (--target), or give --scenario and --robot",
            file=str(ws.file),
            key="targets",
        )
    robot_spec = spec(robot)
    file = scenario
    probe_fn = robot_spec.probe()
    loaded = robot_spec.load_scenario(file, base_url=address)
    name = getattr(loaded.shop, "credential", None)
    credential = ws.credentials().get(name) if name else None

    async def run() -> list:
        async with authoring_browser(ws) as session:
            return await probe_fn(loaded, session, credential, item=item, url=url)

    with map_foreign(f"the shop at {loaded.shop.base_url}"):  # a shop that is down: one line
        tables = asyncio.run(run())
    failed = 0
    for t in tables:
        grid = Table(title=f"{t.title}  {t.url}", title_justify="left", show_lines=False)
        for column in ("field", "selector", "label beside it", "on the page", "read as / problem"):
            grid.add_column(column, overflow="fold")
        for r in t.rows:
            shown = r.shown if r.matched else "(nothing matched)"
            result = f"[red]✗ {escape(r.error)}[/]" if r.failed else escape(_plain(r.value))
            name = f"{r.row} · {r.field}" if r.row else r.field
            label = f"[red]{escape(r.label)}[/]" if "≠" in r.label else escape(r.label)
            grid.add_row(escape(name), escape(r.selector), label, escape(shown), result)
        if t.rows:
            out.print(grid)
        else:
            out.print(f"{t.title}  {t.url}")
        for note in t.notes:
            out.print(f"  {escape(note)}")
        for problem in t.problems:
            out.print(f"  [red]✗ {escape(problem)}[/]")
        failed += sum(r.failed for r in t.rows) + len(t.problems)
    if failed:
        console.print(f"probe: {failed} problem(s) in {file}; fix them, then probe again")
        raise typer.Exit(1)
    console.print(f"probe: every field of {file} reads on the pages")


def _plain(value: object) -> str:
    """A read value as a specialist reads it: 2026-11-29 03:35:39+08:00, 290.90, 'text'."""
    from datetime import datetime
    from decimal import Decimal

    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal | int | bool) or value is None:
        return str(value)
    return repr(value)


@app.command("fields")
def fields(
    robot: Annotated[
        str | None, typer.Argument(help="refunds, returns or pagescan; every robot without")
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown (docs/fields.md) as it is.")
    ] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """The field reference: every value a robot reads, what it is exactly, which rules read
    it, and how each of the workspace's scenarios points at it."""
    from rich.markdown import Markdown

    from robots.config import WORKSPACE_FILE, read_toml
    from robots.engine.reference import PREAMBLE, reference
    from robots.errors import ConfigError
    from robots.registry import ROBOTS, load_workspace, spec

    if robot is not None and robot not in ROBOTS:
        raise ConfigError(
            f"no robot named {robot!r}", file="robots scenario fields", expected=", ".join(ROBOTS)
        )
    targets = []
    if (workspace / WORKSPACE_FILE).is_file():
        ws = load_workspace(workspace)
        targets = [(t, ws.path(t.scenario)) for t in ws.config.targets]
    parts = [PREAMBLE]
    for name in [robot] if robot else list(ROBOTS):
        robot_spec = spec(name)
        examples = {
            f"{t.name} (`{t.scenario}`)": read_toml(file) for t, file in targets if t.robot == name
        }
        parts.append(reference(name, robot_spec.title, robot_spec.field_tables, examples))
    text = "\n".join(parts).rstrip() + "\n"
    if markdown:
        typer.echo(text, nl=False)
    else:
        out.print(Markdown(text))
