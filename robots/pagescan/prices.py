"""Price checks on one product page (DOMAIN.md §4), as pure functions.

No browser, no I/O: ``check_prices`` gets the page as read, the approved price list, the
prices remembered from the last scan and the scenario's thresholds, and returns findings.
Where one finding implies another on the same SKU, only the stronger is reported: a decimal
slip is also a mismatch, a price below cost is also below the floor.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from robots.pagescan.model import PriceFinding, PriceListEntry, ProductPage

RULES = {  # stable code -> (default severity, plain Chinese for ops)
    "BELOW_COST": ("critical", "到手价低于成本价"),
    "DECIMAL_SLIP": ("critical", "疑似小数点错误（约为核准价的十分之一或十倍）"),
    "BELOW_FLOOR": ("high", "到手价低于核准最低价"),
    "DEEP_DISCOUNT": ("high", "未报名活动却低于吊牌价三折（折扣超过七成）"),
    "PAGE_PRICE_MISMATCH": ("high", "页面标价与SKU表价格不一致"),
    "PRICE_MISMATCH": ("medium", "售价与核准价相差超过允许范围"),
    "VARIANT_SPREAD": ("medium", "同款不同规格价差过大且未设尺码加价"),
    "PRICE_CHANGED": ("medium", "与上次扫描相比价格变动过大"),
    "UNLISTED_SKU": ("low", "SKU不在核准价格表中"),
}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# what each rule's reference price is (a reviewer sees which number the page was held to)
REFERENCE_NAMES = {
    "BELOW_COST": "成本价",
    "DECIMAL_SLIP": "核准价",
    "BELOW_FLOOR": "最低价",
    "DEEP_DISCOUNT": "吊牌价",
    "PAGE_PRICE_MISMATCH": "SKU表售价",
    "PRICE_MISMATCH": "核准价",
    "VARIANT_SPREAD": "同款售价中位数",
    "PRICE_CHANGED": "上次扫描价",
    "UNLISTED_SKU": "",
}


class PriceRules(BaseModel):
    """Every threshold of the price checks; defaults are DOMAIN.md §4's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mismatch_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0, le=1)
    max_discount_off_list: Decimal = Field(default=Decimal("0.70"), gt=0, lt=1)
    declared_promotions: tuple[str, ...] = ()
    decimal_slip_low: tuple[Decimal, Decimal] = (Decimal("0.095"), Decimal("0.105"))
    decimal_slip_high: tuple[Decimal, Decimal] = (Decimal("9.5"), Decimal("10.5"))
    variant_spread: Decimal = Field(default=Decimal("0.30"), gt=0)
    change_since_last_scan: Decimal = Field(default=Decimal("0.50"), gt=0)
    severity: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> PriceRules:
        for name in ("decimal_slip_low", "decimal_slip_high"):
            low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(f"{name} must be [low, high] with 0 < low < high")
        for code, level in self.severity.items():
            if code not in RULES:
                raise ValueError(f"severity: unknown rule {code!r} (one of {', '.join(RULES)})")
            if level not in SEVERITY_ORDER:
                raise ValueError(f"severity.{code}: {level!r} is not one of {list(SEVERITY_ORDER)}")
        return self

    def severity_of(self, rule: str) -> str:
        return self.severity.get(rule, RULES[rule][0])


def _ratio(a: Decimal, b: Decimal) -> Decimal:
    return a / b if b else Decimal("Infinity")


def check_prices(
    page: ProductPage,
    price_list: Mapping[str, PriceListEntry],
    last_scan: Mapping[str, Decimal],
    rules: PriceRules,
) -> list[PriceFinding]:
    found: list[PriceFinding] = []

    def add(sku: str, rule: str, shown: Decimal, reference: Decimal | None, note: str = "") -> None:
        found.append(
            PriceFinding(
                page.product_id,
                page.url,
                sku,
                rule,
                rules.severity_of(rule),
                shown,
                reference,
                note or RULES[rule][1],
                title=page.title,
            )
        )

    declared = page.promotion in rules.declared_promotions if page.promotion else False
    for offer in page.skus:
        entry = price_list.get(offer.sku)
        previous = last_scan.get(offer.sku)
        if previous is not None and previous > 0:
            change = abs(offer.price - previous) / previous
            if change > rules.change_since_last_scan:
                add(offer.sku, "PRICE_CHANGED", offer.price, previous, f"上次 {previous}")
        if entry is None:
            add(offer.sku, "UNLISTED_SKU", offer.price, None)
            continue
        if offer.final_price < entry.cost:
            add(offer.sku, "BELOW_COST", offer.final_price, entry.cost)
        elif entry.floor is not None and offer.final_price < entry.floor:
            add(offer.sku, "BELOW_FLOOR", offer.final_price, entry.floor)
        ratio = _ratio(offer.price, entry.approved)
        low, high = rules.decimal_slip_low, rules.decimal_slip_high
        if low[0] <= ratio <= low[1] or high[0] <= ratio <= high[1]:
            add(offer.sku, "DECIMAL_SLIP", offer.price, entry.approved)
        elif abs(ratio - 1) > rules.mismatch_tolerance:
            add(offer.sku, "PRICE_MISMATCH", offer.price, entry.approved)
        list_price = entry.list_price or offer.list_price
        if not declared and list_price:
            floor_by_list = list_price * (1 - rules.max_discount_off_list)
            if offer.final_price < floor_by_list:
                add(offer.sku, "DEEP_DISCOUNT", offer.final_price, list_price)

    found += _variant_spread(page, price_list, rules)
    if page.page_price is not None and page.skus:
        cheapest = min(page.skus, key=lambda s: s.price)
        if page.page_price != cheapest.price:
            add(cheapest.sku, "PAGE_PRICE_MISMATCH", page.page_price, cheapest.price)
    return found


def _variant_spread(
    page: ProductPage,
    price_list: Mapping[str, PriceListEntry],
    rules: PriceRules,
) -> list[PriceFinding]:
    """Variants of one style more than ``variant_spread`` apart, unless sizes carry a premium."""
    styles: dict[str, list[tuple[str, Decimal]]] = {}
    premium: set[str] = set()
    for offer in page.skus:
        entry = price_list.get(offer.sku)
        style = entry.style if entry else page.product_id
        if entry and entry.size_premium:
            premium.add(style)
        styles.setdefault(style, []).append((offer.sku, offer.price))
    out = []
    for style, offers in styles.items():
        if style in premium or len(offers) < 2:
            continue
        prices = [p for _, p in offers]
        low, high = min(prices), max(prices)
        if low <= 0 or high / low - 1 <= rules.variant_spread:
            continue
        median = Decimal(str(statistics.median(prices)))
        sku, price = max(offers, key=lambda o: abs(o[1] - median) / median)
        out.append(
            PriceFinding(
                page.product_id,
                page.url,
                sku,
                "VARIANT_SPREAD",
                rules.severity_of("VARIANT_SPREAD"),
                price,
                median,
                f"{RULES['VARIANT_SPREAD'][1]}（款 {style}：{low}–{high}）",
                title=page.title,
            )
        )
    return out
