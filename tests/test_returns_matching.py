"""The parcel matcher on its own: DOMAIN.md §2's signals, hard constraints and thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from robots.returns.lookup import CandidateSearch, Found
from robots.returns.matching import (
    LINK,
    SUGGEST,
    Candidate,
    CandidateIndex,
    MatchRules,
    UnlabelledParcel,
    match_candidates,
    match_parcel,
    name_signal,
    normalise_waybill,
    phone_parts,
)
from robots.returns.scenario import load_returns_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "demo-shop" / "returns.toml"
SEARCH = load_returns_scenario(SCENARIO).search


def lookups(parcel: UnlabelledParcel) -> list[str]:
    """What the robot types, the fuzzy waybill search aside (tests/test_returns_lookup.py)."""
    return [lk.q for lk in CandidateSearch(parcel, SEARCH).lookups() if not lk.fuzzy]


NOW = datetime(2026, 11, 20, 10, 0)
RULES = MatchRules()
ORDER = Candidate(
    order_id="TB1",
    refund_id="RF1",
    buyer_name="王小明",
    buyer_nick="tb_wxm",
    phone="13812345678",
    district="浙江省杭州市西湖区",
    lines=(("TS1-BLK-M", 1), ("JN2-NAV-L", 1)),
    return_waybill="4301234567890",
    outbound_waybill="SF1234567890",
    refund_created_at=NOW - timedelta(days=3),
    signed_at=NOW - timedelta(days=6),
)
PARCEL = UnlabelledParcel(
    parcel_id="PK1",
    waybill="4301234567890",
    courier="韵达快递",
    sender_name="王小明",
    sender_phone="138****5678",
    district="浙江省杭州市西湖区",
    items=(("TS1-BLK-M", 1),),
    received_at=NOW,
)


def decide(parcel: UnlabelledParcel, *candidates: Candidate):
    return match_parcel(parcel, CandidateIndex(candidates or (ORDER,)), RULES)


def test_the_return_waybill_links_to_the_after_sales_request() -> None:
    d = decide(PARCEL)
    assert (d.outcome, d.target) == (LINK, "RF1")
    assert "运单号=退货运单号 +100" in d.best.signals


def test_a_refused_delivery_comes_back_under_the_outbound_waybill() -> None:
    d = decide(replace(PARCEL, waybill="SF1234567890"), replace(ORDER, refund_id=""))
    assert (d.outcome, d.target) == (LINK, "TB1")
    assert any("发货运单号" in s for s in d.best.signals)


@pytest.mark.parametrize(
    "typed",
    [
        "sf 1234 5678 90",
        "SF-1234-5678-90",
        "ＳＦ１２３４５６７８９０",
        " sf1234567890\t",
        "ｓｆ１２３４－５６７８－９０",
    ],
)
def test_waybills_are_compared_as_carriers_print_them(typed: str) -> None:
    """Case, spaces, dashes and full-width forms do not hide a waybill: the index, the score
    and the back-office search all see SF1234567890."""
    assert normalise_waybill(typed) == "SF1234567890"
    d = decide(replace(PARCEL, waybill=typed), replace(ORDER, refund_id=""))
    assert (d.outcome, d.target) == (LINK, "TB1")
    assert any("发货运单号" in s for s in d.best.signals)
    queries = lookups(replace(PARCEL, waybill=typed))
    assert queries[0] == "SF1234567890"  # what the robot types first
    assert queries.count("SF1234567890") == 1
    bare = lookups(replace(PARCEL, waybill="SF1234567890"))
    assert bare[0] == "SF1234567890" and bare.count("SF1234567890") == 1


def test_a_one_character_typo_needs_other_signals_too() -> None:
    typo = replace(PARCEL, waybill="4301234567899")
    d = decide(typo)
    assert d.outcome == LINK and "运单号与退货运单号差一位 +40" in d.best.signals
    bare = replace(typo, sender_phone="", sender_name="", district="", items=(("XX", 1),))
    other = replace(ORDER, lines=(("XX", 1), ("YY", 1)), refund_created_at=None)
    d = decide(bare, other)
    assert (d.outcome, d.best.score) == (SUGGEST, 40 + 30 + 20)  # a typo alone never links
    assert d.best.buyer == ""  # nothing says who sent it


def test_no_waybill_phone_name_skus_and_dates_still_link() -> None:
    d = decide(replace(PARCEL, waybill=""))
    assert d.outcome == LINK
    assert d.best.score == 25 + 5 + 20 + 10 + 30 + 20 + 10


def test_two_plausible_orders_go_to_a_person_with_both() -> None:
    twin = replace(ORDER, order_id="TB2", refund_id="RF2", return_waybill="", outbound_waybill="")
    first = replace(ORDER, return_waybill="", outbound_waybill="")
    d = decide(replace(PARCEL, waybill=""), first, twin)
    assert d.outcome == SUGGEST
    assert {s.candidate.target for s in d.top} == {"RF1", "RF2"}
    assert d.runner_up_score == d.best.score


def test_hard_constraints_exclude_a_candidate_whatever_its_score() -> None:
    refunded = replace(ORDER, refunded=(("TS1-BLK-M", 1),))
    assert decide(PARCEL, refunded).best is None
    too_many = replace(PARCEL, items=(("TS1-BLK-M", 2),))
    assert decide(too_many).best is None
    other_shop = replace(PARCEL, shop="B")
    assert decide(other_shop, replace(ORDER, shop="A")).best is None


def test_an_order_already_linked_takes_another_box_on_its_waybill_or_from_its_buyer() -> None:
    """A second box: its order's request already has a parcel. On the request's own return
    waybill it is linked (the first box arriving after the second); from the buyer beyond
    doubt (phone tail and name) it is linked too: the second box of a split return, the
    request is why it came, and the buyer's older order of that SKU without a request is no
    rival. From a sender known less surely (a name, no phone) it goes to a person with that
    order on top, and the older order is not linked instead."""
    linked = replace(ORDER, linked=True)
    d = decide(PARCEL, linked)
    assert (d.outcome, d.target) == (LINK, "RF1")
    assert "该订单已关联过包裹（需人工确认）" in d.best.signals
    sibling = replace(
        ORDER,
        order_id="TB9",
        refund_id="",
        return_waybill="",
        outbound_waybill="",
        refund_created_at=None,
        signed_at=NOW - timedelta(days=40),
    )
    second_box = replace(PARCEL, waybill="")
    asked = replace(linked, return_waybill="")
    d = decide(second_box, asked, sibling)
    assert (d.outcome, d.target) == (LINK, "RF1") and d.best.known_buyer
    no_phone = replace(second_box, sender_phone="")
    d = decide(no_phone, asked, sibling)
    assert d.best.score >= RULES.link_at and not d.best.known_buyer
    assert (d.outcome, d.target) == (SUGGEST, "RF1")
    assert decide(second_box, sibling).outcome != LINK  # no request, no waybill: a person


def test_the_buyers_request_outweighs_their_order_without_one() -> None:
    """The buyer opened a return request on an order and bought the same thing again since:
    the parcel is the return they announced. The re-purchase scores close (the exact SKUs, a
    recent signing) but is no rival; another buyer's order, or the same buyer's second
    request, still is."""
    asked = replace(ORDER, return_waybill="", refund_created_at=NOW - timedelta(days=12))
    again = replace(SOLO, order_id="TB2", signed_at=NOW - timedelta(days=2))
    d = decide(replace(PARCEL, waybill=""), asked, again)
    assert d.runner_up_score is not None and d.best.score - d.runner_up_score < RULES.link_lead
    assert (d.outcome, d.target) == (LINK, "RF1")
    second_request = replace(asked, order_id="TB2", refund_id="RF2")
    assert decide(replace(PARCEL, waybill=""), asked, second_request).outcome == SUGGEST


def test_an_order_without_a_request_needs_the_waybill_to_link() -> None:
    """The same buyer bought the SKU here weeks ago and returns one bought elsewhere: phone,
    name, district and SKU all agree, but with no after-sales request only the waybill (the
    outbound one, exact or one digit misread) may link it."""
    old = replace(ORDER, refund_id="", return_waybill="", refund_created_at=None)
    elsewhere = replace(PARCEL, waybill="YT9999999999")
    d = decide(elsewhere, old)
    assert d.best.score >= RULES.link_at and d.outcome == SUGGEST
    assert decide(replace(PARCEL, waybill="SF1234567890"), old).outcome == LINK
    misread = decide(replace(PARCEL, waybill="SF1234567899"), old)
    assert misread.outcome == LINK and "运单号与发货运单号差一位 +40" in misread.best.signals


def test_late_parcels_lose_points() -> None:
    late = replace(PARCEL, waybill="", received_at=NOW + timedelta(days=40))
    d = decide(late)
    assert "签收很久后才到货 -20" in d.best.signals


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("王小明", "exact"),
        ("tb_WXM", "exact"),
        ("王*", "surname"),
        ("王先生", "surname"),
        ("王", "surname"),
        ("李*", ""),
        ("", ""),
        ("王小红", ""),
        ("Wang Xiaoming", "exact"),  # pinyin, any case and spacing
        ("WANGXIAOMING", "exact"),
        ("Wáng Xiǎomíng", "exact"),  # with tone marks
        ("Wang Xiaohong", ""),  # another given name
        ("wxm", ""),  # initials are not a name
    ],
)
def test_names(sender: str, expected: str) -> None:
    assert name_signal(sender, "王小明", "tb_wxm") == expected


def test_a_nickname_retyped_with_one_slip_still_counts() -> None:
    assert name_signal("rt_0a1b2c3x", "王小明", "rt_0a1b2c3d") == "exact"  # ratio 90.9
    assert name_signal("rt_0a1bzz3x", "王小明", "rt_0a1b2c3d") == ""


def test_phone_parts() -> None:
    assert phone_parts("138****5678") == ("138", "5678")
    assert phone_parts("13812345678") == ("138", "5678")
    assert phone_parts("****5678") == ("", "5678")
    assert phone_parts("") == ("", "")


def test_blocking_scores_only_what_shares_a_key() -> None:
    others = [
        replace(
            ORDER,
            order_id=f"TB{n}",
            refund_id="",
            phone=f"139{n:08d}",
            return_waybill=f"77{n:011d}",
            outbound_waybill="",
            buyer_name="李四",
        )
        for n in range(5000)
    ]
    index = CandidateIndex([ORDER, *others])
    assert [c.order_id for c in index.block(PARCEL, 200)[0]] == ["TB1"]
    assert decide(PARCEL, ORDER, *others).target == "RF1"


def test_an_open_return_request_leads_a_repurchase_of_the_same_items() -> None:
    """A buyer with a lucky phone tail returns an order with a request and bought the same
    items again since: the request is the strong signal that separates the two."""
    parcel = replace(PARCEL, waybill="", sender_name="")
    again = replace(
        ORDER,
        order_id="TB2",
        refund_id="",
        return_waybill="",
        outbound_waybill="SF9999999999",
        refund_created_at=None,
        signed_at=NOW - timedelta(days=2),
    )
    d = decide(parcel, ORDER, again)
    assert (d.outcome, d.target) == (LINK, "RF1")
    assert "有退货申请 +20" in d.best.signals
    assert d.best.score - d.runner_up_score >= RULES.link_lead


def test_without_the_exact_waybill_the_sender_must_not_be_someone_else() -> None:
    """Phone tail, SKU and an open request reach the link score, but the parcel names another
    person, or shows another phone tail: a person decides."""
    soft = replace(PARCEL, waybill="")
    assert decide(replace(soft, sender_name="王*")).outcome == LINK  # the surname agrees
    for other in (replace(soft, sender_name="李*"), replace(soft, sender_phone="138****0000")):
        d = decide(other)
        assert d.best.score >= RULES.link_at
        assert d.outcome == SUGGEST and "寄件人与买家不符" in d.best.signals
    # the exact return waybill, but another person's name: a person looks (issue 31)
    named = decide(replace(PARCEL, sender_name="李四"))
    assert (named.outcome, named.target) == (SUGGEST, "RF1")


def test_candidates_not_all_examined_link_on_the_exact_waybill_only() -> None:
    soft = replace(PARCEL, waybill="")
    assert match_candidates(soft, [ORDER], RULES).outcome == LINK
    cut = match_candidates(soft, [ORDER], RULES, complete=False)
    assert (cut.outcome, cut.complete) == (SUGGEST, False)
    typo = replace(PARCEL, waybill="4301234567899")
    assert match_candidates(typo, [ORDER], RULES, complete=False).outcome == SUGGEST
    exact = match_candidates(PARCEL, [ORDER], RULES, complete=False)
    assert (exact.outcome, exact.target) == (LINK, "RF1")


def test_a_lucky_phone_tail_is_blocked_by_tail_and_sku_and_never_cut() -> None:
    """Hundreds of buyers share 6888: the block keyed by tail + the parcel's SKU holds the
    true order wherever it was inserted; without a SKU, the tail's block is cut and says so."""
    crowd = [
        replace(
            ORDER,
            order_id=f"TB{n}",
            refund_id="",
            phone=f"139{n:04d}5678",
            return_waybill="",
            outbound_waybill=f"77{n:011d}",
            lines=(("OTHER", 1),),
        )
        for n in range(1000)
    ]
    index = CandidateIndex([*crowd, ORDER])  # the true order inserted last
    parcel = replace(PARCEL, waybill="")
    found, cut = index.block(parcel, 200)
    assert [c.order_id for c in found] == ["TB1"] and not cut
    assert match_parcel(parcel, index, RULES).target == "RF1"
    found, cut = index.block(replace(parcel, items=()), 200)
    assert len(found) == 200 and cut
    assert match_parcel(replace(parcel, items=()), index, RULES).outcome != LINK


