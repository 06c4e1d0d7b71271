"""`robots sandbox ...`: seed and serve the practice shop (plugged into the robots CLI)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="The bundled practice shop the robots work against by default.", no_args_is_help=True
)


def _how_many(text: str, *, least: int = 0, most: int = 100_000) -> Any:
    """A count option of the seed command, within its bounds."""
    return typer.Option(min=least, max=most, help=text)


DataDir = Annotated[Path, typer.Option("--data", help="Folder holding the shop's SQLite file.")]


@app.command()
def seed(
    data: DataDir = Path("var/sandbox"),
    refunds: Annotated[int, _how_many("How many refunds.", least=1)] = 200,
    products: Annotated[int, _how_many("How many storefront products.")] = 200,
    parcels: Annotated[int, _how_many("How many unlabelled returned parcels.")] = 0,
    orders: Annotated[int, _how_many("At least this many orders (returns).", most=10**6)] = 0,
    shipments: Annotated[int, _how_many("How many open shipments (物流跟踪).")] = 0,
    live_products: Annotated[
        int, _how_many("How many SKUs the live console offers (直播挂链).")
    ] = 0,
    live_capacity: Annotated[int, _how_many("How many products one live session holds.")] = 50,
    conversations: Annotated[
        int, _how_many("How many customer-service conversations (客服质检).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same shop.")] = 1,
    username: Annotated[str, typer.Option(help="Back-office account to create.")] = "robot",
    password: Annotated[
        str,
        typer.Option(
            envvar="SANDBOX_PASSWORD",
            prompt=True,
            hide_input=True,
            help="Its password (or set SANDBOX_PASSWORD).",
        ),
    ] = "",
    now: Annotated[
        str | None, typer.Option(help="Clock the data is built around, 'YYYY-MM-DD HH:MM:SS'.")
    ] = None,
    totp_secret: Annotated[
        str | None,
        typer.Option(
            envvar="SANDBOX_TOTP_SECRET",
            help="Base32 TOTP secret: the login then asks for a one-time code (two-factor).",
        ),
    ] = None,
) -> None:
    """Create a fresh shop with synthetic refunds and its ground-truth file."""
    from sandbox.seed import seed_shop

    clock = datetime.fromisoformat(now) if now else None
    counts = seed_shop(
        data,
        refunds=refunds,
        seed=seed,
        username=username,
        password=password,
        now=clock,
        products=products,
        parcels=parcels,
        orders=orders,
        shipments=shipments,
        live_products=live_products,
        live_capacity=live_capacity,
        conversations=conversations,
        totp_secret=totp_secret,
    )
    total = sum(counts.values())
    typer.echo(
        f"seeded {total} refunds, {products} products, {parcels} parcels, {shipments} "
        f"shipments, {live_products} live SKUs and {conversations} conversations into {data}"
    )
    for branch, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {branch:<28} {n:>6}  {n / total:6.1%}")


@app.command()
def serve(
    data: DataDir = Path("var/sandbox"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    control: Annotated[
        bool, typer.Option(help="Enable the /_sandbox test-control endpoints.")
    ] = False,
    latency_ms: Annotated[
        float, typer.Option(help="Wait this long before every answer (a back office far away).")
    ] = 0,
) -> None:
    """Serve the back office until interrupted."""
    import uvicorn

    from sandbox.app import create_app

    try:
        application = create_app(data, control=control, latency_ms=latency_ms)
    except FileNotFoundError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"sandbox back office on http://{host}:{port}/ (data: {data})")
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def terminal(
    data: DataDir = Path("var/sandbox"),
    export_dir: Annotated[Path, typer.Option(help="Folder the export dialog suggests.")] = Path(
        "var/exports"
    ),
) -> None:
    """Open the warehouse terminal (a desktop program; needs an X display)."""
    import os

    if not os.environ.get("DISPLAY"):
        typer.echo(
            "Error: no X display: set DISPLAY (e.g. start `Xvfb :99` and DISPLAY=:99)", err=True
        )
        raise typer.Exit(2)
    from sandbox import db
    from sandbox.terminal import run

    if not (data / db.DB_NAME).exists():
        typer.echo(f"Error: no sandbox shop in {data}: run `robots sandbox seed` first", err=True)
        raise typer.Exit(2)
    run(data, export_dir.resolve())
