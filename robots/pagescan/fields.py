"""Every part of a product page the page scan reads, what it is exactly and which rules read
it: the field reference (`robots scenario fields pagescan`). A field the scenario's
``[product]`` table gains is described here (a test compares the two)."""

from __future__ import annotations

from robots.engine.fields import FieldKind

WORDS = ("banned words (违禁词)",)
PRODUCT_FIELDS: dict[str, FieldKind] = {
    "product_id": FieldKind(
        means="The product's (style's) id on the page: findings name it; a SKU missing from "
        "the price list is grouped by it."
    ),
    "title": FieldKind(means="The product's title, scanned for banned words.", rules=WORDS),
    "subtitle": FieldKind(required=False, means="The selling line under the title.", rules=WORDS),
    "image_alts": FieldKind(
        required=False, means="The alt text of every gallery image (every match).", rules=WORDS
    ),
    "detail": FieldKind(required=False, means="The detail (详情) text.", rules=WORDS),
    "promotion": FieldKind(
        required=False,
        means="The name of the promotion the page shows: a discount deeper than "
        "max_discount_off_list is fine only inside a declared promotion.",
        rules=("DEEP_DISCOUNT",),
    ),
    "page_price": FieldKind(
        "money",
        required=False,
        means="The headline price (the first number in its text): must equal the cheapest "
        "SKU's price in the SKU table.",
        rules=("PAGE_PRICE_MISMATCH",),
    ),
    "sku_code": FieldKind(
        means="Inside each SKU row: the SKU code, as the price list names it.",
        rules=("UNLISTED_SKU",),
    ),
    "sku_name": FieldKind(
        means="Inside each SKU row: the variant's name (颜色/尺码), scanned for banned words.",
        rules=WORDS,
    ),
    "sku_price": FieldKind(
        "money",
        means="Inside each SKU row: the price shown (the first number in its text), compared "
        "with the approved price, the floor, the cost, the list price and the last scan.",
        rules=(
            "PRICE_MISMATCH",
            "BELOW_FLOOR",
            "BELOW_COST",
            "DECIMAL_SLIP",
            "DEEP_DISCOUNT",
            "VARIANT_SPREAD",
            "PRICE_CHANGED",
        ),
    ),
    "sku_final_price": FieldKind(
        "money",
        required=False,
        means="Inside each SKU row: 到手价, the price after coupons and store-wide discounts "
        "(without it the shown price is what the shopper pays); compared with cost and floor.",
        rules=("BELOW_COST", "BELOW_FLOOR"),
    ),
    "sku_list_price": FieldKind(
        "money",
        required=False,
        means="Inside each SKU row: the list (吊牌) price the discount is measured from; else "
        "the price list's.",
        rules=("DEEP_DISCOUNT",),
    ),
    "extra": FieldKind(
        required=False,
        means="A table of more texts, by name, scanned for banned words like the title.",
        rules=WORDS,
    ),
}
