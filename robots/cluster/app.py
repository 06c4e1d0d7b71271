"""The Celery configuration the coordinator and the workers share.

A task is one item of one run (``robots.item``), on the robot's own queue
(``robots.<robot>``), as JSON. Acknowledged late (after the item is worked), one prefetched
per worker thread, and redelivered after ``visibility_timeout_s`` when its worker died: the
ledger and the item holds make a second delivery safe (an item done is skipped; an item
acting is settled from the live record; an item another process holds is left to it). No
result backend: results are in the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from robots.errors import BrokerUnavailable, ConfigError

if TYPE_CHECKING:
    from celery import Celery

    from robots.config import Workspace

TASK = "robots.item"


def queue_of(robot: str) -> str:
    return f"robots.{robot}"


def masked(url: str) -> str:
    """``url`` with its password replaced by ***, for logs and error lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def celery_app(broker: str, *, visibility_timeout_s: int) -> Celery:
    from celery import Celery

    app = Celery("robots", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged once worked: a killed worker's item comes back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker takes no more than it can start
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for its broker for ever
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # what Flower shows
        task_send_sent_event=True,
    )
    return app


def connected_app(broker: str, *, visibility_timeout_s: int) -> Celery:
    """``celery_app`` once the broker answers; ``BrokerUnavailable`` (one line) if it does not."""
    app = celery_app(broker, visibility_timeout_s=visibility_timeout_s)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # kombu's OperationalError, a refused socket
        app.close()
        raise unavailable(broker, exc) from None
    return app


def cluster_app(ws: Workspace, who: str) -> Celery:
    """The cluster's broker, connected, for ``who`` (``--cluster``, a worker): both need the
    broker (Redis) and the shared ledger (PostgreSQL), named in robots.toml or the
    environment; the first one missing is bad input naming its key."""
    broker = ws.broker_url
    if not broker:
        raise ConfigError(
            f"{who} needs the cluster's broker: set [cluster] broker in robots.toml "
            "(or ROBOTS_BROKER) to the Redis the workers take items from",
            file=str(ws.file),
            key="cluster.broker",
        )
    if not ws.ledger_url.startswith("postgresql"):
        raise ConfigError(
            f"{who} needs the shared ledger: set [cluster] ledger in robots.toml "
            "(or ROBOTS_LEDGER) to the PostgreSQL every worker writes to",
            file=str(ws.file),
            key="cluster.ledger",
        )
    return connected_app(broker, visibility_timeout_s=ws.cluster.visibility_timeout_s)


def unavailable(broker: str, exc: BaseException) -> BrokerUnavailable:
    cause = " ".join(str(exc).split())[:300]
    return BrokerUnavailable(
        f"the broker at {masked(broker)} does not answer ({cause}); check robots.toml "
        "[cluster] broker or ROBOTS_BROKER, and that Redis runs"
    )
