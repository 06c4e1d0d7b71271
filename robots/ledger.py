"""The work-item ledger: one durable row per item per robot, written before and after acting.

States::

    pending ──► acting ──► done
       │          │  └───► system_exception   (retried on a later run)
       │          └──────► business_exception (handed to a person)
       └─────────────────► business_exception

The acting protocol every robot follows: mark *acting*, re-read the live record, act, verify
the new state on the page, mark *done*. An item found *acting* when a run starts was
interrupted mid-action; it is settled by reading its live state, never by acting blindly.

SQLAlchemy keeps the store swappable: a SQLite file on one machine (every write transaction
takes the file's lock up front), PostgreSQL when many machines share it (``postgresql+psycopg://``:
read committed, each state change locks its row with ``SELECT … FOR UPDATE``, and a reservation
against the daily cap locks the robot's row of that day in ``cap_days`` first, so workers racing
for the last of the cap take turns). The schema is Alembic's (``robots/migrations``), brought up
to date whenever a ledger is opened.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from robots.errors import LedgerUnavailable
from robots.runtime.clock import host_now

if TYPE_CHECKING:
    from robots.config import Workspace  # the shop's days (the daily cap's) are passed in


def is_outage(exc: BaseException) -> bool:
    """``exc`` says the ledger's server is away (down, restarting, cut off), not that a
    statement was wrong: what was being written may be written again once it answers."""
    if isinstance(exc, (OperationalError, LedgerUnavailable)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


T = TypeVar("T")


def patiently(call: Callable[[], T], *, url: object, wait_s: float) -> T:
    """``call()`` (a ledger write that must land: a run's end), tried again with backoff
    (0.5 s to 5 s) while the ledger is away, for up to ``wait_s``; then the one line
    ``LedgerUnavailable`` (``url``: SQLAlchemy's, whose repr masks the password)."""
    if str(url).startswith("sqlite"):  # a file on this machine: its errors are not outages
        return call()
    from loguru import logger
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    def waiting(state: Any) -> None:
        if state.attempt_number == 1:
            logger.warning(
                "the ledger at {!r} does not answer: waiting for it, up to {:.0f} s", url, wait_s
            )

    try:
        for attempt in Retrying(
            retry=retry_if_exception(is_outage),
            wait=wait_exponential(multiplier=0.5, max=5.0),
            stop=stop_after_delay(wait_s),
            before_sleep=waiting,
            reraise=True,
        ):
            with attempt:
                return call()
    except Exception as exc:
        if not is_outage(exc) or isinstance(exc, LedgerUnavailable):
            raise
        raise LedgerUnavailable.of(url, exc) from None
    raise AssertionError("unreachable: Retrying returns or raises")


def new_run_id(robot: str) -> str:
    """Sortable and unique enough: start time, robot, a little randomness."""
    return f"{host_now():%Y%m%d-%H%M%S}-{robot}-{secrets.token_hex(2)}"


class State(enum.StrEnum):
    PENDING = "pending"
    ACTING = "acting"
    DONE = "done"
    BUSINESS_EXCEPTION = "business_exception"
    SYSTEM_EXCEPTION = "system_exception"


class Base(DeclarativeBase):
    pass


class WorkItem(Base):
    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("robot", "item_key"),
        Index("ix_work_items_cap", "robot", "acted_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    robot: Mapped[str] = mapped_column(String(64))
    item_key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(32), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fingerprint: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64), default="")
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    acted_on: Mapped[str] = mapped_column(String(10), default="")  # local day of the action
    reason_code: Mapped[str] = mapped_column(String(64), default="")
    error_message: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=host_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=host_now)


class Run(Base):
    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    robot: Mapped[str] = mapped_column(String(64))
    scenario: Mapped[str] = mapped_column(Text)
    dry_run: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def _committed_on(robot: str, day: date, cap_scope: str) -> list[Any]:
    """The items whose money a day's cap counts: acting or done on ``day``, the robot's
    (those whose keys begin with ``cap_scope``, when given)."""
    where = [
        WorkItem.robot == robot,
        WorkItem.acted_on == day.isoformat(),
        WorkItem.state.in_([State.ACTING, State.DONE]),
    ]
    if cap_scope:
        where.append(WorkItem.item_key.startswith(cap_scope, autoescape=True))
    return where


