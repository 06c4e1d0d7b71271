"""The practice shop's clock: a Chinese shop keeps Beijing time whatever the host's zone.

Every time the sandbox shows or stores (seeded dates, audit rows, warehouse receipts) is a
wall time in ``SANDBOX_TIMEZONE`` (default Asia/Shanghai), as a real platform shows them.
"""

from __future__ import annotations

import os
from datetime import datetime
from zoneinfo import ZoneInfo


def shop_now() -> datetime:
    zone = ZoneInfo(os.environ.get("SANDBOX_TIMEZONE", "Asia/Shanghai"))
    return datetime.now(zone).replace(tzinfo=None)
