"""The auto-approval policy for refunds (DOMAIN.md §1), as pure functions of the record.

No browser, no clock, no I/O: ``decide`` gets the refund, the scenario's rules and "now",
and answers *approve with this action* or *hand to a person with this reason*. It never
answers "reject": refusing money is a person's call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from robots.engine.wording import check_entry, first_match
from robots.refunds.model import (
    WAIT_SELLER_AGREE,
    WAIT_SELLER_CONFIRM_GOODS,
    WAIT_SELLER_SEND_GOODS,
    RefundRequest,
    WarehouseReceipt,
)

# The actions the robot can take; each names the status it leaves the refund in.
AGREE_REFUND = "agree_refund"  # refund-only: pay now
AGREE_RETURN = "agree_return"  # return-and-refund: let the buyer send the goods back
CONFIRM_REFUND = "confirm_refund"  # goods are back in the warehouse: pay now
STATUS_AFTER = {
    AGREE_REFUND: "SUCCESS",
    AGREE_RETURN: "WAIT_BUYER_RETURN_GOODS",
    CONFIRM_REFUND: "SUCCESS",
}
# ... and the status it needs: a record still there after we pressed was not acted on (each
# action moves the record out of it, so a status read proves whether our press landed)
STATUS_BEFORE = {
    AGREE_REFUND: WAIT_SELLER_AGREE,
    AGREE_RETURN: WAIT_SELLER_AGREE,
    CONFIRM_REFUND: WAIT_SELLER_CONFIRM_GOODS,
}
MOVES_MONEY = {AGREE_REFUND, CONFIRM_REFUND}

# Stable reason codes, with the plain-Chinese text ops staff read in the report.
REASONS = {
    "NOT_PENDING": "退款单不在待卖家处理状态",
    "PLATFORM_INTERVENTION": "平台客服已介入，需人工处理",
    "NOT_A_PLAIN_REFUND": "价保/差价类退款，需人工核对",
    "AMOUNT_EXCEEDS_PAID": "退款金额超过该订单行实付金额",
    "SEVERAL_OPEN_REFUNDS": "同一订单行存在多笔未完结退款",
    "SKU_OR_QUANTITY_MISMATCH": "退款商品或数量与订单行不一致",
    "GIFT_OR_SHARED_DISCOUNT": "订单含赠品或共享优惠，需人工拆分金额",
    "PARTIAL_REFUND": "部分退款，需人工核对金额",
    "MERCHANT_FAULT": "商家责任原因（破损/质量/错漏发等），需人工处理",
    "REASON_NOT_AUTOMATABLE": "退款原因不在自动处理范围内",
    "BUYER_RISK": "买家风险：近90天退款过多、退款率过高或在黑名单",
    "OVER_AMOUNT_CAP": "退款金额超过单笔自动审批上限",
    "REFUND_ONLY_AFTER_SHIPPING": "已发货订单申请仅退款，需人工确认",
    "EXCLUDED_CATEGORY": "该类目不支持七天无理由退货",
    "RETURN_BEFORE_DELIVERY": "买家未签收即申请退货，需人工确认",
    "OUTSIDE_RETURN_WINDOW": "已超过七天无理由退货期限",
    "RETURN_NOT_RECEIVED": "退货尚未入库（未收到货不退款）",
    "RETURN_MISMATCH": "入库包裹的商品或数量与退款不一致",
    "DAILY_CAP_REACHED": "已达当日自动退款总额上限",
    "STALE_RECORD": "操作前退款单已被修改，需人工复核",
    "UNREADABLE_FIELD": "页面字段无法读取或无法识别，需人工核对",
    "SYSTEM_ERROR": "系统异常，多次重试仍失败，请人工处理",
}


Keywords = Annotated[
    tuple[Annotated[str, AfterValidator(check_entry)], ...],
    Field(description="keywords: normalised, matched anywhere, * for anything, re: a regex"),
]


class RefundRules(BaseModel):
    """Every threshold of the policy; a scenario's ``[policy]`` table fills it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_auto_amount: Decimal = Field(
        default=Decimal("300"),
        gt=0,
        decimal_places=2,
        description="auto-approve up to this amount per refund (¥)",
    )
    daily_auto_total: Decimal = Field(
        default=Decimal("20000"),
        gt=0,
        decimal_places=2,
        description="money auto-approved per day, in all (¥)",
    )
    return_window_days: int = Field(default=7, ge=0, le=60)
    buyer_max_refunds_90d: int = Field(
        default=3, ge=1, description="this many refunds in 90 days makes a buyer risky"
    )
    buyer_max_refund_rate: float = Field(default=0.5, gt=0, le=1)
    escalate_within_hours: float = Field(default=12, gt=0)
    # keywords (robots.engine.wording): matched after normalisation, anywhere in the text,
    # ``*`` for anything, ``re:`` for a regular expression. A reason no list knows goes to a
    # person; merchant fault is checked first, so a reason naming both goes to a person.
    safe_reasons: Keywords = (
        "多拍",
        "拍错",
        "不想要",
        "七天无理由",
        "7天无理由",
        "不喜欢",
        "不合适",
    )
    merchant_fault_reasons: Keywords = (
        "破损",
        "质量",
        "漏发",
        "少件",
        "少发",
        "发错",
        "错发",
        "描述不符",
        "物流停滞",
        "签收异常",
        "假货",
        "变质",
    )
    excluded_categories: Keywords = ("内衣", "文胸", "定制", "生鲜", "数码*已拆封")


