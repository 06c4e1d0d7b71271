"""`robots scheduler start|status`: the unattended service and a look at what it did."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from robots.commands import WorkspaceOpt, console, out

app = typer.Typer(help="Run robots on their schedules (robots.toml [[schedules]]).")


@app.command("start")
def start(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every fire.")] = True,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Run the scheduler in the foreground until SIGTERM (systemd) or Ctrl-C."""
    import sys

    from loguru import logger

    from robots.registry import load_workspace
    from scheduler.service import Service

    ws = load_workspace(workspace)
    if not ws.config.schedules:
        console.print("no [[schedules]] in robots.toml: nothing to do")
        raise typer.Exit(2)
    logger.remove()
    logger.add(
        sys.stderr,
        level="INFO" if verbose else "WARNING",
        format="{time:YYYY-MM-DD HH:mm:ss} {level} {message}",
    )
    log_dir = ws.path(ws.config.paths.logs) / "scheduler"
    log_dir.mkdir(parents=True, exist_ok=True)
    logger.add(log_dir / "scheduler.log", level="INFO", rotation="10 MB", retention=10)
    raise typer.Exit(Service(ws).serve())


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if t else "-"


@app.command("status")
def status(workspace: WorkspaceOpt = Path(".")) -> None:
    """Each schedule's next fire time and last result."""
    from robots.registry import load_workspace
    from scheduler.history import History
    from scheduler.service import job_store_path, stored_jobs

    ws = load_workspace(workspace)
    stored = {}
    if job_store_path(ws).exists():
        store = stored_jobs(ws)
        stored = {j.id: j for j in store.get_all_jobs()}
        store.shutdown()
    history = History(job_store_path(ws), ZoneInfo(ws.config.scheduler.timezone))
    paused = history.paused()
    try:
        table = Table(
            "schedule",
            "target",
            "when",
            "next fire",
            "last fire",
            "last result",
            "run",
            title=f"schedules ({ws.config.scheduler.timezone})",
        )
        for s in ws.config.schedules:
            job = stored.get(s.name)
            last = history.fires(s.name, limit=1, busy=False)
            when = s.cron or f"every {s.every_seconds} s"
            if s.working_days_only:
                when += ", working days"
            table.add_row(
                s.name,
                s.target,
                when,
                f"paused by {paused[s.name][0]}"
                if s.name in paused
                else _when(job.next_run_time)
                if job
                else ("disabled" if not s.enabled else "not started"),
                _when(last[0].started_at) if last else "-",
                last[0].outcome if last else "-",
                last[0].run_id if last else "",
            )
        out.print(table)
    finally:
        history.close()
