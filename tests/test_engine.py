"""The engine's item lifecycle and acting protocol, with a stub shop (no browser): fast. Each
test runs on a SQLite ledger and on a PostgreSQL one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from robots.config import RetrySettings, Workspace, WorkspaceConfig
from robots.engine.item import ActingRules, Action, Item, Outcome, Verdict, settle_acting
from robots.engine.run import RobotRun, RunResult
from robots.errors import BusinessException, PageError, StaleRecord
from robots.ledger import Ledger, State
from robots.runtime.clock import ShopClock


@dataclass(frozen=True)
class Record:
    status: str  # PENDING | PAID | CLOSED
    version: int

    @property
    def fingerprint(self) -> str:
        return f"{self.status}/{self.version}"


class StubShop:
    """A shop with one kind of action (pay), a press counter and injectable failures."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.presses: dict[str, int] = {}
        self.fail_reads: dict[str, int] = {}  # key -> reads that fail before one works
        self.lose_answer: set[str] = set()  # press lands, the answer is lost (a timeout)
        self.resend: set[str] = set()  # press lands, the client re-sends: refused as stale

    async def read(self, key: str) -> Record:
        if self.fail_reads.get(key, 0) > 0:
            self.fail_reads[key] -= 1
            raise PageError(f"{key}: 500")
        return self.records[key]

    async def pay(self, key: str, seen: Record) -> Record:
        self.presses[key] = self.presses.get(key, 0) + 1
        now = self.records[key]
        if now != seen:
            raise StaleRecord("changed since it was read")
        self.records[key] = Record("PAID", now.version + 1)
        if key in self.lose_answer:
            raise TimeoutError("no answer")
        if key in self.resend:  # the re-sent request finds the record changed
            raise StaleRecord("the shop refused: the record changed")
        return self.records[key]


def judge(action: str, live: Record) -> Verdict:
    if live.status == "PAID":
        return Verdict.LANDED
    return Verdict.NOT_LANDED if live.status == "PENDING" else Verdict.ELSEWHERE


RULES = ActingRules[Record](judge=judge, describe=lambda r: r.status)


def workspace(root: Path) -> Workspace:
    config = WorkspaceConfig(retry=RetrySettings(attempts=3, wait_initial_s=0, wait_max_s=0))
    return Workspace(root, config, root / "robots.toml")


def new_run(root: Path) -> RobotRun:
    return RobotRun(workspace(root), "stub", scenario_file=root / "stub.toml")


async def work_one(run: RobotRun, shop: StubShop, key: str, cap: int | None = None) -> Item:
    run.ledger.claim("stub", key, run_id=run.run_id, fingerprint="", details={})

    async def attempt(_page: object) -> None:
        live = await shop.read(key)
        verdict = item.verdict(live)
        if verdict == Verdict.LANDED:
            item.done()
            return
        if live.status == "CLOSED":
            raise BusinessException("NOT_PENDING", "closed")
        acted = await item.act(
            Action("pay", live.fingerprint, amount_cents=100, daily_cap_cents=cap),
            press=lambda: shop.pay(key, live),
            read_live=lambda: shop.read(key),
        )
        item.done(acted=acted.verdict == Verdict.LANDED)

    async with run.item(key, acting=RULES) as item:
        await item.attempt(attempt)
    return item


def run_items(root: Path, shop: StubShop, keys: list[str], cap: int | None = None) -> RunResult:
    run = new_run(root)
    items: list[Item] = []

    async def work() -> None:
        for key in keys:
            items.append(await work_one(run, shop, key, cap))

    result = run.run(work, where="the stub shop", report=lambda _r: None)
    result.details["items"] = items
    return result


def pending(*keys: str) -> StubShop:
    shop = StubShop()
    for key in keys:
        shop.records[key] = Record("PENDING", 1)
    return shop


def work_a(root: Path, shop: StubShop, cap: int | None = None) -> tuple[RunResult, Item]:
    """Run item "a" through the lifecycle; the run's result and the item."""
    result = run_items(root, shop, ["a"], cap)
    [item] = result.details["items"]
    return result, item


@pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
def _ledger(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every engine test on the workspace's SQLite file and on a PostgreSQL database (the
    cluster's ledger, through ROBOTS_LEDGER)."""
    if request.param == "sqlite":
        yield
        return
    monkeypatch.setenv("ROBOTS_LEDGER", request.getfixturevalue("postgres_url"))
    yield


def ledger_row(root: Path, key: str) -> object:
    ledger = Ledger.of(workspace(root))
    try:
        return ledger.get("stub", key)
    finally:
        ledger.close()


def test_business_exception_is_handed_over_and_not_retried(tmp_path: Path) -> None:
    shop = StubShop()
    shop.records["a"] = Record("CLOSED", 1)
    result, item = work_a(tmp_path, shop)
    assert (item.outcome, item.reason_code, item.attempts) == (
        Outcome.HANDED_OVER,
        "NOT_PENDING",
        1,
    )
    assert result.counts == {"handed_to_person": 1} and result.exit_code == 0
    row = ledger_row(tmp_path, "a")
    assert row.state == State.BUSINESS_EXCEPTION and row.reason_code == "NOT_PENDING"
    assert shop.presses == {}


@pytest.mark.parametrize(
    ("failures", "outcome", "exit_code"),
    [(2, Outcome.DONE, 0), (99, Outcome.SYSTEM_EXCEPTION, 1)],
    ids=["recovers on the third attempt", "given up after the last attempt"],
)
def test_system_exceptions_are_retried_with_a_bound(
    tmp_path: Path, failures: int, outcome: Outcome, exit_code: int
) -> None:
    shop = pending("a")
    shop.fail_reads["a"] = failures
    result, item = work_a(tmp_path, shop)
    assert (item.outcome, item.attempts, result.exit_code) == (outcome, 3, exit_code)
    row = ledger_row(tmp_path, "a")
    if outcome == Outcome.DONE:
        assert shop.presses == {"a": 1} and row.state == State.DONE
    else:
        assert shop.presses == {} and result.counts == {"system_exception": 1}
        assert row.state == State.SYSTEM_EXCEPTION and "PageError: a: 500" in row.error_message


def test_lost_answer_is_verified_on_retry_not_pressed_again(tmp_path: Path) -> None:
    shop = pending("a")
    shop.lose_answer.add("a")
    result, _ = work_a(tmp_path, shop)
    assert shop.presses == {"a": 1}
    assert ledger_row(tmp_path, "a").state == State.DONE and result.exit_code == 0


def test_a_press_that_landed_before_a_crash_settles_as_done_without_a_second_press(
    tmp_path: Path,
) -> None:
    shop = pending("a")
    run = new_run(tmp_path)

    async def crash_after_press() -> None:
        run.ledger.claim("stub", "a", run_id=run.run_id, fingerprint="", details={})
        async with run.item("a", acting=RULES) as item:

            async def attempt(_page: object) -> None:
                live = await shop.read("a")

                async def press_then_die() -> Record:
                    await shop.pay("a", live)
                    raise SystemExit("killed")  # the process dies before it sees the answer

                await item.act(
                    Action("pay", live.fingerprint, amount_cents=100),
                    press=press_then_die,
                    read_live=lambda: shop.read("a"),
                )

            await item.attempt(attempt)

    with pytest.raises(SystemExit):
        asyncio.run(crash_after_press())
    run.ledger.close()
    row = ledger_row(tmp_path, "a")
    assert row.state == State.ACTING and row.amount_cents == 100  # the money stays reserved

    second = new_run(tmp_path)

    async def settle() -> None:
        await settle_acting(second, RULES, lambda view: shop.read(view.item_key))

    result = second.run(settle, where="the stub shop", report=lambda _r: None)
    assert result.counts == {"settled_on_resume": 1}
    assert shop.presses == {"a": 1}
    row = ledger_row(tmp_path, "a")
    assert (
        row.state == State.DONE
        and row.amount_cents == 100
        and row.details == {"settled_on_resume": "PAID"}
    )


def test_refusal_after_our_press_that_landed_counts_as_ours(tmp_path: Path) -> None:
    """A browser re-sent a request that had landed; the shop refused the duplicate."""
    shop = pending("a")
    shop.resend.add("a")
    _, item = work_a(tmp_path, shop, cap=100)
    assert item.outcome == Outcome.DONE and shop.presses == {"a": 1}
    row = ledger_row(tmp_path, "a")
    assert row.state == State.DONE and row.amount_cents == 100  # counted against the cap


def test_refusal_of_a_changed_record_releases_the_money(tmp_path: Path) -> None:
    shop = pending("a")
    original = shop.pay

    async def someone_edits_first(key: str, seen: Record) -> Record:
        shop.records[key] = replace(shop.records[key], version=2)  # the buyer edits it
        return await original(key, seen)

    shop.pay = someone_edits_first  # type: ignore[method-assign]
    _, item = work_a(tmp_path, shop, cap=100)
    assert (item.outcome, item.reason_code) == (Outcome.HANDED_OVER, "STALE_RECORD")
    row = ledger_row(tmp_path, "a")
    assert row.state == State.BUSINESS_EXCEPTION and row.amount_cents == 0


def test_daily_cap_is_reserved_when_acting(tmp_path: Path) -> None:
    shop = pending(*"abc")
    result = run_items(tmp_path, shop, ["a", "b", "c"], cap=200)
    assert shop.presses == {"a": 1, "b": 1}
    [_, _, third] = result.details["items"]
    assert third.reason_code == "DAILY_CAP_REACHED"


def test_a_failed_run_is_recorded_with_its_error(tmp_path: Path) -> None:
    run = new_run(tmp_path)

    async def down() -> None:
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(Exception, match="could not work with the stub shop") as caught:
        run.run(down, where="the stub shop", report=lambda _r: None)
    assert type(caught.value).__name__ == "SystemException"
    ledger = Ledger.of(workspace(tmp_path))
    [view] = ledger.recent_runs()
    ledger.close()
    assert view.ended_at is not None and view.summary["exit_code"] == 1
    assert view.summary["failure"].startswith("SystemException: could not work with the stub")


# -- the shop's clock ---------------------------------------------------------------------------
def at(utc: datetime) -> ShopClock:
    return ShopClock("Asia/Shanghai", source=lambda: utc)


def test_shop_day_is_beijing_day_on_a_utc_host() -> None:
    # 16:30 UTC on the 23rd is 00:30 on the 24th in Beijing
    clock = at(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    assert clock.today() == date(2026, 11, 24)
    assert clock.now().hour == 0 and clock.now().minute == 30


def test_page_times_are_shop_wall_times() -> None:
    clock = at(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    read = clock.read(datetime(2026, 11, 24, 0, 10))
    assert read < clock.now() and clock.wall(read) == datetime(2026, 11, 24, 0, 10)


def test_the_progress_bar_advances_for_every_element_of_the_work_list(tmp_path: Path) -> None:
    """Elements worked as items and those that are not (a held review row) both count."""
    import io

    from rich.console import Console

    from robots.engine.hooks import Progress
    from robots.engine.run import RunOptions

    console = Console(file=io.StringIO(), force_terminal=True)
    run = RobotRun(
        workspace(tmp_path), "stub", tmp_path / "stub.toml", options=RunOptions(console=console)
    )
    [bar] = [h for h in run.hooks if isinstance(h, Progress)]
    shop = pending("a", "b")
    seen: list[float] = []

    async def handle(key: str, _lane: object) -> None:
        if key != "held":
            await work_one(run, shop, key)

    original = bar.work_finished

    def finished(r: RobotRun) -> None:
        seen.append(bar._bar.tasks[0].completed)
        original(r)

    bar.work_finished = finished  # type: ignore[method-assign]
    run.run(
        lambda: run.work(["a", "held", "b"], handle), where="the stub shop", report=lambda _: None
    )
    assert seen == [3]


def test_items_fed_while_the_work_goes_on_are_each_worked_once(tmp_path: Path) -> None:
    """A crawl feeds the work loop list by list: three lanes start on the first list while
    later ones arrive; every item is worked once, and the progress bar's total grows."""
    import io

    from rich.console import Console

    from robots.engine.hooks import Progress
    from robots.engine.run import RunOptions

    console = Console(file=io.StringIO(), force_terminal=True)
    run = RobotRun(
        workspace(tmp_path), "stub", tmp_path / "stub.toml", options=RunOptions(console=console)
    )
    [bar] = [h for h in run.hooks if isinstance(h, Progress)]
    lists = [[f"l{n}-{i}" for i in range(k)] for n, k in enumerate((5, 0, 7, 1))]
    worked: list[str] = []
    fed: list[int] = []
    totals: list[float] = []

    async def feed() -> AsyncIterator[list[str]]:
        for batch in lists:
            await asyncio.sleep(0.01)
            fed.append(len(worked))
            yield batch

    async def handle(key: str, _lane: object) -> None:
        await asyncio.sleep(0.005)
        worked.append(key)

    original = bar.work_finished

    def finished(r: RobotRun) -> None:
        totals.append(bar._bar.tasks[0].total)
        original(r)

    bar.work_finished = finished  # type: ignore[method-assign]
    result = run.run(
        lambda: run.work([], handle, lanes=3, feed=feed()),
        where="the stub shop",
        report=lambda _: None,
    )
    assert result.exit_code == 0
    assert sorted(worked) == sorted(k for batch in lists for k in batch)
    assert fed[-1] > 0, "the work waited for the whole feed"  # overlapped, not one after
    assert totals == [13]


def test_a_stop_while_the_feed_goes_on_leaves_the_rest_not_started(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    worked: list[int] = []
    fed: list[int] = []

    async def feed() -> AsyncIterator[list[int]]:
        for n in range(5):
            await asyncio.sleep(0.01)
            fed.extend(range(n * 10, n * 10 + 10))
            yield fed[-10:]

    async def handle(key: int, _lane: object) -> None:
        worked.append(key)
        if len(worked) == 12:
            run.stop.request("test")
        await asyncio.sleep(0)

    result = run.run(
        lambda: run.work([], handle, lanes=2, feed=feed()),
        where="the stub shop",
        report=lambda _: None,
    )
    assert result.stopped
    assert len(set(worked)) == len(worked) <= 13  # the other lane ends the item in its hands
    assert len(fed) < 50, "the feed went on after the stop"
    assert result.counts["not_started"] == len(fed) - len(worked) > 0
