"""The work-item ledger on a real SQLite file and a real PostgreSQL database (each test on both):
states, claims, the daily-cap reservation, the schema's migrations."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from robots.ledger import Ledger, State

DAY = date(2026, 11, 23)
OPENED: list[Ledger] = []


def opened(url: str) -> Ledger:
    """A ledger closed when the test ends (a database is dropped with its connections)."""
    OPENED.append(Ledger(url))
    return OPENED[-1]


@pytest.fixture(autouse=True)
def _close_ledgers() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def claim(ledger: Ledger, key: str, fingerprint: str = "WAIT_SELLER_AGREE/1") -> bool:
    return ledger.claim("refunds", key, run_id="r1", fingerprint=fingerprint, details={})


def act(ledger: Ledger, key: str, cents: int, cap: int | None = None, day: date = DAY) -> bool:
    return ledger.start_acting(
        "refunds",
        key,
        run_id="r1",
        action="agree_refund",
        amount_cents=cents,
        fingerprint="f",
        daily_cap_cents=cap,
        day=day,
    )


def test_lifecycle_on_a_wal_file(tmp_path: Path) -> None:
    ledger = Ledger.at(tmp_path / "ledger.sqlite3")
    assert claim(ledger, "A")
    assert act(ledger, "A", 12_800)
    assert ledger.get("refunds", "A").state == State.ACTING  # type: ignore[union-attr]
    ledger.finish("refunds", "A", State.DONE, run_id="r1")
    row = ledger.get("refunds", "A")
    assert row is not None and (row.state, row.attempts, row.amount_cents) == (
        State.DONE,
        1,
        12_800,
    )
    ledger.close()
    # durable: a new process opening the file sees it, in WAL mode
    again = Ledger.at(tmp_path / "ledger.sqlite3")
    assert again.get("refunds", "A").state == State.DONE  # type: ignore[union-attr]
    with again.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_done_is_never_claimed_again(ledger_url: str) -> None:
    ledger = opened(ledger_url)
    claim(ledger, "A")
    act(ledger, "A", 100)
    ledger.finish("refunds", "A", State.DONE, run_id="r1")
    assert not claim(ledger, "A")
    assert not claim(ledger, "A", fingerprint="WAIT_SELLER_AGREE/9")


def test_acting_is_not_claimed_it_is_settled(ledger_url: str) -> None:
    ledger = opened(ledger_url)
    claim(ledger, "A")
    act(ledger, "A", 100)
    assert not claim(ledger, "A")
    assert [i.item_key for i in ledger.items("refunds", state=State.ACTING)] == ["A"]


def test_business_exception_waits_for_the_record_to_change(ledger_url: str) -> None:
    ledger = opened(ledger_url)
    claim(ledger, "A")
    ledger.finish(
        "refunds", "A", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="OVER_AMOUNT_CAP"
    )
    assert not claim(ledger, "A")  # same data, same answer: not asked twice
    assert claim(ledger, "A", fingerprint="WAIT_SELLER_AGREE/2")  # the record changed


def test_system_exception_is_retried_next_run(ledger_url: str) -> None:
    ledger = opened(ledger_url)
    claim(ledger, "A")
    ledger.finish(
        "refunds",
        "A",
        State.SYSTEM_EXCEPTION,
        run_id="r1",
        reason_code="SYSTEM_ERROR",
        message="timeout",
        evidence=["a.png"],
    )
    assert claim(ledger, "A")
    row = ledger.get("refunds", "A")
    assert row is not None and row.state == State.PENDING and row.evidence == ("a.png",)


def test_daily_cap_counts_acting_and_done_and_releases_failures(ledger_url: str) -> None:
    ledger = opened(ledger_url)
    for key in "ABCD":
        claim(ledger, key)
    assert act(ledger, "A", 600, cap=1000)
    assert not act(ledger, "B", 500, cap=1000)  # 600 reserved + 500 > 1000
    assert ledger.get("refunds", "B").state == State.PENDING  # type: ignore[union-attr]
    assert act(ledger, "C", 400, cap=1000)
    assert ledger.money_committed("refunds", DAY) == 1000
    ledger.finish("refunds", "C", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="STALE_RECORD")
    assert ledger.money_committed("refunds", DAY) == 600  # the refused approval paid nothing
    assert act(ledger, "B", 400, cap=1000)
    assert act(ledger, "D", 0, cap=1000)  # moving no money is never capped


def test_a_scoped_cap_counts_only_the_items_of_its_scope(ledger_url: str) -> None:
    """Two flows (one robot, "flow"; their items' keys begin with their names), each with its
    own cap: one's money never spends the other's."""
    ledger = opened(ledger_url)

    def scoped(key: str, cents: int, scope: str) -> bool:
        ledger.claim("flow", key, run_id="r1", fingerprint="", details={})
        return ledger.start_acting(
            "flow",
            key,
            run_id="r1",
            action="pay",
            amount_cents=cents,
            fingerprint="f",
            daily_cap_cents=1000,
            day=DAY,
            cap_scope=scope,
        )

    assert scoped("a_b:1", 800, "a_b:")
    assert scoped("cde:1", 800, "cde:")  # the other flow's 800 is not this one's
    assert not scoped("a_b:2", 300, "a_b:")  # 800 + 300 > 1000
    assert scoped("aXb:1", 900, "aXb:")  # "_" is a name's letter, not a wildcard
    assert ledger.money_committed("flow", DAY, "a_b:") == 800
    assert ledger.money_committed("flow", DAY) == 2500


def _reserve(url: str, keys: list[str], start: Any, out: multiprocessing.Queue) -> None:
    """Each key ``<day>|<n>`` reserves 3 yuan of that day's cap of 5: one a day can win."""
    ledger = Ledger(url)
    start.wait(60)  # all at once: they race for each day's last yuan
    won = [k for k in keys if act(ledger, k, 300, cap=500, day=DAY + timedelta(int(k[:2])))]
    ledger.close()
    out.put(won)


def _claim_all(url: str, keys: list[str], start: Any, out: multiprocessing.Queue) -> None:
    ledger = Ledger(url)
    start.wait(60)
    got = [k for k in keys if claim(ledger, k)]
    ledger.close()
    out.put(got)


def race(target: Any, url: str, keys: list[list[str]]) -> list[list[str]]:
    """``target`` in one process per key list, started together; what each returned."""
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    start = ctx.Barrier(len(keys))
    procs = [ctx.Process(target=target, args=(url, k, start, out)) for k in keys]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    return results


def test_marks_count_each_item_once_by_name_and_time(ledger_url: str) -> None:
    """A flow's hourly counts: an item marked again (worked again after a kill) is one
    mark; another flow's marks, and older ones, are not read."""
    from datetime import datetime

    ledger = opened(ledger_url)
    at = datetime(2026, 12, 6, 10, 30)
    ledger.mark("flow", ["qc:abuse", "qc:promise"], "qc:C1/2", at)
    ledger.mark("flow", ["qc:abuse"], "qc:C1/2", at + timedelta(minutes=5))  # again: no change
    ledger.mark("flow", ["qc:abuse"], "qc:C2/2", at + timedelta(minutes=1))
    ledger.mark("flow", ["qcx:abuse"], "qcx:C3/2", at)  # another flow, a longer name
    ledger.mark("flow", ["qc:abuse"], "qc:C0/2", at - timedelta(hours=9))
    found = sorted(ledger.marks_since("flow", "qc:", at - timedelta(hours=1)))
    assert found == [
        ("qc:abuse", at),
        ("qc:abuse", at + timedelta(minutes=1)),
        ("qc:promise", at),
    ]


def test_processes_racing_for_the_cap_cannot_overspend_it(ledger_url: str) -> None:
    """Three processes reach each of 40 days together, each with its own refund; a day's cap
    has room for one: every day exactly one wins (without the day's lock, some day's sum is
    read by two before either commits, and both win)."""
    ledger = opened(ledger_url)
    days = range(40)
    keys = [[f"{d:02d}|{p}" for d in days] for p in range(3)]
    for key in (k for ks in keys for k in ks):
        claim(ledger, key)
    won = [k for got in race(_reserve, ledger_url, keys) for k in got]
    per_day = Counter(k[:2] for k in won)
    assert per_day == {f"{d:02d}": 1 for d in days}
    for d in days:
        assert ledger.money_committed("refunds", DAY + timedelta(d)) == 300
    acting = {i.item_key for i in ledger.items("refunds", state=State.ACTING)}
    assert acting == set(won)


def test_processes_claiming_the_same_items_claim_each_once(ledger_url: str) -> None:
    """Claimers meeting on new items: one inserts each row, none fails on the other's."""
    ledger = opened(ledger_url)
    keys = [f"K{i}" for i in range(80)]
    got = race(_claim_all, ledger_url, [keys, keys[::-1], keys])
    assert [sorted(g) for g in got] == [sorted(keys)] * 3  # pending: work for whoever claims
    assert sorted(i.item_key for i in ledger.items("refunds")) == sorted(keys)


def test_the_schema_is_the_migrations_and_the_models_alike(ledger_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from robots.ledger import Base
    from robots.migrations import HEAD

    ledger = opened(ledger_url)
    with ledger.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
    ledger.close()
    opened(ledger_url).close()  # opening an up-to-date ledger again changes nothing


def test_a_ledger_from_before_the_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    """Tables made by create_all, no version table: stamped at the first revision, then
    upgraded, its items kept."""
    import sqlalchemy

    from robots.migrations import HEAD

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    ledger = opened(url)
    claim(ledger, "A")
    ledger.close()
    old = sqlalchemy.create_engine(url)
    with old.begin() as conn:  # back to what a ledger of 0.1 held
        for sql in (
            "DROP TABLE alembic_version",
            "DROP TABLE cap_days",
            "DROP INDEX ix_work_items_cap",
            "DROP TABLE marks",
            "DROP TABLE console_users",
            "DROP TABLE console_audit",
        ):
            conn.exec_driver_sql(sql)
    old.dispose()
    ledger = opened(url)
    assert ledger.get("refunds", "A") is not None
    assert act(ledger, "A", 100, cap=1000)  # the cap's lock table is there again
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD


def test_hand_overs_time_can_cure_are_claimed_again_and_open_items_are_listed(
    ledger_url: str,
) -> None:
    ledger = opened(ledger_url)
    for key in ("A", "B", "C"):
        assert claim(ledger, key)
    ledger.finish("refunds", "A", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="BUYER_RISK")
    ledger.finish(
        "refunds", "B", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="RETURN_NOT_RECEIVED"
    )
    ledger.finish("refunds", "C", State.DONE, run_id="r1")
    assert claim(ledger, "D")
    ledger.finish(  # over the cap, and the goods not back either
        "refunds",
        "D",
        State.BUSINESS_EXCEPTION,
        run_id="r1",
        reason_code="OVER_AMOUNT_CAP",
        details={"row": {"reasons": ["OVER_AMOUNT_CAP", "RETURN_NOT_RECEIVED"]}},
    )
    assert [v.item_key for v in ledger.open_items("refunds")] == ["A", "B", "D"]
    cure = frozenset({"RETURN_NOT_RECEIVED"})

    def again(key: str) -> bool:
        return ledger.claim(
            "refunds", key, run_id="r2", fingerprint="WAIT_SELLER_AGREE/1", details={}, recheck=cure
        )

    assert not again("A")  # unchanged, and nothing but a person cures a risky buyer
    assert again("B")  # the goods may have arrived meanwhile
    view = ledger.get("refunds", "B")
    assert view is not None and view.state == State.PENDING
    assert view.details["recheck"] == {"run_id": "r1", "reason": "RETURN_NOT_RECEIVED"}
    assert not again("C")
    assert again("D")  # read again: its reasons must not go stale when the goods arrive
    # while re-checked (or if that run is killed) they stay in the open set as handed over
    still_open = {v.item_key: v for v in ledger.open_items("refunds")}
    assert list(still_open) == ["A", "B", "D"]
    assert (still_open["B"].state, still_open["B"].reason_code, still_open["B"].run_id) == (
        State.BUSINESS_EXCEPTION,
        "RETURN_NOT_RECEIVED",
        "r1",
    )
    ledger.finish("refunds", "B", State.DONE, run_id="r2")  # the goods were there: confirmed
    ledger.finish(  # still not received: the same hand-over
        "refunds", "D", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="OVER_AMOUNT_CAP"
    )
    assert [v.item_key for v in ledger.open_items("refunds")] == ["A", "D"]