class CapDay(Base):
    """The lock every reservation against a robot's daily cap takes first (one row a day)."""

    __tablename__ = "cap_days"

    robot: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)


class Mark(Base):
    """What an item counts as, and when (``name``: the flow's and the class's, e.g.
    ``service-qc:abuse``; ``at``: UTC): a flow's hourly counts. One row per item and name,
    so an item done again after a kill never counts twice."""

    __tablename__ = "marks"
    __table_args__ = (Index("ix_marks_at", "robot", "name", "at"),)

    robot: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class ItemView:
    """A read-only copy of a ledger row, safe to pass around after its session closed."""

    item_key: str
    state: State
    attempts: int
    fingerprint: str
    action: str
    amount_cents: int
    reason_code: str
    error_message: str
    evidence: tuple[str, ...]
    details: dict[str, Any]
    run_id: str
    updated_at: datetime


class Remembered(Base):
    """Values a robot keeps from one run to the next (e.g. prices seen by the last scan)."""

    __tablename__ = "remembered"
    __table_args__ = (UniqueConstraint("robot", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    robot: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(300))
    value: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=host_now)


class ConsoleUser(Base):
    """A person who signs in to the console (``robots console users``): a role and a
    password hash (argon2, never the password)."""

    __tablename__ = "console_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=host_now)


