"""What the page-scan robot reads from a product page and what it reports about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class SkuOffer:
    """One row of a product page's SKU table, as the shopper sees it."""

    sku: str
    name: str  # e.g. 黑色 / M
    price: Decimal  # the selling price shown for the variant
    final_price: Decimal  # what the shopper pays after the store discount and coupon (到手价)
    list_price: Decimal | None = None  # the struck-through price, if shown


@dataclass(frozen=True)
class ProductPage:
    url: str
    product_id: str
    title: str
    subtitle: str
    image_alts: tuple[str, ...]
    detail: str
    promotion: str  # the promotion's name as shown, '' for none
    page_price: Decimal | None  # the headline price above the SKU table
    skus: tuple[SkuOffer, ...]
    extra: tuple[tuple[str, str], ...] = ()  # the scenario's [product.extra] texts, by name
    matched: frozenset[str] = frozenset()  # optional fields whose selector matched here

    def texts(self) -> list[tuple[str, str]]:
        """Every text a banned word may hide in, as (field, text)."""
        out = [("title", self.title), ("subtitle", self.subtitle)]
        out += [("image_alt", alt) for alt in self.image_alts]
        out.append(("detail", self.detail))
        out += [("sku_name", s.name) for s in self.skus]
        out += list(self.extra)
        return [(f, t) for f, t in out if t]


@dataclass(frozen=True)
class PriceListEntry:
    """One SKU of the approved price list ops keep in Excel."""

    sku: str
    style: str
    approved: Decimal
    cost: Decimal
    floor: Decimal | None = None
    list_price: Decimal | None = None
    size_premium: bool = False  # bigger sizes of this style may cost more
    row: int = 0  # the spreadsheet row, for messages


@dataclass(frozen=True)
class PriceFinding:
    product_id: str
    url: str
    sku: str
    rule: str
    severity: str
    shown: Decimal
    reference: Decimal | None
    note: str = ""
    title: str = ""  # the product's title, so a reviewer knows what it is


@dataclass(frozen=True)
class WordFinding:
    product_id: str
    url: str
    field: str
    word: str  # the list entry that matched
    spelling: str  # the seller's original text of the match
    context: str
    category: str
    severity: str
    title: str = ""


@dataclass
class PageResult:
    """Everything one product page produced; stored in the ledger as JSON."""

    prices: list[PriceFinding] = field(default_factory=list)
    words: list[WordFinding] = field(default_factory=list)
    shown_prices: dict[str, str] = field(default_factory=dict)  # sku -> price, for next scan
