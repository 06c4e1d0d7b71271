"""`robots worker`: one Celery worker of the cluster, working the items coordinators send."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from robots.commands import WorkspaceOpt, console
from robots.errors import ConfigError


def worker(
    robots: Annotated[
        str,
        typer.Option(help="Robots whose items this worker takes, comma-separated."),
    ] = "refunds",
    pages: Annotated[
        int,
        typer.Option(min=1, max=32, help="Items worked at once: browser pages, one per thread."),
    ] = 2,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Work the cluster's items (robots.toml [cluster]); SIGTERM finishes the items in hand."""
    from celery.exceptions import Reject
    from loguru import logger

    from robots.cluster.app import TASK, cluster_app, masked, queue_of
    from robots.cluster.worker import ItemBack, Runtime, Watch, serve, worker_name
    from robots.registry import ROBOTS, load_workspace, spec
    from robots.runtime.logs import run_logging
    from robots.runtime.redaction import Redactor

    ws = load_workspace(workspace)
    names = [n.strip() for n in robots.split(",") if n.strip()]
    for name in names:
        if name not in ROBOTS:
            raise ConfigError(
                f"names {name!r}; expected some of {', '.join(ROBOTS)}",
                file="robots worker",
                key="--robots",
            )
        if not spec(name).on_cluster:
            raise ConfigError(
                f"the {name} robot does not work on the cluster yet; run it with `robots run "
                f"{name}` on one machine",
                file="robots worker",
                key="--robots",
            )
    app = cluster_app(ws, "a worker")
    # a task given back (the ledger away) is said in one line of ours, not Celery's traceback
    logging.getLogger("celery.app.trace").setLevel(logging.ERROR)
    name = worker_name()
    redactor = Redactor()
    log_dir = ws.path(ws.config.paths.logs) / f"worker-{name}"
    with run_logging(log_dir, redactor, console=console, console_level="INFO"):
        runtime = Runtime(ws, pages=pages, redactor=redactor)

        @app.task(name=TASK)
        def item(message: dict[str, Any]) -> None:
            try:
                outcome = runtime.work(message)
            except ItemBack:  # the ledger went away: not acknowledged, back in the queue
                raise Reject(requeue=True) from None
            logger.bind(item=message["key"]).info("worked: {}", outcome)

        logger.info(
            "worker {} takes {} from {} with {} pages; logs in {}",
            name,
            ", ".join(names),
            masked(ws.broker_url or ""),
            pages,
            log_dir,
        )

        def consume() -> int:
            celery_worker = app.Worker(
                hostname=f"robots@{name}",
                pool="threads",
                concurrency=pages,
                queues=[queue_of(n) for n in names],
                loglevel="WARNING",
                quiet=True,
                redirect_stdouts=False,
            )
            celery_worker.start()
            return int(celery_worker.exitcode or 0)

        watch = Watch(ws, app, runtime.ledger, name)
        watch.start()
        try:
            code = serve(consume)
        finally:
            watch.stop()
            runtime.close()
            worked = ", ".join(f"{n} {k}" for k, n in sorted(runtime.worked.items())) or "nothing"
            logger.info("worker {} stopped; it worked: {}", name, worked)
    raise typer.Exit(code)
