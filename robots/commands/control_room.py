"""`robots console`: the control room in the browser; `robots console users`: who may sign
in, with which role."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from robots.commands import WorkspaceOpt, console, out
from robots.errors import ConfigError

app = typer.Typer(
    help="The control room in the browser: the queue decided online, runs, audit.",
    invoke_without_command=True,
)
users = typer.Typer(help="Who may sign in to the console (viewer, reviewer, operator).")
app.add_typer(users, name="users")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen here (default [console] host).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Serve the console on 127.0.0.1 (``[console]`` host/port); beyond this machine only
    with ``[console] allow_remote = true``."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from robots.console.app import Console
    from robots.registry import load_workspace

    ws = load_workspace(workspace)
    settings = ws.config.console
    host = host or settings.host
    if not _loopback(host) and not settings.allow_remote:
        raise ConfigError(
            f"listening on {host} reaches beyond this machine; set [console] allow_remote = "
            "true to allow it (and put the console behind TLS)",
            file=str(ws.file),
            key="console.allow_remote",
        )
    room = Console(ws)
    app_ = room.app()
    if not room.ledger.console_users():
        console.print(
            "[yellow]no one may sign in yet[/]: add someone with "
            "`robots console users add NAME --role reviewer`"
        )
    console.print(f"console: http://{host}:{port or settings.port}/")
    uvicorn.run(app_, host=host, port=port or settings.port, log_level="warning")


@users.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The name they sign in with.")],
    role: Annotated[
        str, typer.Option(help="viewer (reads), reviewer (decides), operator (runs, stops).")
    ] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Add a person, or change their role and password."""
    from robots.console.accounts import ROLES, hash_password
    from robots.ledger import Ledger
    from robots.registry import load_workspace

    if role not in ROLES:
        raise typer.BadParameter(f"expected one of {', '.join(ROLES)}", param_hint="--role")
    if not name.strip() or len(name) > 64:
        raise typer.BadParameter("a name of 1 to 64 characters", param_hint="NAME")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise typer.BadParameter("the two passwords differ", param_hint="password")
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="password") from None
    ws = load_workspace(workspace)
    ledger = Ledger.of(ws)
    try:
        ledger.set_console_user(name.strip(), role, hashed)
        ledger.audit("(command line)", "user_set", name.strip(), {"role": role})
    finally:
        ledger.close()
    console.print(f"{name}: {role}")


@users.command("list")
def list_(workspace: WorkspaceOpt = Path(".")) -> None:
    """Everyone who may sign in, with their role."""
    from robots.ledger import Ledger
    from robots.registry import load_workspace

    ledger = Ledger.of(load_workspace(workspace))
    try:
        table = Table("name", "role")
        for name, role in ledger.console_users():
            table.add_row(name, role)
        out.print(table)
    finally:
        ledger.close()


@users.command("remove")
def remove(name: str, workspace: WorkspaceOpt = Path(".")) -> None:
    """Take away someone's access (their open sessions end on their next request)."""
    from robots.ledger import Ledger
    from robots.registry import load_workspace

    ledger = Ledger.of(load_workspace(workspace))
    try:
        if not ledger.remove_console_user(name):
            raise typer.BadParameter(f"no one is called {name!r}", param_hint="NAME")
        ledger.audit("(command line)", "user_removed", name, {})
    finally:
        ledger.close()
    console.print(f"{name}: removed")