def test_a_parcel_under_another_waybill_than_the_request_names_goes_to_a_person() -> None:
    """The buyer's request says the return went back under 4301234567890; a parcel with a
    waybill of its own, nowhere near it, from the same buyer with the same SKU may be
    something bought elsewhere while that return is still on its way."""
    d = decide(replace(PARCEL, waybill="YT4998827056"))
    assert d.best.score >= RULES.link_at and d.outcome == SUGGEST
    assert "运单号与退货运单号不符" in d.best.signals


def test_a_transposed_waybill_links_its_order() -> None:
    """Two neighbouring digits swapped on the label (…7890 → …7980): one edit, found by the
    index's near spellings and scored as one, then linked with the buyer recognised."""
    d = decide(replace(PARCEL, waybill="4301234567980"))
    assert (d.outcome, d.target) == (LINK, "RF1")
    assert "运单号与退货运单号相邻两位颠倒 +40" in d.best.signals, d.best.signals


@pytest.mark.parametrize(
    "masked", ["430123****890", "4301****7890", "４３０１２３＊＊＊＊７８９０"]
)
def test_a_masked_waybill_never_links_on_the_waybill_alone(masked: str) -> None:
    """The visible characters fit the request's waybill: a hint, not the waybill. With the
    buyer recognised it links as soft evidence does; with no buyer to recognise, a person
    looks; and its remaining digits are never searched as a waybill of their own."""
    d = decide(replace(PARCEL, waybill=masked))
    assert (d.outcome, d.target) == (LINK, "RF1")
    assert d.best.waybill == "masked"
    anonymous = replace(PARCEL, waybill=masked, sender_name="", sender_phone="")
    assert decide(anonymous).outcome != LINK
    assert normalise_waybill(masked) not in lookups(anonymous)
    digits = normalise_waybill(masked)  # a real waybill that happens to be those digits
    other = replace(ORDER, order_id="TB9", refund_id="RF9", return_waybill=digits)
    assert decide(anonymous, ORDER, other).outcome != LINK


