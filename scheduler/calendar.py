"""Whether a schedule may fire now: working days (public holidays, make-up days) and blackouts.

Pure functions over a date or time; the holidays package keeps the official calendar
(including the weekend days China makes into working days around long holidays).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from functools import lru_cache

import holidays

from robots.config import Blackout


@lru_cache(maxsize=8)
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def non_working_reason(
    day: date, country: str = "CN", days_off: Collection[date] = ()
) -> str | None:
    """Why ``day`` is not a working day (holiday name, weekend, company day off), or None."""
    if day in days_off:
        return "company day off"
    cal = _calendar(country, day.year)
    if cal.is_working_day(day):
        return None
    name = cal.get(day)
    return f"public holiday ({name})" if name else "weekend"


def blackout_at(moment: datetime, blackouts: list[Blackout]) -> Blackout | None:
    """The blackout window ``moment`` (naive, in the scheduler's zone) falls in, if any."""
    for b in blackouts:
        if b.start <= moment < b.end:
            return b
    return None