class ConsoleAudit(Base):
    """What a person did in the console: who, when (UTC), what, on which target, and what
    the row showed when they did it."""

    __tablename__ = "console_audit"
    __table_args__ = (Index("ix_console_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=host_now)
    user: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclass(frozen=True)
class Audited:
    at: datetime
    user: str
    action: str
    target: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class RunView:
    run_id: str
    started_at: datetime
    ended_at: datetime | None
    summary: dict[str, Any]
    robot: str = ""
    scenario: str = ""
    dry_run: bool = False

    @property
    def stopped(self) -> bool:
        """Asked to stop before its list was worked (ledgers before 0.2 kept it in counts)."""
        return bool(self.summary.get("stopped") or self.summary.get("counts", {}).get("stopped"))

    @property
    def failure(self) -> str:
        """The error that ended the run ("Kind: first line"), or "" when it did not fail."""
        return str(self.summary.get("failure") or "")


def _run_view(r: Run) -> RunView:
    return RunView(
        r.run_id,
        r.started_at,
        r.ended_at,
        dict(r.summary or {}),
        r.robot,
        r.scenario,
        bool(r.dry_run),
    )


def _view(row: WorkItem) -> ItemView:
    return ItemView(
        row.item_key,
        State(row.state),
        row.attempts,
        row.fingerprint,
        row.action,
        row.amount_cents,
        row.reason_code,
        row.error_message,
        tuple(row.evidence or ()),
        dict(row.details or {}),
        row.run_id,
        row.updated_at,
    )


def _sqlite_engine(url: str, *, memory: bool) -> Engine:
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let us issue BEGIN IMMEDIATE ourselves
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # take the write lock up front: read-check-write (claims, the daily cap) stays atomic
        # across processes sharing the file
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


SCHEMA_LOCK = 2  # the advisory lock class of schema upgrades (0: run locks, 1: item holds)


class Ledger:
    """Durable record of every item every robot touched. Safe to share between processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:")
            self.engine = _sqlite_engine(url, memory=memory)
        else:  # read committed: row locks (FOR UPDATE) order the writers that meet
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
        try:
            self._upgrade()
        except OperationalError as exc:
            self.engine.dispose()
            if self.engine.dialect.name == "sqlite":
                raise
            raise LedgerUnavailable.of(self.engine.url, exc) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # an insert that can yield to a row already there (ON CONFLICT DO NOTHING)
        self._insert: Callable[[Any], Any]
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self._insert = pg_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._insert = sqlite_insert

    def _upgrade(self) -> None:
        """Bring the schema to the newest revision; Alembic is loaded only when it is not."""
        from robots.migrations import HEAD

        with self.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            version = (
                "alembic_version" in tables
                and conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            )
            if version == HEAD:
                return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # machines starting at once upgrade one after the other (the lock ends with
                # this transaction); the later ones find the schema at its head
                conn.execute(text("SELECT pg_advisory_xact_lock(:c, 0)"), {"c": SCHEMA_LOCK})
                tables = set(inspect(conn).get_table_names())
            config.attributes["connection"] = conn
            if "work_items" in tables and "alembic_version" not in tables:
                command.stamp(config, "0001_ledger")  # made by create_all, before migrations
            command.upgrade(config, "head")

    @classmethod
    def of(cls, ws: Workspace) -> Ledger:
        """The workspace's ledger: its SQLite file, or the cluster's PostgreSQL."""
        return cls(ws.ledger_url)

    @classmethod
    def at(cls, path: Path) -> Ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    @classmethod
    def in_memory(cls) -> Ledger:
        """A throwaway ledger (dry runs, unit tests)."""
        return cls("sqlite://")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def _row(self, s: Session, robot: str, key: str, *, lock: bool = True) -> WorkItem | None:
        """The item's row, locked for this transaction (PostgreSQL; SQLite's transactions
        hold the whole file) unless only read."""
        query = select(WorkItem).where(WorkItem.robot == robot, WorkItem.item_key == key)
        return s.scalar(query.with_for_update() if lock else query)

    # -- runs -----------------------------------------------------------------------------
    def begin_run(
        self,
        run_id: str,
        robot: str,
        scenario: str,
        *,
        dry_run: bool,
        summary: dict[str, Any] | None = None,
    ) -> None:
        with self._tx() as s:
            s.add(
                Run(
                    run_id=run_id,
                    robot=robot,
                    scenario=scenario,
                    dry_run=int(dry_run),
                    started_at=host_now(),
                    summary=summary or {},
                )
            )

    def runs(self, robot: str, *, scenario: str | None = None, limit: int = 50) -> list[RunView]:
        """The robot's runs, newest first (dry runs left out)."""
        with self._tx() as s:
            q = select(Run).where(Run.robot == robot, Run.dry_run == 0)
            if scenario is not None:
                q = q.where(Run.scenario == scenario)
            rows = s.scalars(q.order_by(Run.started_at.desc(), Run.run_id.desc()).limit(limit))
            return [_run_view(r) for r in rows]

    def recent_runs(self, robot: str | None = None, *, limit: int = 20) -> list[RunView]:
        """Every robot's runs (dry runs too), newest first: what `robots runs` lists."""
        with self._tx() as s:
            q = select(Run)
            if robot is not None:
                q = q.where(Run.robot == robot)
            rows = s.scalars(q.order_by(Run.started_at.desc(), Run.run_id.desc()).limit(limit))
            return [_run_view(r) for r in rows]

    def interrupted_runs(self, robot: str) -> list[RunView]:
        """The robot's real runs that never ended (killed) and whose workbook nobody wrote
        since: the next run writes it from here."""
        with self._tx() as s:
            q = select(Run).where(Run.robot == robot, Run.dry_run == 0, Run.ended_at.is_(None))
            views = [_run_view(r) for r in s.scalars(q.order_by(Run.started_at))]
        return [v for v in views if not v.summary.get("report") and not v.summary.get("kind")]

    def find_run(self, run_id: str) -> RunView | None:
        """A run by its id, or by a prefix of it that only one run has."""
        with self._tx() as s:
            exact = s.get(Run, run_id)
            if exact is not None:
                return _run_view(exact)
            rows = list(
                s.scalars(
                    select(Run).where(Run.run_id.startswith(run_id, autoescape=True)).limit(2)
                )
            )
            return _run_view(rows[0]) if len(rows) == 1 else None

    def annotate_run(self, run_id: str, extra: dict[str, Any]) -> None:
        """Add to a finished run's summary (report path, exit code, alerts sent)."""
        with self._tx() as s:
            run = s.get(Run, run_id)
            if run is not None:
                run.summary = {**(run.summary or {}), **extra}

    def end_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self._tx() as s:
            run = s.get(Run, run_id)
            if run is not None:
                run.ended_at, run.summary = host_now(), summary

    # -- memory between runs ---------------------------------------------------------------
    def recall(self, robot: str, keys: list[str]) -> dict[str, str]:
        with self._tx() as s:
            rows = s.execute(
                select(Remembered.key, Remembered.value).where(
                    Remembered.robot == robot, Remembered.key.in_(keys)
                )
            )
            return {k: v for k, v in rows}

    def remember(self, robot: str, values: dict[str, str], *, run_id: str) -> None:
        with self._tx() as s:
            existing = {
                r.key: r
                for r in s.scalars(
                    select(Remembered).where(
                        Remembered.robot == robot, Remembered.key.in_(list(values))
                    )
                )
            }
            now = host_now()
            for key, value in values.items():
                row = existing.get(key)
                if row is None:
                    s.add(
                        Remembered(robot=robot, key=key, value=value, run_id=run_id, updated_at=now)
                    )
                else:
                    row.value, row.run_id, row.updated_at = value, run_id, now

    # -- counts by the hour ----------------------------------------------------------------
    def mark(self, robot: str, names: list[str], item_key: str, at: datetime) -> None:
        """``item_key`` counts once under each of ``names`` at ``at`` (UTC, naive); marking
        it again changes nothing."""
        with self._tx() as s:
            for name in dict.fromkeys(names):
                if s.get(Mark, (robot, name, item_key)) is None:
                    s.add(Mark(robot=robot, name=name, item_key=item_key, at=at))

    def marks_since(self, robot: str, prefix: str, since: datetime) -> list[tuple[str, datetime]]:
        """Every (name, at) of ``robot``'s marks whose name begins with ``prefix``, at or
        after ``since`` (UTC, naive)."""
        with self._tx() as s:
            rows = s.execute(
                select(Mark.name, Mark.at).where(
                    Mark.robot == robot,
                    Mark.name.startswith(prefix, autoescape=True),
                    Mark.at >= since,
                )
            )
            return [(name, at) for name, at in rows]

    def endings_since(self, since: datetime) -> list[tuple[str, str, str, datetime]]:
        """(robot, state, reason code, updated at) of every item that ended (done, or handed
        to a person) at or after ``since``: what the console charts over time."""
        with self._tx() as s:
            rows = s.execute(
                select(WorkItem.robot, WorkItem.state, WorkItem.reason_code, WorkItem.updated_at)
                .where(
                    WorkItem.updated_at >= since,
                    WorkItem.state.in_(
                        [State.DONE, State.BUSINESS_EXCEPTION, State.SYSTEM_EXCEPTION]
                    ),
                )
                .order_by(WorkItem.updated_at)
            )
            return [(robot, str(state), reason or "", at) for robot, state, reason, at in rows]

    # -- the console's people and what they did -------------------------------------------
    def console_user(self, name: str) -> tuple[str, str] | None:
        """(role, password hash) of ``name``, or None."""
        with self._tx() as s:
            row = s.get(ConsoleUser, name)
            return (row.role, row.password_hash) if row is not None else None

    def console_users(self) -> list[tuple[str, str]]:
        """Every (name, role), by name."""
        with self._tx() as s:
            rows = s.execute(select(ConsoleUser.name, ConsoleUser.role).order_by(ConsoleUser.name))
            return [(name, role) for name, role in rows]

    def set_console_user(self, name: str, role: str, password_hash: str) -> None:
        with self._tx() as s:
            row = s.get(ConsoleUser, name)
            if row is None:
                s.add(ConsoleUser(name=name, role=role, password_hash=password_hash))
            else:
                row.role, row.password_hash = role, password_hash

    def remove_console_user(self, name: str) -> bool:
        with self._tx() as s:
            row = s.get(ConsoleUser, name)
            if row is not None:
                s.delete(row)
            return row is not None

    def audit(self, user: str, action: str, target: str, detail: dict[str, Any]) -> None:
        with self._tx() as s:
            s.add(ConsoleAudit(user=user, action=action, target=target, detail=detail))

    def audits(self, *, limit: int = 200) -> list[Audited]:
        """The newest first."""
        with self._tx() as s:
            q = select(ConsoleAudit).order_by(ConsoleAudit.id.desc()).limit(limit)
            return [
                Audited(a.at, a.user, a.action, a.target, dict(a.detail or {}))
                for a in s.scalars(q)
            ]

    def ping(self) -> None:
        """One round trip to the ledger's server (raises what an outage raises)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    # -- items ----------------------------------------------------------------------------
    def get(self, robot: str, key: str) -> ItemView | None:
        with self._tx() as s:
            row = self._row(s, robot, key, lock=False)
            return _view(row) if row else None

    def views(self, robot: str, keys: Sequence[str]) -> dict[str, ItemView]:
        """The rows of ``keys`` (those that exist), a few hundred to a query."""
        found: dict[str, ItemView] = {}
        with self._tx() as s:
            for start in range(0, len(keys), 500):
                q = select(WorkItem).where(
                    WorkItem.robot == robot, WorkItem.item_key.in_(keys[start : start + 500])
                )
                found.update((r.item_key, _view(r)) for r in s.scalars(q))
        return found

    def note_worked(self, robot: str, key: str, *, run_id: str, counts: dict[str, int]) -> None:
        """What a cluster worker counted while it worked ``key`` for ``run_id``: the
        coordinator adds these up into the run's counts."""
        with self._tx() as s:
            row = self._row(s, robot, key)
            if row is None:
                return
            row.details = {**(row.details or {}), "worked": {"run": run_id, "counts": counts}}

    def run_money(self, robot: str, run_id: str) -> int:
        """Cents moved by the actions of ``run_id`` (done by the robot, kept against the cap)."""
        with self._tx() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(WorkItem.amount_cents), 0)).where(
                    WorkItem.robot == robot,
                    WorkItem.run_id == run_id,
                    WorkItem.state == State.DONE,
                )
            )
            return int(total or 0)

    def items(
        self,
        robot: str,
        *,
        state: State | None = None,
        run_id: str | None = None,
        key_prefix: str | None = None,
    ) -> list[ItemView]:
        with self._tx() as s:
            q = select(WorkItem).where(WorkItem.robot == robot)
            if key_prefix is not None:
                q = q.where(WorkItem.item_key.startswith(key_prefix, autoescape=True))
            if state is not None:
                q = q.where(WorkItem.state == state)
            if run_id is not None:
                q = q.where(WorkItem.run_id == run_id)
            return [_view(r) for r in s.scalars(q.order_by(WorkItem.id))]

    def open_items(self, robot: str) -> list[ItemView]:
        """The robot's items still waiting for a person: handed over, given up after their
        retries, or acting with nothing proving whether the action landed. A hand-over
        claimed again for a re-check (``claim(recheck=…)``) counts as its last hand-over
        until the re-check ends, so a run killed meanwhile loses it from no list."""
        with self._tx() as s:
            q = select(WorkItem).where(
                WorkItem.robot == robot,
                WorkItem.state.in_(
                    [State.BUSINESS_EXCEPTION, State.SYSTEM_EXCEPTION, State.ACTING, State.PENDING]
                ),
            )
            rows = [_view(r) for r in s.scalars(q.order_by(WorkItem.id))]
        found = []
        for v in rows:
            if v.state == State.PENDING:
                earlier = v.details.get("recheck")
                if not earlier:
                    continue
                v = replace(
                    v,
                    state=State.BUSINESS_EXCEPTION,
                    reason_code=earlier["reason"],
                    run_id=earlier["run_id"],
                )
            elif v.state == State.ACTING and not v.reason_code:
                continue
            found.append(v)
        return found

    def claim(
        self,
        robot: str,
        key: str,
        *,
        run_id: str,
        fingerprint: str,
        details: dict[str, Any],
        recheck: frozenset[str] = frozenset(),
    ) -> bool:
        """Record the item as pending for this run; False if it needs no work.

        Done items stay done. A business exception stays with its person until the record
        changes (a new fingerprint); an unchanged record is not asked about twice, unless its
        reason is one time can cure without the record changing (``recheck``: the goods
        reached the warehouse, a new day's cap).
        """
        return self.claim_many(
            robot, [(key, fingerprint, details)], run_id=run_id, recheck=recheck
        )[0]

    def claim_many(
        self,
        robot: str,
        entries: Sequence[tuple[str, str, dict[str, Any]]],
        *,
        run_id: str,
        recheck: frozenset[str] = frozenset(),
    ) -> list[bool]:
        """``claim`` for each (key, fingerprint, details), in one transaction: a thousand
        pages of a scan are claimed in one commit, not a thousand."""
        with self._tx() as s:
            return [
                self._claim(s, robot, key, run_id, fingerprint, details, recheck)
                for key, fingerprint, details in entries
            ]

    def _claim(
        self,
        s: Session,
        robot: str,
        key: str,
        run_id: str,
        fingerprint: str,
        details: dict[str, Any],
        recheck: frozenset[str],
    ) -> bool:
        now = host_now()
        new = self._insert(WorkItem).values(
            robot=robot,
            item_key=key,
            state=State.PENDING,
            attempts=0,
            fingerprint=fingerprint,
            action="",
            amount_cents=0,
            acted_on="",
            reason_code="",
            error_message="",
            evidence=[],
            details=details,
            run_id=run_id,
            created_at=now,
            updated_at=now,
        )
        # a new item in one statement: two claimers of one key cannot both insert it
        inserted = s.execute(
            new.on_conflict_do_nothing(index_elements=["robot", "item_key"]).returning(WorkItem.id)
        )
        if inserted.first() is not None:
            return True
        row = self._row(s, robot, key)
        assert row is not None
        if row.state == State.DONE or row.state == State.ACTING:
            return False
        unchanged = row.state == State.BUSINESS_EXCEPTION and row.fingerprint == fingerprint
        # every rule it failed, not only the headline: over the cap AND not received is
        # read again too, so its reasons stay true once the goods arrive
        failed = {row.reason_code, *(row.details or {}).get("row", {}).get("reasons", [])}
        if unchanged and not failed & recheck:
            return False
        # a re-check that ends with the same reason stays the earlier run's hand-over
        # (its workbook, its row in the queue), not a new one
        details = {
            **details,
            "recheck": {"run_id": row.run_id, "reason": row.reason_code} if unchanged else None,
        }
        row.state, row.fingerprint, row.run_id = State.PENDING, fingerprint, run_id
        row.details = {**(row.details or {}), **details}
        row.reason_code, row.error_message, row.updated_at = "", "", host_now()
        return True

    def start_acting(
        self,
        robot: str,
        key: str,
        *,
        run_id: str,
        action: str,
        amount_cents: int,
        fingerprint: str,
        daily_cap_cents: int | None,
        day: date,
        review: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        cap_scope: str = "",
    ) -> bool:
        """Mark acting and reserve the money; False (nothing written) if the day's cap is hit.
        ``details`` (the item's report row as decided) is kept in the item's row, so an item
        settled by a later run is reported as it was decided.

        ``cap_scope``: the cap counts only the robot's items whose keys begin with it (a
        flow's items, ``<flow>:…``: each flow its own cap); all of the robot's when empty.

        With ``review`` (a person's approval from a reviewed workbook) the money is the
        person's decision: recorded with its amount but not counted against the robot's own
        daily cap, and False when the item is done, or acting for another run.
        """
        with self._tx() as s:
            row = self._row(s, robot, key)
            if review is not None:
                if row is None or row.state == State.DONE:
                    return False
                if row.state == State.ACTING and row.run_id != run_id:
                    return False
                row.state, row.action, row.amount_cents, row.acted_on = State.ACTING, action, 0, ""
                row.details = {
                    **(row.details or {}),
                    "review": review,
                    "amount_cents": amount_cents,
                }
            else:
                if row is None or row.state not in (State.PENDING, State.ACTING):
                    raise RuntimeError(f"{robot}/{key} is not claimed (state {row and row.state})")
                if daily_cap_cents is not None and amount_cents:
                    self._lock_cap_day(s, f"{robot}:{cap_scope}" if cap_scope else robot, day)
                    committed = s.scalar(
                        select(func.coalesce(func.sum(WorkItem.amount_cents), 0)).where(
                            *_committed_on(robot, day, cap_scope), WorkItem.item_key != key
                        )
                    )
                    if int(committed or 0) + amount_cents > daily_cap_cents:
                        return False
                row.state, row.action, row.amount_cents = State.ACTING, action, amount_cents
                row.acted_on = day.isoformat()
            row.fingerprint, row.run_id = fingerprint, run_id
            if details:
                row.details = {**(row.details or {}), **details}
            row.attempts += 1
            row.updated_at = host_now()
            return True

    def _lock_cap_day(self, s: Session, robot: str, day: date) -> None:
        """Take the day's cap lock: the sum read next is the sum every other reservation of
        the day left (they wait here until this transaction ends)."""
        s.execute(
            self._insert(CapDay)
            .values(robot=robot, day=day.isoformat())
            .on_conflict_do_nothing(index_elements=["robot", "day"])
        )
        s.execute(
            select(CapDay.robot)
            .where(CapDay.robot == robot, CapDay.day == day.isoformat())
            .with_for_update()
        )

    def note_review(self, robot: str, key: str, *, run_id: str, review: dict[str, Any]) -> None:
        """Record a person's decision on an item without changing its state (e.g. hold)."""
        with self._tx() as s:
            row = self._row(s, robot, key)
            if row is None:
                raise RuntimeError(f"{robot}/{key} was never claimed")
            row.details = {**(row.details or {}), "review": review}
            row.run_id, row.updated_at = run_id, host_now()

    def close_reviewed(self, robot: str, key: str, *, run_id: str, review: dict[str, Any]) -> bool:
        """A person decided the item needs nothing done (a parcel not to be linked): done,
        with their decision, nothing acted. False when it is done already or acting."""
        with self._tx() as s:
            row = self._row(s, robot, key)
            if row is None or row.state in (State.DONE, State.ACTING):
                return False
            row.state, row.action, row.amount_cents = State.DONE, "", 0
            row.details = {**(row.details or {}), "review": review, "closed_by_review": True}
            row.run_id, row.updated_at = run_id, host_now()
            return True

    def money_committed(self, robot: str, day: date, cap_scope: str = "") -> int:
        """Cents approved or being approved on ``day``: what the daily cap counts (of the
        items whose keys begin with ``cap_scope``, when given)."""
        with self._tx() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(WorkItem.amount_cents), 0)).where(
                    *_committed_on(robot, day, cap_scope)
                )
            )
            return int(total or 0)

    def finish(
        self,
        robot: str,
        key: str,
        state: State,
        *,
        run_id: str,
        reason_code: str = "",
        message: str = "",
        evidence: list[str] | None = None,
        details: dict[str, Any] | None = None,
        fingerprint: str | None = None,
        acted: bool = True,
    ) -> None:
        """Move an item to a final state (or back to pending), recording why.

        Money reserved by ``start_acting`` is released unless the item is done by our action.
        """
        with self._tx() as s:
            row = self._row(s, robot, key)
            if row is None:
                raise RuntimeError(f"{robot}/{key} was never claimed")
            if state != State.DONE or not acted:
                row.amount_cents, row.acted_on = 0, ""
                if not acted:
                    row.action = ""
            row.state, row.reason_code, row.error_message = state, reason_code, message
            row.run_id, row.updated_at = run_id, host_now()
            if evidence:
                row.evidence = [*(row.evidence or []), *evidence]
            if details:
                row.details = {**(row.details or {}), **details}
            if fingerprint is not None:
                row.fingerprint = fingerprint

    def give_up(
        self,
        robot: str,
        key: str,
        exc: BaseException,
        *,
        run_id: str,
        evidence: list[str],
        details: dict[str, Any] | None = None,
    ) -> str:
        """Record a system exception that outlived its retries; returns the message recorded.

        An item that may have acted (*acting*) stays acting, for the next run to settle by
        reading the live record; any other item becomes a system exception, retried next run.
        """
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        row = self.get(robot, key)
        if row is not None and row.state == State.ACTING:
            self.note_problem(
                robot,
                key,
                run_id=run_id,
                reason_code="SYSTEM_ERROR",
                message=message,
                evidence=evidence,
                details=details,
            )
        else:
            self.finish(
                robot,
                key,
                State.SYSTEM_EXCEPTION,
                run_id=run_id,
                reason_code="SYSTEM_ERROR",
                message=message,
                evidence=evidence,
                details=details,
            )
        return message

    def note_problem(
        self,
        robot: str,
        key: str,
        *,
        run_id: str,
        reason_code: str,
        message: str,
        evidence: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record a failure without changing the state (an unverified action stays *acting*)."""
        with self._tx() as s:
            row = self._row(s, robot, key)
            if row is None:
                raise RuntimeError(f"{robot}/{key} was never claimed")
            row.reason_code, row.error_message, row.run_id = reason_code, message, run_id
            row.updated_at = host_now()
            if evidence:
                row.evidence = [*(row.evidence or []), *evidence]
            if details:
                row.details = {**(row.details or {}), **details}
