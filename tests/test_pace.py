"""engine/pace.py: how many pages a run works with, from how busy the cores were.

The machine's counters are replaced by a scripted series, so these tests decide nothing
from how fast or how loaded the machine running them is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from robots.engine import pace
from robots.engine.pace import Pace


def scripted(shares: list[float]) -> Iterator[tuple[float, float]]:
    """(busy, total) counters whose every step after the first is busy by the next share."""
    busy, total = 0.0, 0.0
    yield busy, total
    for share in shares:
        busy += 100 * share
        total += 100
        yield busy, total


def run_windows(p: Pace, shares: list[float], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The target after each window of items, the cores busy by ``shares`` in turn."""
    counters = scripted(shares)
    monkeypatch.setattr(pace, "cpu_times", lambda: next(counters))
    p.observe()  # the first finished item only takes the mark
    targets = []
    for _ in shares:
        for _ in range(p.window):
            p.observe()
        targets.append(p.target)
    return targets


def test_a_fixed_number_never_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Pace.of(3)
    assert run_windows(p, [0.1, 0.1, 0.99], monkeypatch) == [3, 3, 3]


def test_idle_cores_add_pages_at_most_doubling_up_to_the_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = Pace.of("auto")
    assert p.target == min(2 * pace.cores(), 12)  # twice the cores to start
    p = Pace(cores=1)
    assert p.target == 2
    # 10 % busy: the proportional answer (18) is cut to double; then the ceiling of 12
    assert run_windows(p, [0.10, 0.10, 0.10, 0.10], monkeypatch) == [4, 8, 12, 12]


def test_growth_is_in_proportion_to_the_idle_share(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Pace(start=4)
    # half busy with 4 pages: 4 * 0.90 / 0.50 = 7.2, so 8; then 90 % to 97 % busy keeps it
    assert run_windows(p, [0.50, 0.92, 0.96], monkeypatch) == [8, 8, 8]


def test_saturated_cores_take_pages_away_down_to_the_core_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = Pace(start=4, cores=2)
    assert run_windows(p, [0.99, 0.99, 0.99, 0.99], monkeypatch) == [3, 2, 2, 2]


def test_without_proc_stat_the_start_value_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pace, "cpu_times", lambda: None)
    p = Pace(start=2)
    for _ in range(5 * p.window):
        p.observe()
    assert p.target == 2