def test_an_exact_waybill_sent_by_someone_else_is_a_suggestion() -> None:
    """The request's own waybill, but the sender's phone tail and name are another buyer's:
    a person looks (a label copied onto another parcel, a waybill typed into the wrong
    request)."""
    d = decide(replace(PARCEL, sender_name="李四", sender_phone="139****0000"))
    assert (d.outcome, d.target) == (SUGGEST, "RF1")
    assert d.best.buyer == "conflict"


def test_near_waybills_are_tried_when_the_order_naming_it_cannot_take_the_parcel() -> None:
    """The waybill hits an order whose item was refunded already; its neighbour one digit
    away is the parcel's request: found and linked, as a person would keep looking."""
    spent = replace(
        ORDER,
        order_id="TB8",
        refund_id="RF8",
        return_waybill="4301234567891",
        buyer_name="赵六",
        phone="13900001111",
        refunded=(("TS1-BLK-M", 1),),
    )
    d = decide(replace(PARCEL, waybill="4301234567891"), spent, ORDER)
    assert (d.outcome, d.target) == (LINK, "RF1")
    search = CandidateSearch(replace(PARCEL, waybill="4301234567891"), SEARCH)
    lookups_made = []
    for lookup in search.lookups():
        lookups_made.append(lookup)
        if not lookup.fuzzy:
            search.add(lookup, Found([spent]))
    assert any(lk.fuzzy for lk in lookups_made)


