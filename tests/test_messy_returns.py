"""The messy-returns generator (bench/messy_returns.py) keeps a truth that is really true, and
its in-process search answers as the sandbox back office does: what the returns bench's
precision and recall per noise kind stand on."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from messy_returns import KINDS, PAGE, Messy, SearchSim, evaluate, kinds_made

from robots.returns.lookup import Lookup
from robots.returns.matching import normalise_waybill
from robots.returns.scenario import load_returns_scenario

NOW = datetime(2026, 11, 23, 12, 0)
SCENARIO = load_returns_scenario(
    Path(__file__).resolve().parent.parent / "scenarios" / "demo-shop" / "returns.toml"
)


def test_every_kind_is_made_with_a_truth_that_holds() -> None:
    from messy_returns import SHARES_31

    data = Messy(7, 600, 6000, NOW, SHARES_31)
    assert set(kinds_made(data)) == set(KINDS)
    orders = {o.order_id: o for o in data.orders}
    by_target = {**orders, **{o.refund_id: o for o in data.orders if o.refund_id}}
    known = {w for o in data.orders for w in (o.outbound, o.return_waybill) if w}
    for t in data.parcels:
        p = t.parcel
        if t.kind in ("look_alike", "unknown"):
            assert t.target == ""
            assert normalise_waybill(p.waybill) not in known
            continue
        order = by_target[t.target]
        bought = dict(order.lines)
        assert all(bought.get(sku, 0) >= q for sku, q in p.items), (t.kind, p, order)
        w = normalise_waybill(p.waybill)
        if t.kind == "waybill_typo":
            assert Levenshtein.distance(w, order.return_waybill) == 1
        elif t.kind == "outbound_misread":
            assert Levenshtein.distance(w, order.outbound) == 1 and not order.refund_id
        elif t.kind == "spaced_waybill":
            assert p.waybill != order.return_waybill and w == order.return_waybill
        elif t.kind == "lucky_tail":
            sharing = [o for o in data.orders if o.buyer.phone[-4:] == order.buyer.phone[-4:]]
            assert len(sharing) > PAGE  # more than one page of a back-office search
        elif t.kind == "transposed":
            assert w != order.return_waybill and sorted(w) == sorted(order.return_waybill)
            assert sum(a != b for a, b in zip(w, order.return_waybill, strict=True)) == 2
        elif t.kind == "masked":
            assert "*" in p.waybill and normalise_waybill(p.waybill) not in known
        elif t.kind == "no_request":
            assert not order.refund_id and w not in known
        elif t.kind == "near_identical":
            twins = [o for o in data.orders if o.buyer == order.buyer and o.lines == order.lines]
            assert len(twins) == 2


def test_the_search_pages_newest_first_narrows_and_finds_by_number() -> None:
    data = Messy(7, 600, 6000, NOW)
    sim = SearchSim(data.orders, SCENARIO.search)
    lucky = next(o for o in data.orders if o.buyer.phone.endswith("6888"))
    every = sim.search(Lookup("6888"))
    assert len(every.rows) > PAGE and not every.cut  # every page read
    paid = [sim.orders[c.order_id].paid_at for c in every.rows]
    assert paid == sorted(paid, reverse=True)
    short = SearchSim(data.orders, SCENARIO.search.model_copy(update={"max_pages": 1}))
    one_page = short.search(Lookup("6888"))
    assert len(one_page.rows) == PAGE and one_page.cut
    sku = lucky.lines[0][0]
    narrowed = sim.search(Lookup("6888", sku=sku, since="2000-01-01"))
    assert lucky.order_id in {c.order_id for c in narrowed.rows}
    assert all(sku in dict(c.lines) for c in narrowed.rows) and len(narrowed.rows) < PAGE
    some = next(o for o in data.orders if o.refund_id)
    for key in (some.order_id, some.refund_id, some.return_waybill, some.outbound):
        assert [c.order_id for c in sim.search(Lookup(key)).rows][:1] == [some.order_id]
    typo = some.return_waybill[:-1] + ("1" if some.return_waybill[-1] != "1" else "2")
    assert some.order_id not in {c.order_id for c in sim.search(Lookup(typo)).rows}
    fuzzy = sim.search(Lookup(typo, fuzzy=True)).rows
    assert some.order_id in {c.order_id for c in fuzzy}


def test_evaluate_counts_every_parcel_once_and_never_links_an_unmatchable_one_right() -> None:
    data = Messy(7, 400, 4000, NOW)
    for path in ("robot", "global"):
        tallies = evaluate(data, SCENARIO.matching, SCENARIO.search, path)
        every = tallies["all"]
        assert every.parcels == len(data.parcels)
        assert every.matchable == sum(1 for t in data.parcels if t.target)
        assert every.right + every.wrong == every.linked
        assert tallies["unknown"].right == tallies["look_alike"].right == 0
        assert every.wrong_true_unseen == 0


def test_the_robots_path_holds_the_goals_on_thousands_of_messy_parcels() -> None:
    """Precision >= 0.995 and recall >= 0.90 of the parcels a person could link, on two seeds
    of 2,000 parcels, through the robot's own lookups answered as the back office answers
    (the browser test in test_returns_robot.py links exactly what this path links); every
    hard kind is found and no parcel without an order here is linked."""
    for seed in (23, 5):
        data = Messy(seed, 2000, 32000, NOW)
        tallies = evaluate(data, SCENARIO.matching, SCENARIO.search, "robot")
        every = tallies["all"]
        recall = every.right / every.matchable
        assert every.precision >= 0.995 and recall >= 0.90, (seed, every.precision, recall)
        for kind in ("waybill_typo", "outbound_misread", "spaced_waybill", "lucky_tail"):
            assert tallies[kind].right > 0, (seed, kind)
        for kind in ("look_alike", "unknown", "near_identical"):
            assert tallies[kind].linked == 0, (seed, kind)


def test_issue_31s_kinds_link_right_and_never_wrong() -> None:
    """The kinds real warehouses add (issue 31's mix): transposed waybills, masked labels,
    returns sent without a request. Every link is right, and the mix as a whole reaches the
    goals (precision >= 0.995, recall >= 0.90 of the parcels with a true order): transposed
    waybills are linked as typos are, masked ones and unrequested returns on the buyer's
    evidence, second boxes of a split return on their request."""
    from messy_returns import SHARES_31

    for seed in (23, 5):
        data = Messy(seed, 2000, 32000, NOW, SHARES_31)
        tallies = evaluate(data, SCENARIO.matching, SCENARIO.search, "robot")
        every = tallies["all"]
        assert every.wrong == 0 and every.precision >= 0.995, (seed, every.wrong)
        assert every.recall >= 0.90, (seed, every.recall)
        assert tallies["transposed"].recall >= 0.9, (seed, tallies["transposed"])
        for kind in ("masked", "no_request", "split_second_box"):
            assert tallies[kind].recall >= 0.6, (seed, kind, tallies[kind])
        for kind in ("look_alike", "unknown", "near_identical"):
            assert tallies[kind].linked == 0, (seed, kind)
        print(f"issue 31's mix, seed {seed}: recall {every.recall:.3f} of {every.matchable}")
