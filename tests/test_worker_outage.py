"""A worker whose ledger goes away mid-item (issue 28): whichever ledger call raises, the
page goes back to its station, the item's hold is released and the item goes back to the
queue (``ItemBack``), so the worker keeps working once the ledger answers.

The ledger and the holds are a real PostgreSQL database; the robot is a stand-in with no
browser (the robots' own outage paths are the fault tests' business)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy.exc
from conftest import REDIS, dead_port, write_workspace

import robots.engine.item
import robots.engine.run
from robots.cluster.holds import Holds
from robots.cluster.worker import ItemBack, Runtime, Station
from robots.errors import LedgerUnavailable
from robots.ledger import Ledger, State, is_outage
from robots.registry import load_workspace
from robots.runtime.redaction import Redactor

RUN, KEY, ROBOT, SCENARIO = "run-outage", "RF1", "refunds", "refunds.toml"
MESSAGE = {
    "robot": ROBOT,
    "key": KEY,
    "run_id": RUN,
    "scenario": SCENARIO,
    "base_url": None,
    "handler": "work_item",
    "item": {"refund_id": KEY},
}


def outage() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError(
        "UPDATE work_items", {}, Exception("server closed the connection unexpectedly")
    )


class Lane:
    def __init__(self) -> None:
        self.fresh_pages = 0

    async def next_item(self) -> None:
        self.fresh_pages += 1


class StandIn:
    """The robot a station would build: its handler and its run's ledger, each of which
    can be made to fail as a ledger that went away fails."""

    def __init__(self, ledger: Ledger, fail: str) -> None:
        self.fail, self.ledger = fail, ledger
        self.worked: list[str] = []
        real_note = ledger.note_worked

        def note_worked(*args: Any, **kwargs: Any) -> None:
            if self.fail == "note_worked":
                raise outage()
            real_note(*args, **kwargs)

        self.run = SimpleNamespace(
            ledger=SimpleNamespace(note_worked=note_worked), broken=None, robot=ROBOT
        )

    def decode_item(self, item: dict[str, Any]) -> str:
        return str(item["refund_id"])

    async def work_item(self, key: str, lane: Lane) -> None:
        if self.fail == "item":  # the engine's own ledger write inside the item
            raise outage()
        if self.fail == "bug then ledger":  # a robot bug, recorded on a ledger that is away
            raise ValueError("a robot bug")
        self.worked.append(key)
        self.ledger.finish(ROBOT, key, State.DONE, run_id=RUN, acted=False)  # as item.py does


@pytest.fixture
def runtime(tmp_path: Path, postgres_url: str) -> Iterator[Runtime]:
    root = write_workspace(tmp_path / "ws", None, extra=f'[cluster]\nledger = "{postgres_url}"\n')
    ws = load_workspace(root)
    ledger = Ledger(postgres_url)
    ledger.begin_run(RUN, ROBOT, SCENARIO, dry_run=False)
    assert ledger.claim(ROBOT, KEY, run_id=RUN, fingerprint="f1", details={})
    ledger.close()
    rt = Runtime(ws, pages=1, redactor=Redactor())
    yield rt
    rt.close()


def station_with(rt: Runtime, robot: StandIn, lane: Lane, fail: str) -> Station:
    station = Station(rt.ws, ROBOT, SCENARIO, None, 1, rt.redactor)

    def robot_for(run_id: str, shared: dict[str, Any], sha: str = "") -> StandIn:
        if fail == "robot_for":
            raise LedgerUnavailable("the ledger at postgresql://… does not answer")
        return robot

    async def nothing(*_args: Any) -> None:
        return None

    async def take_lane(_robot: Any) -> Lane:  # the one page: opened once, then reused
        return lane if station.lanes.empty() else await station.lanes.get()

    station.robot_for = robot_for  # type: ignore[method-assign]
    station.open = nothing  # type: ignore[method-assign]
    station.prepare = nothing  # type: ignore[method-assign]
    station.lane = take_lane  # type: ignore[method-assign]
    rt.stations[(ROBOT, SCENARIO, None)] = station
    return station


def held_elsewhere(url: str) -> bool:
    """Whether another connection finds the item held (the worker did not let it go)."""
    holds = Holds(url)
    try:
        with holds.hold(ROBOT, KEY) as mine:
            return not mine
    finally:
        holds.close()


@pytest.mark.parametrize("fail", ["note_worked", "item", "bug then ledger", "robot_for"])
def test_a_ledger_gone_mid_item_releases_the_page_and_the_hold_and_sends_the_item_back(
    runtime: Runtime, postgres_url: str, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    robot, lane = StandIn(Ledger(postgres_url), fail), Lane()
    try:
        station = station_with(runtime, robot, lane, fail)
        if fail == "bug then ledger":

            def record_on_a_ledger_away(*_args: Any) -> None:
                raise outage()

            monkeypatch.setattr(
                robots.engine.item, "failed_outside_a_block", record_on_a_ledger_away
            )
        with pytest.raises(ItemBack):
            runtime.work(MESSAGE)
        assert not held_elsewhere(postgres_url)
        assert station.busy == 0
        if fail != "robot_for":  # (no page is taken before the robot is built)
            assert station.lanes.qsize() == 1 and lane.fresh_pages == 1
        assert not station.broken  # a ledger away is not the scenario's fault
        # the next delivery, the ledger back, on the same loop and page: the item is
        # worked once in all, and noted
        robot.fail = ""
        if fail == "robot_for":
            station_with(runtime, robot, lane, "")
        again = runtime.work(MESSAGE)
        assert again == ("finished already" if fail == "note_worked" else "worked")
        assert robot.worked == [KEY]
        view = robot.ledger.get(ROBOT, KEY)
        assert view is not None and view.state == State.DONE
        assert view.details["worked"]["run"] == RUN
        assert not held_elsewhere(postgres_url)
    finally:
        robot.ledger.close()


def test_the_worker_ledger_read_going_away_sends_the_item_back(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def away(*_args: Any) -> None:
        raise outage()

    monkeypatch.setattr(runtime.ledger, "get", away)
    monkeypatch.setattr(runtime, "await_ledger", lambda most_s: False)
    with pytest.raises(ItemBack):
        runtime.work(MESSAGE)


def test_waiting_for_the_ledger_is_bounded_and_ends_when_it_answers(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.await_ledger(5.0)  # it answers
    tries: list[int] = []

    def away() -> None:
        tries.append(1)
        raise outage()

    monkeypatch.setattr(runtime.ledger, "ping", away)
    assert not runtime.await_ledger(1.2)
    assert 2 <= len(tries) <= 4  # backing off, and giving up when the time is out


def test_what_counts_as_the_ledger_going_away() -> None:
    assert is_outage(outage())
    assert is_outage(LedgerUnavailable("down"))
    assert not is_outage(ValueError("a bug"))
    assert not is_outage(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate")))


def test_a_worker_watches_its_servers_says_an_outage_alerts_once_and_says_its_end(
    tmp_path: Path, postgres_url: str
) -> None:
    """The worker's watch (a thread looks every WATCH_S; here `look` is called by hand):
    the broker away is said once, alerted once after outage_alert_s, and its end said."""
    from loguru import logger

    from robots.cluster.app import celery_app
    from robots.cluster.worker import Watch

    dead = f"redis://127.0.0.1:{dead_port()}/0"
    extra = f'[cluster]\nledger = "{postgres_url}"\nbroker = "{dead}"\noutage_alert_s = 0.01\n'
    ws = load_workspace(write_workspace(tmp_path / "ws", None, extra=extra))
    ledger = Ledger(postgres_url)
    away = celery_app(dead, visibility_timeout_s=10)
    back = celery_app(REDIS, visibility_timeout_s=10)
    said: list[str] = []
    sink = logger.add(lambda m: said.append(str(m)), level="WARNING", format="{message}")
    try:
        watch = Watch(ws, away, ledger, "host-1")
        for _ in range(3):
            watch.look()
        watch.app = back
        watch.look()
        watch.look()
    finally:
        logger.remove(sink)
        ledger.close()
        away.close()
        back.close()
    assert len(said) == 3, said
    began, alerted, ended = said
    assert (
        "队列 Redis at redis://127.0.0.1:" in began and "the worker waits for it, for ever" in began
    )
    assert "alert with no channel configured" in alerted, alerted
    assert "队列 Redis 已" in alerted and "秒无应答，工作机一直等待" in alerted, alerted
    assert f"broker_unavailable: {dead}" in alerted, alerted
    assert "队列 Redis answers again after" in ended and "the worker goes on" in ended


def test_a_finished_item_whose_note_failed_once_is_noted_with_its_counts(
    runtime: Runtime, postgres_url: str
) -> None:
    """The ledger away just as the worker notes what a finished item counted: it waits for
    the ledger and notes it, rather than give back an item a redelivery could only note
    empty (its counts lost from the run's)."""
    robot, lane = StandIn(Ledger(postgres_url), ""), Lane()
    try:
        station_with(runtime, robot, lane, "")
        real_note, failed = robot.run.ledger.note_worked, []

        def note_once_away(*args: Any, **kwargs: Any) -> None:
            if not failed:
                failed.append(1)
                raise outage()
            real_note(*args, **kwargs)

        robot.run.ledger.note_worked = note_once_away

        def counted(key: str, lane: Lane) -> Any:
            robots.engine.run.ITEM_TALLY.get().update(approved=1)
            return StandIn.work_item(robot, key, lane)

        robot.work_item = counted  # type: ignore[method-assign]
        assert runtime.work(MESSAGE) == "1 approved"
        view = robot.ledger.get(ROBOT, KEY)
        assert view is not None and view.details["worked"] == {
            "run": RUN,
            "counts": {"approved": 1},
        }
        assert failed and not held_elsewhere(postgres_url)
    finally:
        robot.ledger.close()


def test_an_item_its_killed_worker_finished_but_never_noted_keeps_its_counts(
    runtime: Runtime, postgres_url: str
) -> None:
    """A worker wrote an item's ending, then died before noting what it counted: the next
    delivery finds the item finished and notes the counts its ending kept, so the run's
    summary is not one short of what the ledger holds (seen once: 170 linked of 171 links)."""
    from robots.engine.item import _done

    ledger = Ledger(postgres_url)
    try:
        run = SimpleNamespace(ledger=ledger, robot=ROBOT, run_id=RUN, count=lambda *_: None)
        _done(run, KEY, acted=True, details={}, fingerprint=None, counts=["approved"])  # type: ignore[arg-type]
        assert runtime._work_held(MESSAGE) == "finished already"
        view = ledger.get(ROBOT, KEY)
        assert view is not None and view.details["worked"] == {
            "run": RUN,
            "counts": {"approved": 1},
        }
    finally:
        ledger.close()


RESTARTED = """
import os, signal, threading, sys
from robots.cluster.app import celery_app
from robots.cluster.worker import serve
app = celery_app(sys.argv[1], visibility_timeout_s=10)
ran, starts = [], []
@app.task(name="probe")
def probe(x):
    ran.append(x)
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
def consume():
    worker = app.Worker(hostname=f"w{len(starts)}@test", pool="threads", concurrency=1,
                        loglevel="WARNING", quiet=True, redirect_stdouts=False, queues=["probe"])
    starts.append(worker)
    if len(starts) == 1:  # Celery's "Unrecoverable error", as when kombu cannot reconnect
        def lost(*_args):
            raise RuntimeError("the broker connection could not be restored")
        worker.blueprint.start = lost
    else:
        app.send_task("probe", args=[42], queue="probe")
    worker.start()
    return int(worker.exitcode or 0)
print("exit", serve(consume), "starts", len(starts), "ran", ran)
"""


def test_a_celery_consumer_that_ends_on_an_error_is_started_again_in_the_same_worker() -> None:
    """The worker's consumer (real Celery, real Redis) ends on an unrecoverable error: it is
    started again, takes the next task, and still ends as asked on SIGTERM (exit 0)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", RESTARTED, REDIS], capture_output=True, text=True, timeout=120
    )
    assert "exit 0 starts 2 ran [42]" in done.stdout, done.stdout + done.stderr
    assert "stopped on an error (exit 1); starting it again in 1 s" in done.stderr, done.stderr
