"""The shop's clock: every "now" and "today" a robot uses is the shop's, never the host's.

A Chinese shop's return window, daily cap and deadlines run on Beijing time whatever zone the
server is in (most servers keep UTC: with the host's clock, a return on day 8 was approved
between 00:00 and 08:00 and the daily cap rolled over at 08:00). Times read off the shop's
pages are wall times in the shop's zone; ``ShopClock.read`` makes them zone-aware.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"


def utc_now() -> datetime:
    return datetime.now(UTC)


def host_now() -> datetime:
    """The host's wall time, naive: what the ledger's own timestamps (runs, updates) keep."""
    return datetime.now(UTC).astimezone().replace(tzinfo=None)


class ShopClock:
    """Zone-aware "now" in the shop's zone. ``source`` gives the instant (tests pin it)."""

    def __init__(self, zone: str = DEFAULT_ZONE, *, source: Callable[[], datetime] = utc_now):
        self.zone = ZoneInfo(zone)
        self._source = source

    def now(self) -> datetime:
        return self._source().astimezone(self.zone)

    def today(self) -> date:
        """The shop's calendar day: the daily cap's day, the return window's "today"."""
        return self.now().date()

    def read(self, moment: datetime) -> datetime:
        """A time read off a page: naive means the shop's wall time; aware is converted."""
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self.zone)
        return moment.astimezone(self.zone)

    def wall(self, moment: datetime) -> datetime:
        """The shop's wall time without a zone (Excel cells cannot hold a zone)."""
        return moment.astimezone(self.zone).replace(tzinfo=None) if moment.tzinfo else moment
