"""Price rules of DOMAIN.md §4 at their edges, with no browser."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from robots.pagescan.model import PriceListEntry, ProductPage, SkuOffer
from robots.pagescan.prices import PriceRules, check_prices

RULES = PriceRules(declared_promotions=("双11狂欢节",))


def entry(sku: str, approved: str = "199", **kw: object) -> PriceListEntry:
    base = {
        "sku": sku,
        "style": "TS1",
        "approved": D(approved),
        "cost": D("70"),
        "floor": D("110"),
        "list_price": D("299"),
    }
    return PriceListEntry(**{**base, **kw})  # type: ignore[arg-type]


def page(*offers: SkuOffer, promotion: str = "", page_price: str | None = None) -> ProductPage:
    return ProductPage(
        url="http://shop/p/1",
        product_id="P1",
        title="t",
        subtitle="",
        image_alts=(),
        detail="",
        promotion=promotion,
        page_price=D(page_price) if page_price else min(o.price for o in offers),
        skus=offers,
    )


def offer(sku: str, price: str, final: str | None = None) -> SkuOffer:
    return SkuOffer(sku, "黑色 / M", D(price), D(final or price))


def rules_of(p: ProductPage, prices: dict[str, PriceListEntry], last: dict | None = None) -> set:
    return {(f.rule, f.sku) for f in check_prices(p, prices, last or {}, RULES)}


LIST = {"A": entry("A"), "B": entry("B"), "C": entry("C")}


def test_a_clean_page_has_no_findings() -> None:
    assert rules_of(page(offer("A", "199"), offer("B", "199"), offer("C", "199")), LIST) == set()


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        ("70.00", {("BELOW_FLOOR", "A")}),  # at cost is not below it, but below the floor
        ("69.99", {("BELOW_COST", "A")}),
        ("109.99", {("BELOW_FLOOR", "A")}),
        ("110.00", set()),
    ],
)
def test_final_price_against_cost_and_floor(final: str, expected: set) -> None:
    found = rules_of(page(offer("A", "199", final), promotion="双11狂欢节"), LIST)
    assert found == expected


@pytest.mark.parametrize(
    ("shown", "rule"),
    [
        ("200.99", None),  # +1.0 %: inside the tolerance
        ("201.00", "PRICE_MISMATCH"),  # +1.005 %
        ("197.01", None),
        ("197.00", "PRICE_MISMATCH"),
        ("19.90", "DECIMAL_SLIP"),  # 0.1: a slip, not merely a mismatch
        ("18.91", "DECIMAL_SLIP"),  # 0.09503: just inside [0.095, 0.105]
        ("18.90", "PRICE_MISMATCH"),  # 0.09497: too far for a slip
        ("1990", "DECIMAL_SLIP"),
        ("2089.50", "DECIMAL_SLIP"),  # 10.5 (edge, inclusive)
        ("2090", "PRICE_MISMATCH"),
    ],
)
def test_shown_price_against_the_approved_price(shown: str, rule: str | None) -> None:
    found = {r for r, _ in rules_of(page(offer("A", shown, "199"), promotion="双11狂欢节"), LIST)}
    assert found == ({rule} if rule else set())


@pytest.mark.parametrize(
    ("promotion", "final", "deep"),
    [
        ("", "89.69", True),  # below 30 % of 299 = 89.70
        ("", "89.70", False),
        ("清仓特惠", "89.69", True),  # a promotion nobody declared
        ("双11狂欢节", "89.69", False),  # declared: a deep discount is allowed
    ],
)
def test_deep_discount_outside_a_declared_promotion(promotion: str, final: str, deep: bool) -> None:
    prices = {"A": entry("A", cost=D("1"), floor=None)}
    found = rules_of(page(offer("A", "199", final), promotion=promotion), prices)
    assert (("DEEP_DISCOUNT", "A") in found) is deep


def test_variant_spread_without_and_with_a_size_premium() -> None:
    offers = (offer("A", "199"), offer("B", "199"), offer("C", "258.71"))  # +30.005 %
    flat = {k: entry(k, approved=str(o.price)) for k, o in zip("ABC", offers, strict=True)}
    assert rules_of(page(*offers), flat) == {("VARIANT_SPREAD", "C")}
    premium = {k: entry(k, approved=str(e.approved), size_premium=True) for k, e in flat.items()}
    assert rules_of(page(*offers), premium) == set()
    under = (offer("A", "199"), offer("B", "199"), offer("C", "258.70"))  # +30.0 %
    assert rules_of(page(*under), flat) == set()


def test_page_price_must_equal_the_sku_table() -> None:
    found = rules_of(page(offer("A", "199"), offer("B", "199"), page_price="189"), LIST)
    assert found == {("PAGE_PRICE_MISMATCH", "A")}


@pytest.mark.parametrize(
    ("before", "changed"), [("100", True), ("132.67", False), ("398", False), ("398.02", True)]
)
def test_change_since_the_last_scan(before: str, changed: bool) -> None:
    # 199 vs 100 is +99 %; vs 132.67 is +49.998 %; vs 398 is -50 % exactly; vs 398.02 -50.003 %
    prices = {"A": entry("A")}
    found = rules_of(page(offer("A", "199")), prices, {"A": D(before)})
    assert (("PRICE_CHANGED", "A") in found) is changed


def test_a_sku_missing_from_the_price_list_is_reported_not_guessed() -> None:
    assert rules_of(page(offer("Z", "5")), LIST) == {("UNLISTED_SKU", "Z")}


def test_severity_can_be_overridden_and_bad_values_are_refused() -> None:
    rules = PriceRules(severity={"PRICE_MISMATCH": "high"})
    (f,) = check_prices(page(offer("A", "250")), LIST, {}, rules)
    assert (f.rule, f.severity) == ("PRICE_MISMATCH", "high")
    with pytest.raises(ValueError, match="unknown rule"):
        PriceRules(severity={"NOPE": "high"})
    with pytest.raises(ValueError, match="decimal_slip_low"):
        PriceRules(decimal_slip_low=(D("0.2"), D("0.1")))
