"""A flow run: every row of its source claimed under its key, each item's page read, the
rules decide. A hand-over goes to a person with the rule's code and text; ``record`` and
``skip`` end the item done (the workbook keeps what was read); ``act`` takes one of the
flow's actions through the engine's acting protocol: the guard read again, the item marked
acting (its money reserved against the day's cap), the steps pressed, the result read live
and judged by the action's ``landed`` condition; a killed run's acting items are settled
from their live pages before anything else, never pressed twice."""

from __future__ import annotations

import enum
import json
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from robots.engine.fields import FieldReader
from robots.engine.item import ActingRules, Action, Item, Verdict, settle_acting
from robots.engine.pace import Pace
from robots.engine.pages import perform
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunResult, Web
from robots.errors import BusinessException
from robots.flow import words
from robots.flow.rules import Condition, Rules, members
from robots.flow.scenario import (
    FileSource,
    FlowFile,
    FlowSource,
    filled,
    item_key,
    list_days,
    path_names,
    step_names,
)
from robots.flow.source import read_rows
from robots.flow.words import hits as found_words
from robots.reports.items import Column, ItemsReport

if TYPE_CHECKING:
    from playwright.async_api import Page

    from robots.ledger import ItemView


class FlowRobot(BaseRobot):
    NAME = "flow"
    scenario: FlowFile

    def setup(self) -> None:
        flow = self.scenario
        self.name = self.run.scenario_file.stem
        self.rules = Rules(flow.rules, self.run.clock.zone)
        if flow.page is not None:  # each item's page, counted in the run's field health;
            # and the action's result, read off the page it left
            self.read_page = FieldReader.of(
                flow.page, flow.page_kinds, self.run.clock, name="page", tally=self.run.count
            )
            self.page_reader = FieldReader.of(
                flow.page, flow.page_kinds, self.run.clock, name="page"
            )
        # what shows each action took: the page fields its landed condition names, read
        # in the same round trip as the action's success sign
        self.landed_specs = {
            n: {
                f: self.page_reader.js_specs[f]
                for source, f in members(a.landed)
                if source == "page" and f in flow.page_kinds
            }
            for n, a in flow.actions.items()
        }
        self.landed = {n: Condition(a.landed, self.run.clock.zone) for n, a in flow.actions.items()}
        self.REPORT = report_of(flow)  # type: ignore[misc]  # this flow's columns
        self._limiter: Any = None
        # the QC team's word classes ([words]), one automaton for all
        self.matcher = words.matcher(flow.words) if flow.words is not None else None

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
                rows = []
                async with self.open_lane(web) as lane:
                    for values in source.listings():  # one list per for_each value
                        listed = await self.open_list(
                            lane.page, source, flow.row_kinds, **self._days(), **values
                        )
                        rows += [{**values, **row} for row in listed]
            today = self.run.clock.today().isoformat()
            items: dict[str, FlowItem] = {}
            for row in rows:
                key = item_key(flow, self.name, row, today, self.run.run_id)
                items.setdefault(key, FlowItem(key, row))
            if flow.actions:
                await self._settle(web)
            todo = self.run.claim(list(items.values()), lambda it: (it.key, "", {}))
            pages = self.scenario.shop.parallel_pages or self.ws.config.browser.parallel_pages
            await self.run.work(
                todo, self.decide, lane=lambda: self.open_lane(web), lanes=Pace.of(pages)
            )
        if flow.words is not None and flow.words.rise is not None and not self.run.dry_run:
            self._alert_rises()

    def _days(self) -> dict[str, str]:
        """The days a list's path may name (``LIST_VALUES``), on the shop's calendar."""
        return list_days(self.run.clock.today())

    async def goto(self, page: Page, url: str) -> None:
        """Every page the flow opens, at most ``requests_per_second`` (its own limit)."""
        rate = self.scenario.requests_per_second
        if rate is None:
            return await super().goto(page, url)
        if self._limiter is None:  # made in the loop that uses it
            from aiolimiter import AsyncLimiter

            self._limiter = AsyncLimiter(rate, 1.0) if rate >= 1 else AsyncLimiter(1, 1.0 / rate)
        async with self._limiter:
            await super().goto(page, url)

    def open_lane(self, web: Web) -> AbstractAsyncContextManager[Lane]:
        """A page of the flow's browser: logged in as its [login] says, or none (a
        storefront, a public page) without one."""
        return web.lane(anonymous=self.scenario.login is None)

    # an item as a cluster's task message: its key and its row, typed again by the worker
    def encode_item(self, item: FlowItem) -> dict[str, Any]:
        return {"key": item.key, "row": shown(item.row)}

    def decode_item(self, data: dict[str, Any]) -> FlowItem:
        kinds = self.scenario.row_kinds
        row = {n: typed(v, kinds[n].type if n in kinds else "text") for n, v in data["row"].items()}
        return FlowItem(data["key"], row)

    async def decide(self, it: FlowItem, lane: Lane) -> None:
        key, row = it.key, it.row
        async with self.run.item(key, lane=lane, acting=self.acting) as item:
            item.row.update(shown(row))
            await item.attempt(lambda page: self._attempt(page, item, row))

    async def _attempt(self, page: Page, item: Item, row: dict[str, Any]) -> None:
        """Read, decide, act. Safe to repeat: an item an earlier attempt (or a killed run)
        left acting is settled from the live page first, never pressed blindly again."""
        flow, key = self.scenario, item.key
        if flow.page is not None:  # the page's address, in the workbook if it fails
            item.row["@url"] = self.url(flow.page.path, **self._where(row))
        read = await self._read(page, row)
        item.row.update(shown(read))
        item.row.update(queue_values(flow, self.REPORT, {**row, **read}))
        if item.verdict({"page": read, "row": row}) == Verdict.LANDED:
            item.row["outcome"] = "act"
            item.done(counts=[FlowCount.ACTED])  # an earlier press of ours took
            return
        hits = self._hits(item, {**row, **read})
        subject = flow.subject(row)
        earlier = self._earlier(subject, key) if subject is not None else None
        now = self.run.clock.now()
        decision = self.rules.decide(read, row, now, self._last(earlier), hits)
        if subject is not None and not self.run.dry_run:  # for the next run's `last`
            self._remember(subject, key, {**row, **read}, earlier)
        item.row["rule"] = decision.rule
        if decision.note:
            item.row["note"] = decision.note
        if decision.outcome == "hand_over":
            said = f"{decision.text}（规则 {decision.rule}）" if decision.rule else decision.text
            raise BusinessException(decision.code, said, item_id=key)
        item.row["outcome"] = decision.outcome
        if decision.outcome != "act":
            count = FlowCount.RECORDED if decision.outcome == "record" else FlowCount.SKIPPED
            item.done(acted=False, counts=[count])
            return
        action = flow.actions[decision.action]
        # the guard: the page opened again right before the press, as decided (no guard: the
        # read decided on is the live one; the shop's own refusal of a changed record, its
        # stale_text, is the check, as for the built-in robots)
        live = await self._read(page, row) if action.guard else read
        changed = [f for f in action.guard if live.get(f) != read.get(f)]
        if changed:
            f = changed[0]
            raise BusinessException(
                GUARD_CHANGED,
                f"{REASONS[GUARD_CHANGED]}：{f} 判断时为 {read.get(f)!r}，按下前为 "
                f"{live.get(f)!r}（规则 {decision.rule}）",
                item_id=key,
            )
        values = {**row, **live}  # what the steps fill in: as read right before the press
        unread = [n for n in step_names(action) if values.get(n) in (None, "")]
        if unread:  # never a field typed empty
            raise BusinessException(
                STEP_VALUE_UNREAD,
                f"{REASONS[STEP_VALUE_UNREAD]}：{unread[0]}（规则 {decision.rule}）",
                item_id=key,
            )
        action = filled(action, values)
        money = live.get(action.money) if action.money else None
        if action.money and not isinstance(money, Decimal):  # never past the cap unread
            raise BusinessException(
                MONEY_UNREAD,
                f"{REASONS[MONEY_UNREAD]}：{action.money} 读到 {money!r}（规则 {decision.rule}）",
                item_id=key,
            )
        cap = action.daily_cap

        async def read_live() -> dict[str, Any]:
            return {"page": await self._read(page, row), "row": row}

        async def press() -> dict[str, Any]:
            done = await perform(
                page,
                action,
                what=f"{decision.action} {key}",
                item_id=key,
                login_path=self._login_path(),
                then_read=None if action.reread else self.landed_specs[decision.action],
            )
            if done.read is not None:  # the page as the press left it: landed shows there
                shown_now = self._shown_landed(decision.action, done.read, row)
                if shown_now is not None:
                    return shown_now
            return await read_live()  # opened again: a page that does not update in place

        fingerprint = json.dumps({f: str(live.get(f)) for f in action.guard}, ensure_ascii=False)
        acted = await item.act(
            Action(
                decision.action,
                fingerprint,
                amount_cents=cents(money) if isinstance(money, Decimal) else 0,
                daily_cap_cents=cents(cap) if cap is not None else None,
                cap_scope=f"{self.name}:",  # this flow's money: its items' keys
            ),
            press=press,
            read_live=read_live,
        )
        if acted.live is not None:  # the row shows the page as the action left it
            item.row.update(shown(acted.live["page"]))
        if acted.verdict != Verdict.LANDED:  # the shop refused, and the page shows why
            raise BusinessException(
                ACTION_REFUSED, f"{REASONS[ACTION_REFUSED]}（{decision.action}）", item_id=key
            )
        item.done(counts=[FlowCount.ACTED])

    # -- words (客服质检): what the scanned text holds, counted by the hour -----------------
    def _hits(self, item: Item, values: dict[str, Any]) -> list[dict[str, str]]:
        """The words of the flow's classes found in the item's text field (none without
        ``[words]``), shown in its workbook row and, with ``time``, counted in the ledger
        once per class at the item's time."""
        words = self.scenario.words
        if words is None or self.matcher is None:
            return []
        hits = found_words(words, self.matcher, values.get(words.text))
        if hits:
            item.row["word_class"] = "、".join(dict.fromkeys(h["label"] for h in hits))
            item.row["word"] = "、".join(h["word"] for h in hits)
            item.row["word_text"] = "、".join(h["text"] for h in hits)
        at = values.get(words.time) if words.time else None
        if hits and isinstance(at, datetime) and not self.run.dry_run:
            names = [f"{self.name}:{h['kind']}" for h in hits]
            self.run.ledger.mark("flow", names, item.key, _utc(at))
        return hits

    def _alert_rises(self) -> None:
        """Each class whose last hour rose over the hours before it, to the ``[alerts]``
        channels: once per class and level an hour (a flow run every minute says it once)."""
        from robots.alerts import RiseAlert, RunOutcome, deliver

        flow_words = self.scenario.words
        assert flow_words is not None and flow_words.rise is not None
        rise = flow_words.rise
        now = _utc(self.run.clock.now())
        since = now - timedelta(hours=rise.hours + 1)
        times: dict[str, list[datetime]] = {kind: [] for kind in flow_words.classes}
        for name, at in self.run.ledger.marks_since("flow", f"{self.name}:", since):
            kind = name.split(":", 1)[1]
            if kind in times:
                times[kind].append(at)
        found = words.rises(
            times,
            now,
            hours=rise.hours,
            least=rise.least,
            warning=rise.warning,
            severe=rise.severe,
        )
        keys = [f"{self.name}:rise:{r.kind}" for r in found]
        said = self.run.ledger.recall("flow", keys) if keys else {}
        for r, key in zip(found, keys, strict=True):
            before = json.loads(said[key]) if key in said else None
            if before is not None:
                at = datetime.fromisoformat(before["at"])
                higher = r.level == "critical" and before["level"] != "critical"
                if now - at < timedelta(hours=1) and not higher:
                    continue  # said already this hour
            label = flow_words.classes[r.kind].label
            reason = (
                f"{label}（{r.kind}）近 1 小时命中 {r.last} 次，前 {r.hours} 小时平均 "
                f"{r.baseline:.1f} 次/小时，上升 {r.ratio:+.0%}"
            )
            outcome = RunOutcome(
                robot="flow",
                target=self.name,
                run_id=self.run.run_id,
                counts={},
                title=self.scenario.title,
            )
            alert = RiseAlert(r.level, outcome, (reason,))
            sent = deliver(alert, self.ws.config.alerts, self.ws.credentials().get)
            logger.warning("rise {}: {} (sent to {})", r.level, reason, ", ".join(sent) or "none")
            record = {"level": r.level, "at": now.isoformat()}
            self.run.ledger.remember("flow", {key: json.dumps(record)}, run_id=self.run.run_id)

    async def _read(self, page: Page, row: dict[str, Any]) -> dict[str, Any]:
        flow = self.scenario
        if flow.page is None:
            return {}
        spec = flow.page
        return await self.open_page(
            page, spec, flow.page_kinds, reader=self.read_page, **self._where(row)
        )

    def _where(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row's values the item's page path names."""
        assert self.scenario.page is not None
        names = path_names(self.scenario.page.path)
        return {n: v for n, v in shown(row).items() if n in names}

    # -- what the flow remembers of an item's subject, from one run to the next -----------
    # kept as {"item": key, "values": …, "before": the memory an earlier item left}: an item
    # done again (a run killed before its ending) sees the earlier item's, never its own
    def _earlier(self, subject: str, key: str) -> dict[str, Any] | None:
        """The memory an earlier item of ``subject`` left (read once an item): the stored
        one, or, when that is this item's own (a run killed after writing it), the one
        before it."""
        stored = self.run.real_ledger.recall("flow", [self._memory_key(subject)])
        memory = json.loads(next(iter(stored.values()))) if stored else None
        if memory is not None and memory.get("item") == key:
            memory = memory.get("before")
        return memory or None

    def _last(self, earlier: dict[str, Any] | None) -> dict[str, Any]:
        """What the rules see as ``last``: the earlier item's values, typed; empty if none."""
        if earlier is None:
            return {}
        kinds = {**self.scenario.row_kinds, **self.scenario.page_kinds}
        return {
            n: typed(v, kinds[n].type if n in kinds else "text")
            for n, v in earlier["values"].items()
        }

    def _remember(
        self, subject: str, key: str, values: dict[str, Any], earlier: dict[str, Any] | None
    ) -> None:
        before = {k: v for k, v in earlier.items() if k != "before"} if earlier else None
        memory = {"item": key, "values": shown(values), "before": before}
        self.run.ledger.remember(
            "flow",
            {self._memory_key(subject): json.dumps(memory, ensure_ascii=False)},
            run_id=self.run.run_id,
        )

    def _memory_key(self, subject: str) -> str:
        return f"{self.name}:{subject}"

    def _shown_landed(
        self, action: str, raw: dict[str, Any], row: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The page's fields read as the press left them, if they show ``action`` landed;
        None when they do not (or cannot be read whole): only a fresh read may say so."""
        try:
            names = [n for n in raw if n in self.page_reader.fields]  # not their labels
            shown_now = {"page": self.page_reader.read(raw, names), "row": row}
            landed = self._judge(action, shown_now) == Verdict.LANDED
        except BusinessException:  # a field the page no longer shows, or landed unknown
            return None
        return shown_now if landed else None

    def _login_path(self) -> str:
        login = self.scenario.login
        return login.path if login is not None else "/login"

    def _judge(self, action: str, live: dict[str, Any]) -> Verdict:
        """Whether ``action`` took, from the page read live: its ``landed`` condition. One
        that cannot judge is never taken for "did not happen" (that would press again)."""
        holds = self.landed[action].holds(live["page"], live["row"], self.run.clock.now())
        if isinstance(holds, str):
            raise BusinessException(
                LANDED_UNKNOWN, f"{REASONS[LANDED_UNKNOWN]}：{holds}", item_id=""
            )
        return Verdict.LANDED if holds else Verdict.NOT_LANDED

    @property
    def acting(self) -> ActingRules[dict[str, Any]]:
        return ActingRules(judge=self._judge, describe=lambda live: repr(live["page"]))

    async def _settle(self, web: Web) -> None:
        """Items a killed run left acting, settled from their live pages before the claim."""

        async def read(view: ItemView) -> dict[str, Any]:
            row = dict(view.details.get("row", {}))
            async with self.open_lane(web) as lane:
                return {
                    "page": await self.run.retried(
                        f"settling {view.item_key}", lambda: self._read(lane.page, row)
                    ),
                    "row": row,
                }

        await settle_acting(self.run, self.acting, read)


@dataclass(frozen=True, eq=False)
class FlowItem:
    """One item of a flow's run: its ledger key and the source row it came from."""

    key: str
    row: dict[str, Any]


class FlowCount(enum.StrEnum):
    ACTED = "acted"
    RECORDED = "recorded"
    SKIPPED = "skipped"


GUARD_CHANGED = "GUARD_CHANGED"
ACTION_REFUSED = "ACTION_REFUSED"
LANDED_UNKNOWN = "LANDED_UNKNOWN"
MONEY_UNREAD = "MONEY_UNREAD"
STEP_VALUE_UNREAD = "STEP_VALUE_UNREAD"
REASONS = {
    STEP_VALUE_UNREAD: "操作要填写的值没有读到，没有操作",
    MONEY_UNREAD: "操作涉及的金额没有读到，不能按每日上限操作",
    GUARD_CHANGED: "判断后页面变了，没有操作",
    ACTION_REFUSED: "店铺拒绝了操作",
    LANDED_UNKNOWN: "无法确认操作是否生效，请人工核对",
}


def _utc(at: datetime) -> datetime:
    """A moment as the ledger keeps marks: UTC, without a zone."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def cents(money: Decimal) -> int:
    return int((money * 100).to_integral_value())


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


def typed(value: Any, kind: str) -> Any:
    """A value ``shown`` wrote, as the field's type reads it again."""
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "money":
        return Decimal(str(value))
    return value


def report_of(flow: FlowFile) -> ItemsReport:
    """The flow's workbook: a column per field it reads (``[report] columns``: those), its
    header ``[report] headers`` gives, else its label or its file column's header, the name
    beside (a mapped code by the shop's word); each hand-over's reason is what its rule
    says, in Chinese, with the rule's number."""
    specs = {**flow.source.fields, **(flow.page.fields if flow.page is not None else {})}
    kinds = {**flow.row_kinds, **flow.page_kinds}
    headers = {
        **(flow.source.headers if isinstance(flow.source, FileSource) else {}),
        **{n: spec.label for n, spec in specs.items() if spec.label},
        **flow.report.headers,
    }
    columns = []
    for name in flow.report.columns or list(specs):
        spec = specs[name]
        label = headers.get(name)
        words = {c: w for w, c in reversed((spec.map or {}).items()) if w != c}  # code: word
        kind = {"datetime": "time", "money": "money"}.get(kinds[name].type, "")
        columns.append(Column(f"{label} {name}" if label else name, name, 18, kind, words))
    if flow.words is not None:
        columns.append(Column("词类 word class", "word_class", 12))
        columns.append(Column("命中词 word", "word", 12))
        columns.append(Column("命中内容 matched", "word_text", 16))
    if any(r.note for r in flow.rules):
        columns.append(Column("标记 note", "note", 10))
    columns.append(Column("规则 rule", "rule", 8))
    columns.append(Column("结果 outcome", "outcome", 12, names=OUTCOMES))
    return ItemsReport(
        robot="flow",
        title=flow.title,
        columns=columns,
        reasons={},
        failed_pages=flow.page is not None,
    )


def queue_values(flow: FlowFile, report: ItemsReport, values: dict[str, Any]) -> dict[str, Any]:
    """What the open-exceptions queue shows of an item beside its reason (every flow in one
    sheet): its money (``FlowFile.money_field``) and the flow's ``report`` columns as one
    text, each by its header."""
    said = "；".join(
        f"{c.header.rsplit(' ', 1)[0]}：{_said(values.get(c.key), c)}"
        for c in report.columns
        if c.key in values and values.get(c.key) not in (None, "")
    )
    money = values.get(flow.money_field) if flow.money_field else None
    return {"@values": said, "@money": float(money) if isinstance(money, Decimal) else None}


def _said(value: Any, column: Column) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return f"¥{value:,.2f}"
    if isinstance(value, str) and value in column.names:
        return column.names[value]
    return str(value)


OUTCOMES = {"record": "已记录", "skip": "跳过", "act": "已操作"}

# every flow's items in `robots report RUN`, a killed run's workbook and the open-exceptions
# queue: the item (its key begins with its flow's name), its money, what was read, and what
# its rule said
GENERIC = ItemsReport(
    robot="flow",
    title="流程",
    columns=[
        Column("规则 rule", "rule", 8),
        Column("金额 money", "@money", 12, "money"),
        Column("读到的内容 values", "@values", 60),
    ],
    reasons={},
)
queue_sheet = GENERIC.queue_sheet
write_run = GENERIC.write_run
