"""`robots report RUN` and `robots report --open`: workbooks written again from the ledger.

A run that was killed, stopped or failed while writing still has every item in the ledger;
its workbook is written from there (the robot's next run does it too), and the open-exceptions
workbook holds everything still waiting for a person, every robot, every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robots.commands import WorkspaceOpt, console


def report(
    run_id: Annotated[
        str | None, typer.Argument(help="The run (its id, or a prefix only it has).")
    ] = None,
    open_: Annotated[
        bool,
        typer.Option("--open", help="Write the open-exceptions workbook (every robot)."),
    ] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Write a run's workbook again from the ledger, or the open-exceptions workbook."""
    from robots.errors import ConfigError, UnknownRun
    from robots.ledger import Ledger
    from robots.registry import ROBOTS, load_workspace, spec
    from robots.runtime.clock import ShopClock

    if (run_id is None) == (not open_):
        raise ConfigError("say which: a run id, or --open", file="robots report", key="RUN")
    ws = load_workspace(workspace)
    clock = ShopClock()
    now = clock.wall(clock.now())
    ledger = Ledger.of(ws)
    try:
        if open_:
            from robots.registry import queue_sheets
            from robots.reports.queue import write_queue

            path, totals = write_queue(
                ledger, ws.path(ws.config.paths.open_exceptions), queue_sheets(), now=now
            )
            console.print(f"{path}: {totals['open']} items waiting for a person")
            return
        assert run_id is not None
        run = ledger.find_run(run_id)
        if run is None:
            raise UnknownRun(f"no run {run_id!r} (or more than one starts so) in the ledger")
        write = spec(run.robot).report_part("write_run") if run.robot in ROBOTS else None
        if write is None or run.summary.get("kind"):
            what = run.summary.get("kind") or run.robot
            raise ConfigError(
                f"run {run.run_id} ({what}) has no workbook to write from the ledger yet",
                file="robots report",
                key="RUN",
            )
        name = f"{run.robot}-{run.run_id}{'-dry-run' if run.dry_run else ''}.xlsx"
        path = write(ledger, run, ws.path(ws.config.paths.reports) / name, now=now)
        if not run.dry_run:
            ledger.annotate_run(run.run_id, {"report": str(path)})
        console.print(f"report: {path}")
    finally:
        ledger.close()
