"""The page scan's scenario: the storefront, how to crawl it, where each part of a product
page is, the price list and the word files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, HttpUrl, field_validator

from robots import config
from robots.pagescan.prices import PriceRules


class Storefront(config.Strict):
    name: str = Field(min_length=1)
    base_url: HttpUrl
    timezone: Annotated[str, AfterValidator(config.time_zone)] = "Asia/Shanghai"


class Crawl(config.Strict):
    """How to walk the storefront like a shopper: categories, their pages, the products."""

    start_path: str = "/"
    category_link: config.Selector
    product_link: config.Selector
    next_page: config.Selector
    requests_per_second: float = Field(default=5.0, gt=0, le=1000)
    block_resources: tuple[str, ...] = ("image", "font", "media")
    parallel_pages: int | None = Field(default=None, ge=1, le=16, description="else robots.toml")


class ProductFields(config.Strict):
    """Where each part of a product page is. SKU fields are relative to ``sku_row``
    (``:scope`` is the row itself)."""

    ready: config.Selector = Field(
        description="present once the JavaScript-rendered part has loaded"
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
    sku_final_price: config.FieldSpec
    sku_list_price: config.FieldSpec | None = None


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


class WordFiles(config.Strict):
    banned: Path = Field(default=Path("banned-words.txt"), description="relative to the scenario")
    allowlist: Path | None = Path("allowlist.txt")
    fields: tuple[str, ...] = ("title", "subtitle", "image_alt", "detail", "sku_name")
    context_chars: int = Field(default=12, ge=0, le=200)

    @field_validator("fields")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(v) - {"title", "subtitle", "image_alt", "detail", "sku_name"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
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


load = load_pagescan_scenario  # what the registry calls (robots.engine.spec)


def check(scenario: PageScanScenario) -> None:
    """Open the files the scenario names (`robots config check`): the price list and the word
    lists, read as a run would; the first problem of each raises ``ConfigError``."""
    from robots.pagescan.inputs import load_allowlist, load_banned_words, load_price_list

    load_price_list(scenario.price_list, scenario.price_list.file)
    load_banned_words(scenario.words.banned)
    if scenario.words.allowlist is not None:
        load_allowlist(scenario.words.allowlist)