SOLO = replace(
    ORDER,
    refund_id="",
    return_waybill="",
    refund_created_at=None,
    lines=(("TS1-BLK-M", 1),),
    signed_at=NOW - timedelta(days=5),
)
UNASKED = replace(PARCEL, waybill="YT8888888888")  # the buyer's own label, unknown here


def test_a_parcel_without_a_request_links_on_a_buyer_beyond_doubt() -> None:
    """No request, a waybill the shop never issued: the phone tail, the whole name and the
    order's SKUs agree, signed five days before, and the buyer has no other order that
    could take it: linked to the order."""
    d = decide(UNASKED, SOLO)
    assert (d.outcome, d.target) == (LINK, "TB1")
    assert d.best.sure_buyer
    titled = decide(replace(UNASKED, sender_name="王先生"), SOLO)  # the surname and the tail
    assert (titled.outcome, titled.target) == (LINK, "TB1")
    # no name: the tail, the first three digits and the district (seven digits and a place)
    nameless = decide(replace(UNASKED, sender_name=""), SOLO)
    assert (nameless.outcome, nameless.target) == (LINK, "TB1")
    # no phone: the buyer's account name on the label, exactly
    account = decide(replace(UNASKED, sender_name="TB_wxm", sender_phone=""), SOLO)
    assert (account.outcome, account.target) == (LINK, "TB1")
    assert "买家账号一致 +25" in account.best.signals
    slipped = decide(replace(UNASKED, sender_name="tb_wxn", sender_phone=""), SOLO)
    assert slipped.outcome != LINK  # a nick one letter off is a name, not the account


