"""`robots runs` and `robots runs show RUN`: the run history, read from the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from robots.commands import WorkspaceOpt, out
from robots.engine.health import health, is_field_count
from robots.errors import UnknownRun
from robots.registry import ROBOTS, spec
from robots.runtime.clock import host_now
from robots.runtime.lock import run_is_locked
from robots.runtime.stopping import STOPPED_EXIT_CODE

if TYPE_CHECKING:
    from robots.config import Workspace
    from robots.ledger import Ledger, RunView

app = typer.Typer(help="What the robots did: recent runs, and one run's items.")


# how each count reads in a table (robots add theirs in their spec); others show their key
COUNT_NAMES = {
    "handed_to_person": "to a person",
    "system_exception": "system exc.",
    "not_started": "not started",
}
QUIET = {"stopped", "unchanged_since_last_run"}


def lock_of(run: RunView) -> str:
    """The run lock a run took (its robot's, or its flow file's)."""
    return spec(run.robot).lock_name(run.scenario) if run.robot in ROBOTS else run.robot


def run_status(ws: Workspace, run: RunView) -> str:
    code = run.summary.get("exit_code")
    if run.ended_at is None:
        return "running" if run_is_locked(ws, lock_of(run)) else "interrupted (no end recorded)"
    counts = run.summary.get("counts", {})
    if run.failure:
        status = f"failed: {run.failure}"
    elif run.stopped or code == STOPPED_EXIT_CODE:
        status = "stopped early"
    elif counts.get("system_exception"):
        status = "system exceptions"
    elif code == 1:
        status = "fields unreadable"
    else:
        status = "ok"
    return f"{status} (dry run)" if run.dry_run else status


def _duration(run: RunView) -> str:
    end = run.ended_at or host_now()
    seconds = int((end - run.started_at).total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _counts(run: RunView) -> str:
    counts = run.summary.get("counts", {})
    assert isinstance(counts, dict)
    names = {**COUNT_NAMES, **(spec(run.robot).count_names if run.robot in ROBOTS else {})}
    shown = [
        f"{names.get(k, k)} {v}"
        for k, v in counts.items()
        if k not in QUIET and v and not is_field_count(k)
    ]
    shown += [f"unreadable {h.field} {h.unreadable}/{h.reads}" for h in health(counts)]
    return " · ".join(shown)


def _open(ws: Workspace) -> Ledger:
    from robots.ledger import Ledger  # SQLAlchemy: only when a command reads the ledger

    return Ledger.of(ws)


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    robot: Annotated[str | None, typer.Option(help="Only this robot's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Recent runs of every robot: start, duration, counts per outcome, status."""
    if ctx.invoked_subcommand is not None:
        return
    from robots.registry import load_workspace

    ws = load_workspace(workspace)
    ledger = _open(ws)
    try:
        rows = ledger.recent_runs(robot, limit=limit)
    finally:
        ledger.close()
    table = Table("run", "robot", "started", "took", "counts", "status", "by", title="runs")
    for r in rows:
        status = run_status(ws, r)
        colour = "green" if status.startswith("ok") else "yellow" if "stopped" in status else "red"
        status = escape(status)
        table.add_row(
            r.run_id,
            r.robot,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            _duration(r),
            _counts(r),
            f"[{colour}]{status}[/]",
            str(r.summary.get("by", "")),
        )
    out.print(table)


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="A run id (or a unique prefix of one).")],
    state: Annotated[
        str | None, typer.Option(help="Only items in this state, e.g. business_exception.")
    ] = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """One run: its summary, then every item it last touched, with errors and evidence."""
    from robots.registry import load_workspace

    ws = load_workspace(workspace)
    ledger = _open(ws)
    try:
        run = ledger.find_run(run_id)
        if run is None:
            raise UnknownRun(f"no run {run_id!r} in the ledger; `robots runs` lists them")
        items = ledger.items(run.robot, run_id=run.run_id)
    finally:
        ledger.close()
    s = run.summary
    out.print(f"[bold]{run.run_id}[/]  {run.robot}  {escape(run_status(ws, run))}")
    for label, value in (
        ("scenario", run.scenario),
        ("started", f"{run.started_at:%Y-%m-%d %H:%M:%S}"),
        ("took", _duration(run)),
        ("by", s.get("by", "")),
        ("counts", _counts(run)),
        ("report", s.get("report", "")),
        ("logs", s.get("logs", "")),
        ("alerts", "; ".join(s.get("alerts", [])) or "none"),
    ):
        out.print(f"  {label:<9}{value}")
    if state is not None:
        items = [i for i in items if i.state == state]
    table = Table("item", "state", "action", "reason", "message", "evidence", title="items")
    for i in items:
        table.add_row(
            i.item_key,
            i.state.value,
            i.action,
            i.reason_code,
            i.error_message[:120],
            "\n".join(i.evidence),
        )
    out.print(table)
    out.print(f"{len(items)} items (those this run touched last)")
