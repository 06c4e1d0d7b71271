"""Typed, fail-closed field specs (robots.engine.fields) and what they mean for the refunds
policy: a field the robot cannot read can only send a refund to a person, never approve it."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from test_policy import REFUND_ONLY, RETURN_RECEIVED, RETURN_REQUEST

from robots.config import FieldSpec
from robots.engine.fields import LABELS, Field, FieldKind, UnreadableField
from robots.refunds.backoffice import RefundBackOffice
from robots.refunds.fields import FIELDS
from robots.refunds.model import RefundRequest
from robots.refunds.policy import Approve, decide
from robots.refunds.scenario import load_refund_scenario
from robots.runtime.clock import ShopClock

CLOCK = ShopClock("Asia/Shanghai")
SCENARIO = load_refund_scenario(
    __import__("pathlib").Path(__file__).parent.parent / "scenarios/demo-shop/refunds.toml"
)


def field(kind: str = "text", **spec: Any) -> Field:
    return Field.of("f", FieldSpec(selector="#f", **spec), FieldKind(kind))


@pytest.mark.parametrize(
    ("kind", "spec", "shown", "value"),
    [
        ("money", {}, "¥1,299.00", Decimal("1299.00")),
        ("money", {}, "￥ 88 元", Decimal("88.00")),
        ("money", {}, "１２８.５", Decimal("128.50")),  # full-width digits
        ("int", {}, "1,024", 1024),
        ("int", {"regex": r"退款 (\d+) 次"}, "近90天 退款 2 次 / 下单 5 次", 2),
        ("int", {"regex": r"下单 (?P<value>\d+) 次"}, "近90天 退款 2 次 / 下单 5 次", 5),
        ("bool", {}, "是", True),
        ("bool", {}, " FALSE ", False),
        ("bool", {"true": ["含赠品"], "false": ["无"]}, "含赠品", True),
        ("text", {"map": {"待商家处理": "WAIT_SELLER_AGREE"}}, " 待商家处理 ", "WAIT_SELLER_AGREE"),
        ("text", {"map": {"仅退款": "0"}}, "仅 退款", "0"),  # spaces inside are folded
        ("text", {"regex": r"退款编号：(\S+)"}, "退款编号：RF2026", "RF2026"),
    ],
)
def test_values_are_typed(kind: str, spec: dict[str, Any], shown: str, value: object) -> None:
    assert field(kind, **spec).value([shown], CLOCK) == value


def test_chinese_dates_are_read_in_the_shop_zone() -> None:
    read = field("datetime").value(["2026年11月20日 14:03"], CLOCK)
    assert read == CLOCK.read(datetime(2026, 11, 20, 14, 3))
    assert read.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    ("kind", "spec", "found", "problem"),
    [
        ("text", {}, [], "找不到该元素"),  # the selector matched nothing
        ("text", {}, ["  "], "该元素为空"),
        ("bool", {}, ["maybe"], "既不是"),  # not one of the words: never "no"
        ("bool", {}, [""], "该元素为空"),  # empty is not "no"
        ("money", {}, ["免费"], "不是金额"),
        ("money", {}, ["12.345"], "两位小数"),
        ("int", {}, ["两件"], "不是整数"),
        ("datetime", {}, ["昨天下午"], "不是日期时间"),
        ("text", {"map": {"待商家处理": "WAIT_SELLER_AGREE"}}, ["已完成"], "不在映射表"),
        ("text", {"regex": r"RF\d+"}, ["订单号 TB1"], "不符合正则"),
    ],
)
def test_what_cannot_be_read_fails_closed(
    kind: str, spec: dict[str, Any], found: list[str], problem: str
) -> None:
    with pytest.raises(UnreadableField) as caught:
        field(kind, **spec).value(found, CLOCK)
    assert caught.value.code == "UNREADABLE_FIELD"
    assert "f" in str(caught.value) and "#f" in str(caught.value) and problem in str(caught.value)


def test_optional_fields_read_empty_as_nothing_and_all_reads_every_match() -> None:
    assert (
        Field.of("f", FieldSpec(selector="#f"), FieldKind(required=False)).value([], CLOCK) is None
    )
    assert field("int", all=True).value(["1", " ", "3"], CLOCK) == [1, 3]
    assert field("text", default="无").value([""], CLOCK) == "无"


def test_none_words_read_as_absent_and_choices_refuse_unknown_values() -> None:
    signed = Field.of(
        "signed_at", FieldSpec(selector="#s", none=["未签收", "—"]), FieldKind("datetime", False)
    )
    assert signed.value(["未签收"], CLOCK) is None and signed.value([" — "], CLOCK) is None
    required = Field.of("return_sid", FieldSpec(selector="#r", none=["—"]), FieldKind())
    with pytest.raises(UnreadableField, match=r"找不到|为空"):
        required.value(["—"], CLOCK)
    status = Field.of(
        "status",
        FieldSpec(selector="#st", map={"待商家处理": "WAIT_SELLER_AGREE", "神秘状态": "MYSTERY"}),
        FieldKind("text", choices=("WAIT_SELLER_AGREE", "SUCCESS")),
    )
    assert status.value(["待商家处理"], CLOCK) == "WAIT_SELLER_AGREE"
    with pytest.raises(UnreadableField, match="不是已知的取值"):
        status.value(["神秘状态"], CLOCK)  # mapped, but onto nothing the robot knows
    with pytest.raises(UnreadableField, match="不在映射表中"):
        status.value(["已完成"], CLOCK)


# -- the refunds policy, read through the demo scenario ------------------------------------------
def shown(value: object) -> list[str]:
    """What the demo shop's page shows for a value (its data-value attributes and texts)."""
    if value is None:
        return []
    if isinstance(value, bool):
        return ["1" if value else "0"]
    if isinstance(value, datetime):
        return [value.strftime("%Y-%m-%d %H:%M:%S")]
    return [str(value)]


