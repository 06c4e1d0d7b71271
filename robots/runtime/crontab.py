"""Crontab lines as APScheduler triggers that mean what they mean in a crontab.

Pure: no workspace, no robots; ``robots.config`` uses ``cron_trigger`` to check a schedule's
``cron`` when robots.toml is loaded, the scheduler service (``scheduler/``) to build its jobs.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """Crontab weekdays (0 or 7 = Sunday, 1 = Monday) as day names: APScheduler 3 counts
    0 = Monday, so "1-5" would otherwise mean Tuesday to Saturday."""
    if not any(ch.isdigit() for ch in field):
        return field  # *, or names: the same in both
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            low, high = int(a), int(b)
        else:
            low = high = int(span)
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high):
            raise ValueError(f"weekday {part!r} out of 0-7")
        days.update(d % 7 for d in range(low, high + 1, int(step) if step else 1))
    return ",".join(CRON_DAYS[d] for d in sorted(days))


def cron_trigger(expr: str, tz: ZoneInfo | None = None) -> Any:
    """An APScheduler CronTrigger that means what the same line means in a crontab."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"got {len(fields)} fields")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_cron_weekdays(weekday),
        timezone=tz,
    )
