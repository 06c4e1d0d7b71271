"""Every value the refunds robot reads, what it is exactly and which rules read it.

The one table behind the page reader (``backoffice.py``), the scenario checks
(``scenario.py``) and the field reference (`robots scenario fields refunds`, docs/fields.md).
A field a scenario gains must be described here: a test fails otherwise.
"""

from __future__ import annotations

from robots.engine.fields import FieldKind
from robots.refunds.model import ORDER_STATUSES, REFUND_STATUSES, REFUND_TYPES

STATUS = (
    "The refund's status, mapped onto the robot's codes (`map`): WAIT_SELLER_AGREE (待商家处理: "
    "agree to a refund or a return), WAIT_SELLER_CONFIRM_GOODS (待商家收货: the goods are on "
    "their way back; pay once received), and the others, which the robot does not act on. A "
    "status nobody mapped is unreadable, never 'handled elsewhere'."
)

FIELDS: dict[str, FieldKind] = {
    "refund_id": FieldKind(
        means="The refund's number as the page shows it. It must be the refund the robot "
        "opened: another number is a wrong page (retried), not a value."
    ),
    "version": FieldKind(
        means="Anything that changes whenever the shop changes the record (a version number, "
        "an update time). Compared before pressing and after, so a refund edited by the buyer "
        "between reading and approving goes to a person (STALE_RECORD)."
    ),
    "status": FieldKind(choices=REFUND_STATUSES, means=STATUS, rules=("NOT_PENDING",)),
    "order_id": FieldKind(means="The order the refund belongs to (shown in the workbook)."),
    "buyer_nick": FieldKind(means="The buyer's account name (shown in the workbook)."),
    "has_good_return": FieldKind(
        "bool",
        means="Yes for 退货退款 (the buyer sends the goods back), no for 仅退款 (money only). "
        "Decides which rules apply: refund-only needs an unshipped order, a return the window "
        "and category rules.",
        rules=("REFUND_ONLY_AFTER_SHIPPING", "EXCLUDED_CATEGORY", "OUTSIDE_RETURN_WINDOW"),
    ),
    "refund_type": FieldKind(
        choices=REFUND_TYPES,
        means="REFUND for an ordinary refund; PRICE_PROTECTION (价保) and PRICE_DIFFERENCE "
        "(补差价) always go to a person.",
        rules=("NOT_A_PLAIN_REFUND",),
    ),
    "refund_fee": FieldKind(
        "money",
        means="The money this refund pays the buyer (¥, two decimals), not the order's total.",
        rules=("AMOUNT_EXCEEDS_PAID", "PARTIAL_REFUND", "OVER_AMOUNT_CAP", "DAILY_CAP_REACHED"),
    ),
    "payment": FieldKind(
        "money",
        means="What the buyer paid for this order line (实付, after discounts), not the whole "
        "order's payment: a refund below it is partial, above it is refused.",
        rules=("AMOUNT_EXCEEDS_PAID", "PARTIAL_REFUND"),
    ),
    "refund_sku": FieldKind(
        means="The SKU code the refund is for (the code alone, e.g. TS2301-BLK-M: cut it out "
        "of 'TS2301-BLK-M × 1' with a regex).",
        rules=("SKU_OR_QUANTITY_MISMATCH", "RETURN_MISMATCH"),
    ),
    "refund_quantity": FieldKind(
        "int",
        means="How many pieces the refund is for.",
        rules=("SKU_OR_QUANTITY_MISMATCH", "RETURN_MISMATCH"),
    ),
    "line_sku": FieldKind(
        means="The SKU code of the order line the refund belongs to.",
        rules=("SKU_OR_QUANTITY_MISMATCH",),
    ),
    "line_quantity": FieldKind(
        "int",
        means="How many pieces the buyer bought on that order line.",
        rules=("SKU_OR_QUANTITY_MISMATCH",),
    ),
    "category": FieldKind(
        means="The product's category as the page shows it, the whole path if it shows one "
        "(服饰内衣 > 女士内衣 > 文胸). `excluded_categories` match anywhere in it: a keyword "
        "that is also a platform's root (内衣 in 服饰内衣) excludes everything under that root; "
        "name leaves (文胸, 女士内衣) instead.",
        rules=("EXCLUDED_CATEGORY",),
    ),
    "reason": FieldKind(
        means="The reason the buyer chose, as worded on this platform (七天无理由, "
        "7天无理由退货). Matched against `merchant_fault_reasons` first, then `safe_reasons`; "
        "a reason in neither goes to a person.",
        rules=("MERCHANT_FAULT", "REASON_NOT_AUTOMATABLE"),
    ),
    "intervention": FieldKind(
        "bool",
        means="Yes while the platform's customer service is involved (平台介入, 客服介入): "
        "always a person's, and a rule no reviewer can waive.",
        rules=("PLATFORM_INTERVENTION",),
    ),
    "open_refunds_on_line": FieldKind(
        "int",
        means="Refunds still open on the same order line, this one included: 1 when this is "
        "the only one (a page showing 无 for 'no other refund' maps 无 to 1).",
        rules=("SEVERAL_OPEN_REFUNDS",),
    ),
    "order_status": FieldKind(
        choices=ORDER_STATUSES,
        means="The order's status, mapped onto the robot's codes (WAIT_SELLER_SEND_GOODS = "
        "待发货, not shipped; WAIT_BUYER_CONFIRM_GOODS = 已发货; TRADE_FINISHED = 交易成功 …). "
        "A refund-only request is approved only before shipping.",
        rules=("REFUND_ONLY_AFTER_SHIPPING",),
    ),
    "signed_at": FieldKind(
        "datetime",
        required=False,
        means="When the buyer signed for the goods (shop time); empty, or one of its `none` "
        "words (未签收), when not signed. The 7-day window counts from the next day.",
        rules=("RETURN_BEFORE_DELIVERY", "OUTSIDE_RETURN_WINDOW"),
    ),
    "created_at": FieldKind(
        "datetime", means="When the buyer asked for the refund (shop time; in the logs)."
    ),
    "deadline": FieldKind(
        "datetime",
        means="When the platform agrees by itself if the seller has not answered (shop time): "
        "hand-overs due within `escalate_within_hours` go on top of the workbook.",
    ),
    "has_gift": FieldKind(
        "bool",
        means="Yes when the order came with a gift (赠品): the refund's money must be split "
        "by a person.",
        rules=("GIFT_OR_SHARED_DISCOUNT",),
    ),
    "shared_discount": FieldKind(
        "bool",
        means="Yes when a cross-shop or shared discount (跨店/共享优惠) applied to the order.",
        rules=("GIFT_OR_SHARED_DISCOUNT",),
    ),
    "buyer_orders_90d": FieldKind(
        "int",
        means="The buyer's orders in this shop in the last 90 days, as the page counts them. "
        "With refunds but no orders the refund rate cannot be worked out: a person looks.",
        rules=("BUYER_RISK",),
    ),
    "buyer_refunds_90d": FieldKind(
        "int",
        means="The buyer's refunds in this shop in the last 90 days, as the page counts them "
        "(on most platforms this one included).",
        rules=("BUYER_RISK",),
    ),
    "buyer_blacklisted": FieldKind(
        "bool",
        means="Yes when the shop marked the buyer as a risk (黑名单).",
        rules=("BUYER_RISK",),
    ),
    "return_sid": FieldKind(
        required=False,
        means="The return waybill number the buyer typed (the number alone: cut the courier "
        "name, 圆通速递 YT…, away with a regex); empty for refund-only requests. Compared with "
        "the warehouse receipt's waybill; an empty one never matches.",
        rules=("RETURN_MISMATCH",),
    ),
    "receipt": FieldKind(
        "bool",
        means="Yes once the warehouse has booked the returned parcel in (已入库): no receipt, "
        "no money.",
        rules=("RETURN_NOT_RECEIVED",),
    ),
    "receipt_waybill": FieldKind(
        required=False,
        means="The waybill of the parcel the warehouse received (required when `receipt` says "
        "yes); must equal `return_sid`.",
        rules=("RETURN_MISMATCH",),
    ),
    "receipt_sku": FieldKind(
        required=False,
        means="The SKU code the warehouse found in the parcel; must equal `refund_sku`.",
        rules=("RETURN_MISMATCH",),
    ),
    "receipt_quantity": FieldKind(
        "int",
        required=False,
        means="How many pieces the warehouse found; must equal `refund_quantity`.",
        rules=("RETURN_MISMATCH",),
    ),
}

# ... and off each row of the list
ROW_FIELDS: dict[str, FieldKind] = {
    "refund_id": FieldKind(means="The refund's number in the row (its item in the ledger)."),
    "status": FieldKind(
        choices=REFUND_STATUSES,
        means=STATUS + " With `{status}` in the list's path every row must show the status "
        "asked for: a row in another one stops the run (the path does not filter).",
    ),
    "version": FieldKind(
        required=False,
        means="As the page's version: a refund handed over and unchanged since is not read "
        "again. Needed by batch approval (a row is ticked only while it shows the version "
        "decided on).",
    ),
}