def page_of(refund: RefundRequest) -> dict[str, list[str]]:
    raw = {f.name: shown(getattr(refund, f.name)) for f in dataclass_fields(refund)}
    receipt = refund.receipt
    raw["receipt"] = shown(receipt is not None)
    raw["receipt_waybill"] = shown(receipt.waybill if receipt else None)
    raw["receipt_sku"] = shown(receipt.sku if receipt else None)
    raw["receipt_quantity"] = shown(receipt.quantity if receipt else None)
    return labelled(raw)


def labelled(raw: dict[str, list[str]]) -> dict[str, Any]:
    """``raw`` as the demo shop's page reads it: each value beside its field's label."""
    fields = RefundBackOffice(SCENARIO, CLOCK).reader.fields
    return raw | {
        LABELS + name: [f.label] * len(raw[name]) for name, f in fields.items() if f.label
    }


NOW = CLOCK.read(datetime(2026, 11, 23, 10, 0))
APPROVABLE = {
    "refund only": REFUND_ONLY,
    "return request": RETURN_REQUEST,
    "return received": RETURN_RECEIVED,
}
# refunds a person must see because one field says so: a broken reading of that field must
# not turn them into approvals (a missing element once read as "no" and approved them)
HANDED_OVER = {
    "intervention": replace(REFUND_ONLY, intervention=True),
    "gift": replace(REFUND_ONLY, has_gift=True),
    "shared discount": replace(REFUND_ONLY, shared_discount=True),
    "blacklisted": replace(REFUND_ONLY, buyer_blacklisted=True),
    "risky buyer": replace(REFUND_ONLY, buyer_refunds_90d=5),
    "merchant fault": replace(REFUND_ONLY, reason="商品破损"),
    "over the cap": replace(REFUND_ONLY, refund_fee=Decimal("500.00"), payment=Decimal("500.00")),
    "partial": replace(REFUND_ONLY, refund_fee=Decimal("100.00")),
    "excluded category": replace(RETURN_REQUEST, category="内衣"),
    "shipped refund-only": replace(REFUND_ONLY, order_status="WAIT_BUYER_CONFIRM_GOODS"),
    "several open": replace(REFUND_ONLY, open_refunds_on_line=2),
    "not received": replace(RETURN_RECEIVED, receipt=None),
    "price protection": replace(REFUND_ONLY, refund_type="PRICE_PROTECTION"),
}
# a selector that points at nothing (a typo, a changed page) or at an empty element; a
# selector on the wrong element is caught by the type of every typed field (next test), not
# for free text: any text is a category, so keep those selectors exact (or give a regex/map)
BROKEN = {"matches nothing": [], "an empty element": [""]}