@dataclass(frozen=True)
class Approve:
    """Approve with ``action``; ``amount`` is the money it moves (0 for a return request)."""

    action: str
    amount: Decimal


@dataclass(frozen=True)
class HandOver:
    """Hand the refund to a person; ``code`` is the headline (the first rule that failed,
    stable), ``codes`` every rule that failed, in the policy's order."""

    code: str
    codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.codes:
            object.__setattr__(self, "codes", (self.code,))

    @property
    def reason(self) -> str:
        return REASONS[self.code]

    @property
    def reasons(self) -> str:
        """Every failed rule in Chinese, one after the other (what a reviewer reads)."""
        return reasons_text(self.codes)


def reasons_text(codes: Iterable[str]) -> str:
    """Rules in Chinese, one after the other."""
    return "；".join(REASONS[c] for c in codes)


Decision = Approve | HandOver

# Rules a person reviewing a hand-over cannot waive: ``robots apply`` re-reads the record and
# refuses an approval while it still fails one (a scenario's ``[review] hard_rules`` may list
# others). Money for goods the warehouse never received, a refund under platform arbitration,
# more than the buyer paid, or a record no longer waiting for the seller.
HARD_RULES = ("NOT_PENDING", "PLATFORM_INTERVENTION", "AMOUNT_EXCEEDS_PAID", "RETURN_NOT_RECEIVED")


# the codes ``failures`` can name (the rest of REASONS are the robot's own: cap, stale, ...)
RULE_CODES = tuple(
    c
    for c in REASONS
    if c not in ("DAILY_CAP_REACHED", "STALE_RECORD", "UNREADABLE_FIELD", "SYSTEM_ERROR")
)


def _known_rules(codes: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [c for c in codes if c not in RULE_CODES]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r} (expected one of {', '.join(RULE_CODES)})")
    return codes


class ReviewRules(BaseModel):
    """What a person reviewing hand-overs may waive (a scenario's ``[review]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hard_rules: Annotated[tuple[str, ...], AfterValidator(_known_rules)] = Field(
        default=HARD_RULES,
        description="rules a reviewed approval cannot waive: `robots apply` re-reads the "
        "record and refuses while it still fails one",
    )


def shop_time(now: datetime, what: str = "now") -> datetime:
    """``now`` as the rules take it: with its zone. A naive time would be read silently as
    whatever zone the host is in, moving the return window and the deadline by hours."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{what} must carry the shop's time zone (a naive {now.isoformat()})")
    return now


