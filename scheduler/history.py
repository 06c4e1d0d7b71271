"""What each schedule did: one row per fire (ran, skipped, missed, locked out, timed out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Integer, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class _Base(DeclarativeBase):
    pass


class ScheduleRun(_Base):
    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule: Mapped[str] = mapped_column(String(100), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(40))  # see OUTCOMES
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class PausedSchedule(_Base):
    """A schedule someone paused (the console): its fires are skipped until resumed."""

    __tablename__ = "paused_schedules"

    schedule: Mapped[str] = mapped_column(String(100), primary_key=True)
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime)


OUTCOMES = {
    0: "ok",
    1: "system exceptions",
    2: "configuration or credential error",
    75: "skipped: another run of the robot held its lock",
    143: "stopped (SIGTERM)",
}


@dataclass(frozen=True)
class Fire:
    schedule: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    exit_code: int | None
    run_id: str
    detail: str


BUSY = "skipped: its previous run was still going"


class History:
    def __init__(self, path: Path, tz: ZoneInfo) -> None:
        self.tz = tz
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
        _Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def started(self, schedule: str, outcome: str = "running", detail: str = "") -> int:
        with self._sessions.begin() as s:
            row = ScheduleRun(
                schedule=schedule, started_at=self._now(), outcome=outcome, detail=detail
            )
            if outcome != "running":
                row.ended_at = row.started_at
            s.add(row)
            s.flush()
            return row.id

    def ended(
        self, fire_id: int, outcome: str, *, exit_code: int | None, run_id: str, detail: str = ""
    ) -> None:
        with self._sessions.begin() as s:
            row = s.get(ScheduleRun, fire_id)
            if row is not None:
                row.ended_at, row.outcome, row.exit_code = self._now(), outcome, exit_code
                row.run_id, row.detail = run_id, detail

    def pause(self, schedule: str, by: str) -> None:
        with self._sessions.begin() as s:
            if s.get(PausedSchedule, schedule) is None:
                s.add(PausedSchedule(schedule=schedule, by=by, at=self._now()))

    def resume(self, schedule: str) -> None:
        with self._sessions.begin() as s:
            row = s.get(PausedSchedule, schedule)
            if row is not None:
                s.delete(row)

    def paused(self) -> dict[str, tuple[str, datetime]]:
        """Each paused schedule: who paused it, and when (the scheduler's wall time)."""
        with self._sessions.begin() as s:
            return {r.schedule: (r.by, r.at) for r in s.scalars(select(PausedSchedule))}

    def _now(self) -> datetime:
        """Wall time in the scheduler's zone, as the schedules are written."""
        return datetime.now(self.tz).replace(tzinfo=None)

    def fires(
        self, schedule: str | None = None, limit: int = 100, *, busy: bool = True
    ) -> list[Fire]:
        """Newest first; ``busy=False`` leaves out fires skipped because a run was going."""
        with self._sessions.begin() as s:
            q = select(ScheduleRun).order_by(ScheduleRun.id.desc()).limit(limit)
            if schedule is not None:
                q = q.where(ScheduleRun.schedule == schedule)
            if not busy:
                q = q.where(ScheduleRun.outcome != BUSY)
            return [
                Fire(
                    r.schedule, r.started_at, r.ended_at, r.outcome, r.exit_code, r.run_id, r.detail
                )
                for r in s.scalars(q)
            ]
