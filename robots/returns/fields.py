"""Every value the returns robot reads off a back-office search row, what it is exactly and
how the matcher uses it: the table behind the row reader, the scenario checks and the field
reference (`robots scenario fields returns`). A field the scenario gains is described here."""

from __future__ import annotations

from robots.engine.fields import FieldKind

# an unreadable row sends the parcel to a person: a candidate read wrong, or dropped, could
# make another order look like the match
ROW_FIELDS: dict[str, FieldKind] = {
    "order_id": FieldKind(means="The order the row is (the link target when no refund is)."),
    "refund_id": FieldKind(
        required=False,
        means="The order's open return request, if any: the parcel is linked to it.",
    ),
    "buyer_name": FieldKind(
        required=False,
        means="The receiver's name on the order, whole (compared with the parcel's sender: "
        "exact, or the surname alone).",
    ),
    "buyer_nick": FieldKind(required=False, means="The buyer's account name (in the workbook)."),
    "phone": FieldKind(
        required=False,
        means="The receiver's phone, masked as the shop shows it (138****5678): its last four "
        "digits, and the first three, are compared with the parcel's.",
    ),
    "district": FieldKind(
        required=False, means="The receiver's province, city and district (浙江省杭州市西湖区)."
    ),
    "lines": FieldKind(
        means="The order's lines as SKU×quantity, joined by ; (TS2301-BLK-M×1;DR2302-WHT-S×2): "
        "the parcel's SKUs must fit inside them.",
    ),
    "refunded": FieldKind(
        required=False,
        means="What was already refunded of each line, as SKU×quantity: a parcel may not "
        "bring back more than was bought less what was refunded.",
    ),
    "outbound_waybill": FieldKind(
        required=False,
        means="The waybill the order was shipped with: a parcel carrying it was refused by "
        "the buyer (拒收).",
    ),
    "return_waybill": FieldKind(
        required=False,
        means="The return waybill the buyer typed into the return request (the number alone).",
    ),
    "refund_created_at": FieldKind(
        "datetime",
        required=False,
        means="When the return request was made (shop time): a request shortly before the "
        "parcel arrived scores more.",
    ),
    "signed_at": FieldKind(
        "datetime",
        required=False,
        means="When the buyer signed for the order (shop time): a parcel arriving long after "
        "scores less.",
    ),
    "linked": FieldKind(
        "bool",
        means="Yes when a parcel is already linked to this order or request: it cannot take "
        "another one.",
    ),
}

# the parcel page, read after every link to verify it
PARCEL_FIELDS: dict[str, FieldKind] = {
    "linked_to": FieldKind(
        required=False,
        means="The order or refund the parcel is linked to, empty when none: after typing a "
        "link the robot waits until it shows the target (positional: a selector, no label).",
    )
}