@pytest.mark.parametrize(
    "doubt",
    [
        {"sender_name": "", "district": "浙江省宁波市鄞州区"},  # no name, another district
        {"sender_name": "", "sender_phone": "139****5678"},  # no name, another first three
        {"sender_name": "李*"},  # another surname
        {"sender_phone": ""},  # no phone to agree
        {"items": (("TS1-BLK-M", 1), ("JN2-NAV-L", 1))},  # SKUs the order does not hold
        {"received_at": NOW + timedelta(days=20)},  # signed 25 days before: past the window
    ],
)
def test_a_parcel_without_a_request_and_any_doubt_goes_to_a_person(doubt: dict) -> None:
    assert decide(replace(UNASKED, **doubt), SOLO).outcome != LINK


def test_two_orders_of_the_buyer_that_could_take_it_go_to_a_person() -> None:
    """The same buyer bought the SKU twice (or a look-alike buyer, same phone tail and
    name): either could be the one returned."""
    again = replace(SOLO, order_id="TB2", signed_at=NOW - timedelta(days=40))
    d = decide(UNASKED, SOLO, again)
    assert d.outcome == SUGGEST and {s.candidate.order_id for s in d.top} == {"TB1", "TB2"}
    twin = replace(SOLO, order_id="TB3", buyer_nick="tb_other", phone="13900005678")
    assert decide(UNASKED, SOLO, twin).outcome != LINK


def test_traditional_names_a_polyphonic_surname_in_pinyin_and_the_simplified_search() -> None:
    """A name in traditional characters is the name; 曾 reads zeng as a surname (ceng
    elsewhere): either spelling is the name; a sender written in traditional characters is
    searched as the shop knows the buyer."""
    assert name_signal("張偉", "张伟", "") == "exact"  # traditional characters
    assert name_signal("張*", "张伟", "") == "surname"
    assert name_signal("Zeng Wei", "曾伟", "") == "exact"
    assert name_signal("Ceng Wei", "曾伟", "") == "exact"
    assert "王晓明" in lookups(replace(PARCEL, waybill="", sender_name="王曉明"))


def test_a_waybill_its_courier_could_not_have_printed_is_no_misreading() -> None:
    """A 顺丰 parcel's label one character off a request's 韵达 waybill: 顺丰 prints SF and
    twelve digits, so the parcel is not that return misread; the request's waybill
    contradicts it. Without the courier's format (a courier not listed) it is the usual
    near spelling."""
    rules = RULES.model_copy(update={"couriers": {"顺丰": r"SF\d{12}", "韵达": r"\d{13}"}})
    request = replace(ORDER, return_waybill="4301234567890", outbound_waybill="")
    parcel = replace(PARCEL, waybill="4301234567891")
    as_yunda = match_parcel(replace(parcel, courier="韵达快递"), CandidateIndex([request]), rules)
    assert "运单号与退货运单号差一位 +40" in as_yunda.best.signals
    assert as_yunda.outcome == LINK
    as_sf = match_parcel(replace(parcel, courier="顺丰速运"), CandidateIndex([request]), rules)
    assert as_sf.best.waybill == "conflict" and as_sf.outcome != LINK
    unlisted = match_parcel(replace(parcel, courier="极兔速递"), CandidateIndex([request]), rules)
    assert unlisted.outcome == LINK
    assert rules.printable_by("顺丰速运", "SF123456789012")
    assert not rules.printable_by("顺丰速运", "SF12345678901")
    with pytest.raises(ValueError, match="顺丰: not a regular expression"):
        MatchRules(couriers={"顺丰": r"SF(\d{12}"})