def failures(refund: RefundRequest, rules: RefundRules, now: datetime) -> list[str]:
    """Every rule the refund fails, in the policy's order (the first is the headline)."""
    shop_time(now)
    failed: list[str] = []

    def check(code: str, fails: bool) -> None:
        if fails:
            failed.append(code)

    check("NOT_PENDING", refund.status not in (WAIT_SELLER_AGREE, WAIT_SELLER_CONFIRM_GOODS))
    check("PLATFORM_INTERVENTION", refund.intervention)
    check("NOT_A_PLAIN_REFUND", refund.refund_type != "REFUND")
    check("AMOUNT_EXCEEDS_PAID", refund.refund_fee > refund.payment)
    check("SEVERAL_OPEN_REFUNDS", refund.open_refunds_on_line > 1)
    check(
        "SKU_OR_QUANTITY_MISMATCH",
        (refund.refund_sku, refund.refund_quantity) != (refund.line_sku, refund.line_quantity),
    )
    check("GIFT_OR_SHARED_DISCOUNT", refund.has_gift or refund.shared_discount)
    check("PARTIAL_REFUND", refund.refund_fee < refund.payment)
    merchant_fault = first_match(rules.merchant_fault_reasons, refund.reason) is not None
    check("MERCHANT_FAULT", merchant_fault)
    # a reason naming merchant fault is not "also not automatable": one reason, one row
    check(
        "REASON_NOT_AUTOMATABLE",
        not merchant_fault and first_match(rules.safe_reasons, refund.reason) is None,
    )
    check("BUYER_RISK", buyer_is_risky(refund, rules))
    check("OVER_AMOUNT_CAP", refund.refund_fee > rules.max_auto_amount)

    if refund.status == WAIT_SELLER_CONFIRM_GOODS:
        receipt = refund.receipt
        check("RETURN_NOT_RECEIVED", receipt is None)
        check("RETURN_MISMATCH", receipt is not None and not receipt_matches(refund, receipt))
    elif not refund.has_good_return:
        check("REFUND_ONLY_AFTER_SHIPPING", refund.order_status != WAIT_SELLER_SEND_GOODS)
    else:
        check(
            "EXCLUDED_CATEGORY", first_match(rules.excluded_categories, refund.category) is not None
        )
        check("RETURN_BEFORE_DELIVERY", refund.signed_at is None)
        check(
            "OUTSIDE_RETURN_WINDOW",
            refund.signed_at is not None
            and not within_return_window(refund.signed_at, now, rules.return_window_days),
        )
    return failed


def decide(refund: RefundRequest, rules: RefundRules, now: datetime) -> Decision:
    """Apply the policy: approve with the action the refund's stage takes, or hand it to a
    person naming every rule it fails (the first one is the headline)."""
    failed = failures(refund, rules, now)
    if failed:
        return HandOver(failed[0], tuple(failed))
    if refund.status == WAIT_SELLER_CONFIRM_GOODS:
        return Approve(CONFIRM_REFUND, refund.refund_fee)
    if not refund.has_good_return:
        return Approve(AGREE_REFUND, refund.refund_fee)
    return Approve(AGREE_RETURN, Decimal("0"))


def reviewed_action(refund: RefundRequest) -> str | None:
    """What a person's "approve" means for the record at its stage; None if nothing can be
    approved there (not waiting for the seller)."""
    if refund.status == WAIT_SELLER_CONFIRM_GOODS:
        return CONFIRM_REFUND
    if refund.status == WAIT_SELLER_AGREE:
        return AGREE_RETURN if refund.has_good_return else AGREE_REFUND
    return None


def receipt_matches(refund: RefundRequest, receipt: WarehouseReceipt) -> bool:
    """The parcel the warehouse received is this return: the same waybill (an empty one on
    either side matches nothing, not another empty one), SKU and quantity."""
    waybill = _waybill(receipt.waybill)
    return (
        bool(waybill)
        and waybill == _waybill(refund.return_sid)
        and (receipt.sku, receipt.quantity) == (refund.refund_sku, refund.refund_quantity)
    )


def _waybill(text: str) -> str:
    """A waybill as compared: spaces dropped, letters upper case (sf 1234 = SF1234)."""
    return "".join((text or "").split()).upper()


def buyer_is_risky(refund: RefundRequest, rules: RefundRules) -> bool:
    """Blacklisted, too many refunds, or too high a refund rate; a rate that cannot be
    worked out (refunds but no orders counted) is risky: a person looks."""
    refunds, orders = refund.buyer_refunds_90d, refund.buyer_orders_90d
    if refund.buyer_blacklisted or refunds >= rules.buyer_max_refunds_90d:
        return True
    if orders <= 0:
        return refunds > 0
    return refunds / orders > rules.buyer_max_refund_rate


def within_return_window(signed_at: datetime, now: datetime, days: int) -> bool:
    """七日无理由: the days are counted from the day after signing, whole days, on the
    shop's calendar (``now`` is taken in the zone the signing time was read in)."""
    now = shop_time(now).astimezone(shop_time(signed_at, "signed_at").tzinfo)
    return now.date() <= signed_at.date() + timedelta(days=days)


def is_urgent(refund: RefundRequest, rules: RefundRules, now: datetime) -> bool:
    """Would the platform's deadline pass within the escalation window?"""
    return shop_time(refund.deadline, "deadline") - shop_time(now) <= timedelta(
        hours=rules.escalate_within_hours
    )
