"""A flow run: every row of its source list claimed under its key, each item's page read,
the rules decide. Read-only so far: a hand-over goes to a person with the rule's code and
text; ``record`` and ``skip`` end the item done (the workbook keeps what was read)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult
from robots.errors import BusinessException
from robots.flow.rules import Rules
from robots.flow.scenario import FileSource, FlowFile, FlowSource, item_key, path_names
from robots.flow.source import read_rows
from robots.reports.items import Column, ItemsReport


class FlowRobot(BaseRobot):
    NAME = "flow"
    scenario: FlowFile

    def setup(self) -> None:
        flow = self.scenario
        self.name = self.run.scenario_file.stem
        self.rules = Rules(flow.rules)
        self.rows: dict[str, dict[str, Any]] = {}
        self.REPORT = report_of(flow)  # type: ignore[misc]  # this flow's columns

    def perform(self) -> RunResult:
        return self.run_work(self.work, summary={"flow": self.name})

    async def work(self) -> None:
        flow = self.scenario
        source = flow.source
        file_rows = None
        if isinstance(source, FileSource):  # read whole, refused whole, before any page
            file_rows = read_rows(
                source.file,
                source.sheet,
                source.fields,
                source.headers,
                flow.row_kinds,
                self.run.clock,
            )
        async with self.open_browser() as web:
            if file_rows is not None:
                rows = file_rows
            else:
                assert isinstance(source, FlowSource)
                async with web.lane() as lane:
                    rows = await self.open_list(lane.page, source, flow.row_kinds)
            today = self.run.clock.today().isoformat()
            for row in rows:
                self.rows.setdefault(item_key(flow, self.name, row, today), row)
            todo = self.run.claim(list(self.rows), lambda key: (key, "", {}))
            await self.run.work(todo, self.decide, lane=web.lane, lanes=2)

    async def decide(self, key: str, lane: Lane) -> None:
        flow, row = self.scenario, self.rows[key]
        async with self.run.item(key, lane=lane) as item:
            item.row.update(shown(row))
            read: dict[str, Any] = {}
            if flow.page is not None:
                spec, kinds = flow.page, flow.page_kinds
                where = {n: v for n, v in shown(row).items() if n in path_names(spec.path)}
                read = await item.attempt(
                    lambda p: self.open_page(p, spec, kinds, table="page", **where)
                )
                item.row.update(shown(read))
            decision = self.rules.decide(read, row, self.run.clock.now())
            item.row["rule"] = decision.rule
            if decision.outcome == "hand_over":
                said = (
                    f"{decision.text}（规则 {decision.rule}）" if decision.rule else decision.text
                )
                raise BusinessException(decision.code, said, item_id=key)
            item.row["outcome"] = decision.outcome
            self.run.count({"record": "recorded", "skip": "skipped"}[decision.outcome])


def shown(values: dict[str, Any]) -> dict[str, Any]:
    """Read values as the ledger keeps an item's row (JSON): times as ISO text, money as
    numbers."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, Decimal):
            v = float(v)
        out[k] = v
    return out


def report_of(flow: FlowFile) -> ItemsReport:
    """The flow's workbook: a column per field it reads (its label, the name beside); each
    hand-over's reason is what its rule says, in Chinese, with the rule's number."""
    specs = {**flow.source.fields, **(flow.page.fields if flow.page is not None else {})}
    kinds = {**flow.row_kinds, **flow.page_kinds}
    columns = [
        Column(
            f"{spec.label} {name}" if spec.label else name,
            name,
            18,
            {"datetime": "time", "money": "money"}.get(kinds[name].type, ""),
        )
        for name, spec in specs.items()
    ]
    columns.append(Column("规则 rule", "rule", 8))
    columns.append(Column("结果 outcome", "outcome", 12, names=OUTCOMES))
    return ItemsReport(robot="flow", title=flow.title, columns=columns, reasons={})


OUTCOMES = {"record": "已记录", "skip": "跳过"}

# every flow's items in `robots report RUN`, a killed run's workbook and the open-exceptions
# queue: the item (its key begins with its flow's name) and what its rule said
GENERIC = ItemsReport(
    robot="flow", title="流程", columns=[Column("规则 rule", "rule", 8)], reasons={}
)
queue_sheet = GENERIC.queue_sheet
write_run = GENERIC.write_run