def decide_page(raw: dict[str, list[str]]) -> object:
    """The decision, or "person" when the page cannot be read."""
    try:
        refund = RefundBackOffice(SCENARIO, CLOCK).parse(raw)
    except UnreadableField:
        return "person"
    return decide(refund, SCENARIO.policy, NOW)


@pytest.mark.parametrize("which", list(APPROVABLE))
def test_the_pages_of_approvable_refunds_are_approved(which: str) -> None:
    assert isinstance(decide_page(page_of(APPROVABLE[which])), Approve)


@pytest.mark.parametrize("which", list(HANDED_OVER))
def test_the_pages_of_the_others_are_handed_over(which: str) -> None:
    assert not isinstance(decide_page(page_of(HANDED_OVER[which])), Approve)


@pytest.mark.parametrize("broken", list(BROKEN))
@pytest.mark.parametrize("name", sorted(FIELDS))
def test_a_broken_field_only_turns_approvals_into_hand_overs(name: str, broken: str) -> None:
    """For every field the policy reads, and every refund the robot would approve: a selector
    that matches nothing, an empty element or the wrong element never yields a different
    approval; the refund goes to a person or is approved exactly as before."""
    for refund in [*APPROVABLE.values(), *HANDED_OVER.values()]:
        raw = page_of(refund)
        before = decide_page(raw)
        after = decide_page(labelled({**raw, name: BROKEN[broken]}))
        assert not isinstance(after, Approve) or after == before, (name, broken, after)


@pytest.mark.parametrize("name", sorted(n for n, k in FIELDS.items() if k.type != "text"))
def test_a_typed_field_on_the_wrong_element_is_unreadable(name: str) -> None:
    """A label where a number, an amount, a yes/no or a time belongs: a person looks."""
    with pytest.raises(UnreadableField, match=name):
        RefundBackOffice(SCENARIO, CLOCK).parse(
            labelled({**page_of(RETURN_RECEIVED), name: ["平台介入"]})
        )


def test_every_policy_field_is_declared() -> None:
    declared = set(FIELDS) - {"receipt", "receipt_waybill", "receipt_sku", "receipt_quantity"}
    assert declared == {f.name for f in dataclass_fields(RefundRequest)} - {"receipt"}


def test_a_returns_search_row_fails_closed_and_the_short_form_still_loads(tmp_path: Any) -> None:
    """A search row whose 'linked' flag reads as neither yes nor no is unreadable (the parcel
    goes to a person), never "not linked"; [search.attributes] still loads."""
    from robots.returns.backoffice import ReturnsBackOffice
    from robots.returns.scenario import load as load_returns

    file = __import__("pathlib").Path(__file__).parent.parent / "scenarios/demo-shop/returns.toml"
    bo = ReturnsBackOffice(load_returns(file))
    row = {name: [""] for name in bo.row_reader.fields} | {
        "order_id": ["TB1"],
        "lines": ["TS-1×1"],
        "linked": ["0"],
    }
    assert bo.row_reader.read(row)["linked"] is False
    with pytest.raises(UnreadableField, match="linked"):
        bo.row_reader.read({**row, "linked": ["处理中"]})
    with pytest.raises(UnreadableField, match="linked"):
        bo.row_reader.read({**row, "linked": []})
    text = file.read_text(encoding="utf-8")
    fields = text[text.index("[search.fields]") : text.index("[parcel_page]")]
    short = "[search.attributes]\n" + "\n".join(
        f'{ln.split(" = ")[0]} = "{ln.split("attribute = ")[1].split(chr(34))[1]}"'
        for ln in fields.splitlines()
        if "attribute = " in ln
    )
    old = tmp_path / "returns.toml"
    old.write_text(text.replace(fields, short + "\n\n"), encoding="utf-8")
    spec = load_returns(old).search.row_fields["linked"]
    assert (spec.selector, spec.attribute) == (":scope", "data-linked")
