"""Each shipment on the open list, read once a day: delivered or moving, done; its tracking
still for ``stalled_after_hours``, handed to a person with how long."""

from __future__ import annotations

from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult
from robots.errors import BusinessException
from robots.stalled.report import REPORT
from robots.stalled.scenario import PAGE, ROW, StalledScenario


class StalledRobot(BaseRobot):
    NAME, REASONS, REPORT = "stalled", REPORT.reasons, REPORT
    scenario: StalledScenario

    def perform(self) -> RunResult:
        return self.run_work(self.work)

    async def work(self) -> None:
        async with self.open_browser() as web:
            async with web.lane() as lane:
                rows = await self.open_list(lane.page, self.scenario.list, ROW)
            # a daily check: the day is in the key, so tomorrow's run reads each order again
            keys = [f"{row['order_id']}@{self.run.clock.today()}" for row in rows]
            todo = self.run.claim(keys, lambda key: (key, "", {}))
            await self.run.work(todo, self.check, lane=web.lane, lanes=2)

    async def check(self, key: str, lane: Lane) -> None:
        order_id = key.split("@")[0]
        async with self.run.item(key, lane=lane) as item:
            item.row["order_id"] = order_id
            detail = self.scenario.detail
            shown = await item.attempt(lambda p: self.open_page(p, detail, PAGE, order_id=order_id))
            item.row.update(state=shown["state"], last_at=shown["last_at"].isoformat())
            hours = (self.run.clock.now() - shown["last_at"]).total_seconds() / 3600
            if shown["state"] != "delivered" and hours >= self.scenario.stalled_after_hours:
                item.row["days"] = round(hours / 24, 1)
                raise BusinessException("STALLED", f"{hours / 24:.1f} 天没有新轨迹", item_id=key)
