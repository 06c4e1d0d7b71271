"""The page scan's scenario: the storefront, how to crawl it, where each part of a product
page is, the price list and the word files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, field_validator, model_validator

from robots import config
from robots.pagescan.fields import PRODUCT_FIELDS
from robots.pagescan.prices import PriceRules


class Storefront(config.Strict):
    name: str = Field(min_length=1)
    base_url: HttpUrl
    timezone: Annotated[str, AfterValidator(config.time_zone)] = "Asia/Shanghai"


class Crawl(config.Strict):
    """Where the product pages come from, one of: ``product_urls`` (a fixed list), a
    ``sitemap`` (its URLs matching ``sitemap_pattern``), or a crawl from ``start_path``: the
    ``category_link``s found there (or, without one, ``start_path`` is itself a product list)
    and each list's ``product_link``s, following ``next_page``. Finding no product page at
    all stops the run: a wrong selector is never a complete scan of nothing."""

    start_path: str = "/"
    category_link: config.Selector | None = None
    product_link: config.Selector | None = None
    next_page: config.Selector | None = None
    next_button: config.Selector | None = None
    load_more: config.Selector | None = None
    product_urls: tuple[str, ...] = ()
    sitemap: str | None = Field(default=None, min_length=1)
    sitemap_pattern: config.Regex | None = Field(
        default=None, description="regex a product URL matches"
    )
    requests_per_second: float = Field(default=5.0, gt=0, le=1000)
    block_resources: tuple[str, ...] = ("image", "font", "media")
    parallel_pages: int | None = Field(default=None, ge=1, le=16, description="else robots.toml")

    @model_validator(mode="after")
    def _a_source(self) -> Crawl:
        if self.product_urls and self.sitemap:
            raise ValueError("give product_urls or a sitemap, not both")
        if not self.product_urls and not self.sitemap and self.product_link is None:
            raise ValueError("product_link is required to crawl (or give product_urls or sitemap)")
        pagers = [k for k in config.PAGERS if getattr(self, k)]
        if len(pagers) > 1:
            raise ValueError(f"give one way to the next products, not {' and '.join(pagers)}")
        return self

    @property
    def product_list(self) -> config.ListSpec:
        """A product list as the shared list vocabulary (``robots.engine.pages``): each
        product link a row, its href the one field."""
        return config.ListSpec(
            row=self.product_link or "a",
            fields={"href": config.FieldSpec(selector=":scope", attribute="href")},
            next_page=self.next_page,
            next_button=self.next_button,
            load_more=self.load_more,
        )

    @property
    def source(self) -> str:
        if self.product_urls:
            return "product_urls"
        return "sitemap" if self.sitemap else "crawl"


class Ready(config.Strict):
    """How a product page shows it has loaded, one of: an element present (``selector``),
    an element with text (``text``), a network response whose URL matches ``response`` (a
    regex); waited for up to ``timeout_ms`` on each page."""

    selector: config.Selector | None = None
    text: config.Selector | None = None
    response: str | None = Field(default=None, min_length=1)
    timeout_ms: int = Field(default=10_000, ge=100, le=120_000)

    @model_validator(mode="after")
    def _one(self) -> Ready:
        given = [k for k in ("selector", "text", "response") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give one of selector, text, response; got {given or 'none'}")
        if self.response is not None:
            try:
                re.compile(self.response)
            except re.error as exc:
                raise ValueError(f"response is not a regular expression: {exc}") from None
        return self

    @property
    def shown(self) -> str:
        """How a message names it."""
        if self.selector:
            return f"selector {self.selector!r}"
        if self.text:
            return f"text of {self.text!r}"
        return f"a response matching {self.response!r}"


class ProductFields(config.Strict):
    """Where each part of a product page is. SKU fields are relative to ``sku_row``
    (``:scope`` is the row itself)."""

    ready: config.Selector | Ready = Field(
        description="a selector present once the page has loaded, or a [product.ready] table"
    )
    product_id: config.FieldSpec
    title: config.FieldSpec
    subtitle: config.FieldSpec | None = None
    image_alts: config.FieldSpec | None = Field(default=None, description="every match is read")
    detail: config.FieldSpec | None = None
    promotion: config.FieldSpec | None = None
    page_price: config.FieldSpec | None = None
    sku_row: config.Selector
    sku_code: config.FieldSpec
    sku_name: config.FieldSpec
    sku_price: config.FieldSpec
    sku_final_price: config.FieldSpec | None = Field(
        default=None, description="到手价; without it the shown price is what the shopper pays"
    )
    sku_list_price: config.FieldSpec | None = None
    extra: dict[str, config.FieldSpec] = Field(
        default={}, description="more texts to scan for banned words, by name"
    )

    @model_validator(mode="after")
    def _what_the_scan_reads(self) -> ProductFields:
        """The page scan reads a selector and an attribute (prices: the first number in the
        text); it refuses the other field-spec keys rather than silently ignore them."""
        unread = (
            "regex",
            "map",
            "type",
            "true",
            "false",
            "formats",
            "required",
            "default",
            "none",
            "label",
            "label_selector",
        )
        specs = {
            n: getattr(self, n) for n in type(self).model_fields if n not in ("extra", "ready")
        }
        specs |= {f"extra.{n}": f for n, f in self.extra.items()}
        for name, spec in specs.items():
            if not isinstance(spec, config.FieldSpec):
                continue
            given = [k for k in unread if getattr(spec, k) is not None]
            if spec.selector is None:
                raise ValueError(f"{name}: the page scan reads a selector: give one")
            if given:
                raise ValueError(
                    f"{name}: the page scan reads a selector and an attribute only; "
                    f"{', '.join(given)} would be ignored"
                )
        return self

    @property
    def ready_spec(self) -> Ready:
        return self.ready if isinstance(self.ready, Ready) else Ready(selector=self.ready)


class PriceListColumns(config.Strict):
    """Header names of the price-list columns; the optional ones may be absent."""

    sku: str = "SKU"
    style: str = "款号"
    approved: str = "核准价"
    cost: str = "成本价"
    floor: str | None = "最低价"
    list_price: str | None = "吊牌价"
    size_premium: str | None = "尺码加价"


class PriceListSpec(config.Strict):
    file: Path = Field(description="relative to the scenario file")
    sheet: str | None = Field(default=None, description="default: the first sheet")
    header_row: int = Field(default=1, ge=1)
    columns: PriceListColumns = PriceListColumns()


TEXT_FIELDS = ("title", "subtitle", "image_alt", "detail", "sku_name")


class WordFiles(config.Strict):
    banned: Path = Field(default=Path("banned-words.txt"), description="relative to the scenario")
    allowlist: Path | None = Path("allowlist.txt")
    fields: tuple[str, ...] = ("title", "subtitle", "image_alt", "detail", "sku_name")
    context_chars: int = Field(default=12, ge=0, le=200)

    @field_validator("fields")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(v) - set(TEXT_FIELDS)
        if unknown:
            known = ", ".join(TEXT_FIELDS)
            raise ValueError(
                f"unknown field(s): {', '.join(sorted(unknown))} (known: {known}; "
                "[product.extra] fields are always scanned)"
            )
        return v


class PageScanScenario(config.Strict):
    shop: Storefront
    crawl: Crawl
    product: ProductFields
    price_list: PriceListSpec
    words: WordFiles = WordFiles()
    price_rules: PriceRules = PriceRules()


def load_pagescan_scenario(
    file: Path, *, base_url: str | None = None, price_list: Path | None = None
) -> PageScanScenario:
    """Load a page-scan scenario; its file paths resolve against the scenario's folder."""
    override = (
        {"price_list": ("price_list", "file", str(price_list.resolve()))} if price_list else {}
    )
    scenario = config.load_scenario_file(PageScanScenario, file, base_url=base_url, **override)
    here = file.resolve().parent
    words = scenario.words
    return scenario.model_copy(
        update={
            "price_list": scenario.price_list.model_copy(
                update={"file": here / scenario.price_list.file.expanduser()}
            ),
            "words": words.model_copy(
                update={
                    "banned": here / words.banned.expanduser(),
                    "allowlist": here / words.allowlist.expanduser() if words.allowlist else None,
                }
            ),
        }
    )


load = load_pagescan_scenario  # what the spec calls (RobotSpec.load_scenario)


def check(scenario: PageScanScenario) -> None:
    """Open the files the scenario names (`robots config check`): the price list and the word
    lists, read as a run would; the first problem of each raises ``ConfigError``."""
    from robots.pagescan.inputs import load_allowlist, load_banned_words, load_price_list

    load_price_list(scenario.price_list, scenario.price_list.file)
    load_banned_words(scenario.words.banned)
    if scenario.words.allowlist is not None:
        load_allowlist(scenario.words.allowlist)


# every value the robot reads, by the scenario table it is in (`robots scenario fields`)
FIELD_TABLES = {"product": PRODUCT_FIELDS}
