"""A flow's rules in CEL: the first rule that holds decides; anything the rules cannot judge
goes to a person, naming the rule and why; `config check` refuses what a run would trip on."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from robots.flow.rules import NO_RULE, RULE_ERROR, Rules, RuleSpec

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FIELDS = {
    "page": {"state": "text", "last_at": "datetime", "amount": "money", "boxes": "int"},
    "row": {"order_id": "text", "vip": "bool"},
}
ACTIONS = {"remind"}

LOGISTICS = [
    {
        "when": 'page.state in ["退回", "拒收", "异常"]',
        "hand_over": {"code": "LOGISTICS_EXCEPTION", "text": "物流异常：退回/拒收/异常"},
    },
    {
        "when": 'page.state != "已签收" && now - page.last_at >= duration("72h")',
        "hand_over": {"code": "STALLED", "text": "物流停滞"},
    },
    {"when": "row.vip && page.amount >= 500.0", "act": "remind"},
    {"when": 'page.state == "已签收"', "skip": True},
    {"when": "page.boxes > 0", "record": True},
]


def rules(specs: list[dict[str, Any]]) -> Rules:
    return Rules([RuleSpec.model_validate(s) for s in specs])


def page(**values: Any) -> dict[str, Any]:
    read = {"state": "运输中", "last_at": NOW - timedelta(hours=5), "amount": Decimal("88.00")}
    return {**read, "boxes": 1, **values}


ROW = {"order_id": "T1001", "vip": False}


@pytest.mark.parametrize(
    ("read", "row", "expected"),
    [
        (page(state="退回"), ROW, ("hand_over", 1, "LOGISTICS_EXCEPTION")),
        (page(last_at=NOW - timedelta(hours=73)), ROW, ("hand_over", 2, "STALLED")),
        (page(amount=Decimal("520.00")), {**ROW, "vip": True}, ("act", 3, "")),
        (page(state="已签收", last_at=NOW - timedelta(days=9)), ROW, ("skip", 4, "")),
        (page(), ROW, ("record", 5, "")),
    ],
)
def test_the_first_rule_that_holds_decides(
    read: dict[str, Any], row: dict[str, Any], expected: tuple[str, int, str]
) -> None:
    decision = rules(LOGISTICS).decide(read, row, NOW)
    assert (decision.outcome, decision.rule, decision.code) == expected
    if decision.outcome == "act":
        assert decision.action == "remind" and decision.acts
    if decision.code == "STALLED":
        assert decision.text == "物流停滞"


def test_no_rule_holding_goes_to_a_person() -> None:
    decision = rules(LOGISTICS).decide(page(boxes=0), ROW, NOW)
    assert (decision.outcome, decision.rule, decision.code) == ("hand_over", 0, NO_RULE)
    assert decision.text.startswith("没有规则适用")


def test_a_field_not_read_stops_the_rules_there_and_names_it() -> None:
    """Rule 2 needs last_at, which could not be read: the item goes to a person naming rule 2
    and the field; rule 3, which would act, is never reached."""
    read = page(amount=Decimal("900.00"))
    del read["last_at"]
    decision = rules(LOGISTICS).decide(read, {**ROW, "vip": True}, NOW)
    assert (decision.outcome, decision.rule, decision.code) == ("hand_over", 2, RULE_ERROR)
    assert "last_at" in decision.text and "规则 2" in decision.text
    assert not decision.acts


def test_a_type_cel_will_not_compare_goes_to_a_person() -> None:
    """The shop showed a number as text: CEL does not coerce, and the rule cannot judge."""
    decision = rules(LOGISTICS).decide(page(boxes="1"), ROW, NOW)
    assert (decision.outcome, decision.rule, decision.code) == ("hand_over", 5, RULE_ERROR)
    assert "规则 5" in decision.text


def test_a_condition_that_is_not_true_or_false_goes_to_a_person() -> None:
    decision = rules([{"when": "page.boxes", "act": "remind"}]).decide(page(), ROW, NOW)
    assert (decision.outcome, decision.code) == ("hand_over", RULE_ERROR)
    assert "不是 true/false" in decision.text


def test_a_rule_that_does_not_compile_hands_over_if_it_is_ever_reached() -> None:
    decision = rules([{"when": "page.boxes >", "act": "remind"}]).decide(page(), ROW, NOW)
    assert (decision.outcome, decision.rule, decision.code) == ("hand_over", 1, RULE_ERROR)


def test_the_logistics_rules_pass_the_check() -> None:
    assert rules(LOGISTICS).check(FIELDS, ACTIONS) == []


@pytest.mark.parametrize(
    ("rule", "key", "says"),
    [
        ({"when": "page.boxes >", "skip": True}, "rules.1.when", "not a CEL expression"),
        ({"when": "shop.open", "skip": True}, "rules.1.when", "names shop"),
        ({"when": 'page.stat == "x"', "skip": True}, "rules.1.when", "page.stat"),
        ({"when": "row.order == 'x'", "skip": True}, "rules.1.when", "row.order"),
        ({"when": 'page.boxes > "2"', "skip": True}, "rules.1.when", "declared types"),
        ({"when": "page.amount + 1", "skip": True}, "rules.1.when", "declared types"),
        (  # past a first test only a text the rule names passes
            {"when": 'page.state == "运输中" && page.last_at > 3', "skip": True},
            "rules.1.when",
            "declared types",
        ),
        ({"when": "row.vip && page.boxes", "skip": True}, "rules.1.when", "declared types"),
        ({"when": "page.boxes + 1", "skip": True}, "rules.1.when", "not true or false"),
        ({"when": "true", "act": "approve"}, "rules.1.act", "no action 'approve'"),
    ],
)
def test_the_check_refuses_what_a_run_would_trip_on(
    rule: dict[str, Any], key: str, says: str
) -> None:
    problems = rules([rule]).check(FIELDS, ACTIONS)
    assert len(problems) == 1, problems
    assert problems[0][0] == key and says in problems[0][1], problems


def test_a_name_inside_a_string_is_not_a_field() -> None:
    assert (
        rules([{"when": 'page.state == "page.nothing"', "skip": True}]).check(FIELDS, ACTIONS) == []
    )


@pytest.mark.parametrize(
    "rule",
    [
        {"when": "true"},
        {"when": "true", "skip": True, "record": True},
        {"when": "true", "act": "remind", "hand_over": {"code": "X", "text": "人工"}},
        {"when": "true", "hand_over": {"code": "lower", "text": "人工"}},
        {"when": "", "skip": True},
    ],
)
def test_a_rule_ends_in_exactly_one_outcome(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleSpec.model_validate(rule)


@pytest.mark.parametrize(
    ("reason", "words", "expected"),
    [
        ("收到商品破损", ["破损", "质量"], True),
        ("７天无理由退货", ["7天无理由"], True),  # full width is the same digit
        ("数码（已拆封）", ["数码*已拆封"], True),
        ("多拍/拍错/不想要", ["re:^多拍"], True),
        ("不喜欢", ["破损", "质量"], False),
    ],
)
def test_has_word_matches_as_the_robots_keyword_lists(
    reason: str, words: list[str], expected: bool
) -> None:
    spec = {"when": f"has_word(page.state, {words!r})".replace("'", '"'), "skip": True}
    assert rules([spec]).results(page(state=reason), ROW, NOW) == [expected]


def test_days_between_counts_the_shops_calendar_days() -> None:
    # 07:00 on the 29th in Shanghai is still the 28th in UTC (NOW: the 6th in both)
    signed = datetime(2026, 11, 29, 7, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    specs = [{"when": f"days_between(page.last_at, now) == {n}", "skip": True} for n in (7, 8)]
    shanghai = Rules([RuleSpec.model_validate(s) for s in specs], ZoneInfo("Asia/Shanghai"))
    assert shanghai.results(page(last_at=signed), ROW, NOW) == [True, False]
    utc = Rules([RuleSpec.model_validate(s) for s in specs])  # counted in another zone
    assert utc.results(page(last_at=signed), ROW, NOW) == [False, True]


@pytest.mark.parametrize(
    ("when", "said"),
    [
        ("has_word(page.state, [1, 2])", "list of texts"),
        ("has_word(page.boxes, ['a'])", "takes a text"),
        ("days_between(page.state, now) > 1", "two timestamps"),
        ("has_word(page.state, ['re:(unclosed'])", "unclosed"),
    ],
)
def test_a_function_given_the_wrong_values_cannot_judge(when: str, said: str) -> None:
    decision = rules([{"when": when, "skip": True}]).decide(page(), ROW, NOW)
    assert (decision.outcome, decision.code) == ("hand_over", RULE_ERROR)
    assert said in decision.text


def test_a_field_not_read_given_to_a_function_goes_to_a_person() -> None:
    spec = {"when": "days_between(page.last_at, now) > 7", "act": "remind"}
    decision = rules([spec]).decide(page(last_at=None), ROW, NOW)
    assert (decision.outcome, decision.code) == ("hand_over", RULE_ERROR)
    assert "null" in decision.text


def test_the_check_refuses_a_function_misused_on_the_declared_types() -> None:
    found = rules([{"when": "has_word(page.boxes, ['a'])", "skip": True}]).check(FIELDS, ACTIONS)
    assert found and found[0][0] == "rules.1.when" and "takes a text" in found[0][1]
    fine = rules([{"when": "page.state.upperAscii() == 'A'", "skip": True}])  # cel.stdlib
    assert fine.check(FIELDS, ACTIONS) == []


def test_the_stdlib_namespaces_are_functions_not_unknown_names() -> None:
    spec = {"when": "math.abs(page.amount - 100.0) > 30.0", "skip": True}
    assert rules([spec]).check(FIELDS, ACTIONS) == []
    assert rules([spec]).decide(page(amount=Decimal("50")), ROW, NOW).outcome == "skip"
    wrong = rules([{"when": "maths.abs(page.amount) > 1.0", "skip": True}]).check(FIELDS, ACTIONS)
    assert wrong and "names maths" in wrong[0][1]


CHANGES = [
    {"when": "!has(last.amount)", "record": True, "note": "新增"},
    {"when": "page.amount > last.amount", "record": True, "note": "涨价"},
    {"when": "page.amount < last.amount", "record": True, "note": "降价"},
    {"when": "true", "skip": True},
]


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ({}, ("record", 1, "新增")),  # the first run: nothing remembered
        ({"amount": Decimal("80.00")}, ("record", 2, "涨价")),
        ({"amount": Decimal("99.00")}, ("record", 3, "降价")),
        ({"amount": Decimal("88.00")}, ("skip", 4, "")),
    ],
)
def test_last_is_what_an_earlier_run_read_and_a_rule_notes_the_change(
    last: dict[str, Any], expected: tuple[str, int, str]
) -> None:
    decision = rules(CHANGES).decide(page(), ROW, NOW, last)
    assert (decision.outcome, decision.rule, decision.note) == expected


def test_last_needs_a_flow_that_remembers() -> None:
    specs = rules(CHANGES)
    found = specs.check(FIELDS, ACTIONS)  # no "last" fields: the flow remembers nothing
    assert found and found[0][0] == "rules.1.when" and "remembers nothing" in found[0][1]
    remembering = {**FIELDS, "last": {**FIELDS["row"], **FIELDS["page"]}}
    assert specs.check(remembering, ACTIONS) == []
    wrong = rules([{"when": "page.amount > last.price", "skip": True}])
    assert "last.price" in wrong.check(remembering, ACTIONS)[0][1]


def test_hits_are_what_the_rules_see_and_a_macro_binds_its_own_name() -> None:
    spec = {"when": 'hits.exists(h, h.kind == "abuse")', "skip": True}
    assert rules([spec]).check({**FIELDS, "hits": {}}, ACTIONS) == []
    assert "declares no [words]" in rules([spec]).check(FIELDS, ACTIONS)[0][1]
    hit = {"kind": "abuse", "label": "辱骂", "word": "滚蛋", "text": "滾蛋"}
    assert rules([spec]).decide(page(), ROW, NOW, hits=[hit]).outcome == "skip"
    assert rules([spec]).decide(page(), ROW, NOW, hits=[]).code == "NO_RULE_MATCHED"


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (15, "warning"),  # +50 % exactly
        (14, None),
        (19, "warning"),
        (20, "critical"),  # +100 %
        (44, "critical"),
    ],
)
def test_a_rise_is_the_last_hour_against_the_average_of_the_hours_before(
    last: int, expected: str | None
) -> None:
    from robots.flow.words import rises

    now = datetime(2026, 12, 6, 12, 0)
    before = [now - timedelta(hours=h, minutes=30) for h in range(1, 7) for _ in range(10)]
    recent = [now - timedelta(minutes=59) for _ in range(last)]
    found = rises({"abuse": before + recent}, now, hours=6, least=5, warning=0.5, severe=1.0)
    assert [r.level for r in found] == ([expected] if expected else [])


def test_too_few_hits_before_is_no_rise_and_older_hits_do_not_count() -> None:
    from robots.flow.words import rises, window_counts

    now = datetime(2026, 12, 6, 12, 0)
    quiet = [now - timedelta(hours=h, minutes=30) for h in range(1, 7) for _ in range(4)]
    spike = [now - timedelta(minutes=5)] * 40
    assert rises({"a": quiet + spike}, now, hours=6, least=5, warning=0.5, severe=1.0) == []
    old = [now - timedelta(hours=9)] * 100
    assert window_counts(old + spike, now, 6) == [40, 0, 0, 0, 0, 0, 0]
