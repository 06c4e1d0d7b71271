"""The work-item ledger on a real SQLite file: states, claims, the daily-cap reservation."""

from __future__ import annotations

import multiprocessing
from datetime import date
from pathlib import Path

from robots.ledger import Ledger, State

DAY = date(2026, 11, 23)


def claim(ledger: Ledger, key: str, fingerprint: str = "WAIT_SELLER_AGREE/1") -> bool:
    return ledger.claim("refunds", key, run_id="r1", fingerprint=fingerprint, details={})


def act(ledger: Ledger, key: str, cents: int, cap: int | None = None) -> bool:
    return ledger.start_acting(
        "refunds",
        key,
        run_id="r1",
        action="agree_refund",
        amount_cents=cents,
        fingerprint="f",
        daily_cap_cents=cap,
        day=DAY,
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


def test_done_is_never_claimed_again() -> None:
    ledger = Ledger.in_memory()
    claim(ledger, "A")
    act(ledger, "A", 100)
    ledger.finish("refunds", "A", State.DONE, run_id="r1")
    assert not claim(ledger, "A")
    assert not claim(ledger, "A", fingerprint="WAIT_SELLER_AGREE/9")


def test_acting_is_not_claimed_it_is_settled() -> None:
    ledger = Ledger.in_memory()
    claim(ledger, "A")
    act(ledger, "A", 100)
    assert not claim(ledger, "A")
    assert [i.item_key for i in ledger.items("refunds", state=State.ACTING)] == ["A"]


def test_business_exception_waits_for_the_record_to_change() -> None:
    ledger = Ledger.in_memory()
    claim(ledger, "A")
    ledger.finish(
        "refunds", "A", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="OVER_AMOUNT_CAP"
    )
    assert not claim(ledger, "A")  # same data, same answer: not asked twice
    assert claim(ledger, "A", fingerprint="WAIT_SELLER_AGREE/2")  # the record changed


def test_system_exception_is_retried_next_run() -> None:
    ledger = Ledger.in_memory()
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


def test_daily_cap_counts_acting_and_done_and_releases_failures() -> None:
    ledger = Ledger.in_memory()
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


def _reserve(path: str, keys: list[str], out: multiprocessing.Queue) -> None:
    ledger = Ledger(f"sqlite:///{path}")
    won = [k for k in keys if act(ledger, k, 300, cap=3000)]
    out.put(won)


def test_two_processes_cannot_overspend_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger.at(path)
    keys = [f"K{i}" for i in range(40)]
    for key in keys:
        claim(ledger, key)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_reserve, args=(str(path), keys[i::2], out)) for i in range(2)]
    for p in procs:
        p.start()
    won = [*out.get(timeout=60), *out.get(timeout=60)]
    for p in procs:
        p.join(60)
    assert len(won) == 10  # exactly 3000 / 300, never more
    assert ledger.money_committed("refunds", DAY) == 3000


def test_hand_overs_time_can_cure_are_claimed_again_and_open_items_are_listed() -> None:
    ledger = Ledger.in_memory()
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
    opened = {v.item_key: v for v in ledger.open_items("refunds")}
    assert list(opened) == ["A", "B", "D"]
    assert (opened["B"].state, opened["B"].reason_code, opened["B"].run_id) == (
        State.BUSINESS_EXCEPTION,
        "RETURN_NOT_RECEIVED",
        "r1",
    )
    ledger.finish("refunds", "B", State.DONE, run_id="r2")  # the goods were there: confirmed
    ledger.finish(  # still not received: the same hand-over
        "refunds", "D", State.BUSINESS_EXCEPTION, run_id="r1", reason_code="OVER_AMOUNT_CAP"
    )
    assert [v.item_key for v in ledger.open_items("refunds")] == ["A", "D"]
