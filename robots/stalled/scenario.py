"""What the stalled-shipment check reads: the list of open shipments, each one's logistics page."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from robots import config
from robots.engine.fields import FieldKind, field_problems

Problems = list[tuple[str, str]]  # (key, what is wrong)

ROW = {"order_id": FieldKind(means="The order the shipment belongs to (its item key).")}
PAGE = {
    "state": FieldKind(
        choices=("moving", "delivered"),
        means="Where the parcel is, mapped: moving (still on its way, or returning) or delivered.",
    ),
    "last_at": FieldKind(type="datetime", means="When the tracking last moved (its newest event)."),
}


class StalledScenario(config.Strict):
    shop: config.Shop
    login: config.LoginPage
    list: config.ListSpec
    detail: config.PageSpec
    stalled_after_hours: int = Field(default=72, ge=1, le=24 * 60)

    def problems(self) -> Problems:
        found = field_problems(self.list.fields, ROW, key="list.fields", required=ROW)
        return found + field_problems(self.detail.fields, PAGE, key="detail.fields", required=PAGE)


def load(file: Path, *, base_url: str | None = None) -> StalledScenario:
    return config.load_scenario_file(StalledScenario, file, base_url=base_url)


FIELD_TABLES = {"list.fields": ROW, "detail.fields": PAGE}
