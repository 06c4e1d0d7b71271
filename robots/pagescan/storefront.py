"""Playwright flows on a storefront: walk the categories, read a product page. Read-only.

No business rules here: it turns pages into ``ProductPage`` values with the scenario's
selectors, and turns broken pages into system exceptions (retried) or ``PAGE_GONE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

from aiolimiter import AsyncLimiter
from playwright.async_api import BrowserContext, Page, Route
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from robots.config import FieldSpec
from robots.engine.fields import FieldKind, FieldReader, UnreadableField
from robots.engine.health import READ, UNREADABLE
from robots.engine.pages import read_list
from robots.errors import BusinessException, PageError, ScenarioUnreadable
from robots.pagescan.model import ProductPage, SkuOffer
from robots.pagescan.scenario import PageScanScenario, Ready
from robots.runtime.clock import ShopClock

_PRICE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# kinds of resource Chromium leaves unloaded itself, and the switch that says so
CHROMIUM_BLOCKS = {
    "image": "--blink-settings=imagesEnabled=false",
    "font": "--disable-remote-fonts",
}
MEDIA_URLS = re.compile(r"\.(mp4|m4v|webm|ogv|ogg|mov|mp3|m4a|aac|wav|flac|m3u8|mpd)(\?|#|$)", re.I)


async def _abort(route: Route) -> None:
    await route.abort()


# After a ready response: resolves once the page's document has not changed for 100 ms (its
# scripts have built what the answer brought), at the latest after the ready timeout.
_QUIET_JS = """
(limit) => new Promise((done) => {
  let quiet;
  const observer = new MutationObserver(() => {
    clearTimeout(quiet);
    quiet = setTimeout(end, 100);
  });
  const end = () => { observer.disconnect(); clearTimeout(cap); done(); };
  const cap = setTimeout(end, limit);
  const all = {subtree: true, childList: true, attributes: true, characterData: true};
  observer.observe(document, all);
  quiet = setTimeout(end, 100);
})
"""

# One round trip reads the whole page with the scenario's selectors.
_READ_JS = """
(spec) => {
  const read = (el, f) => {
    if (!el) return null;
    const v = f.attribute ? el.getAttribute(f.attribute) : el.innerText;
    return v === null ? null : v.trim();
  };
  const find = (root, sel) => (sel === ":scope" ? root : root.querySelector(sel));
  const pick = (root, f) => (f ? read(find(root, f.selector), f) : null);
  const all = (f) =>
    f ? Array.from(document.querySelectorAll(f.selector), (el) => read(el, f)) : [];
  const out = {};
  for (const name of ["product_id", "title", "subtitle", "detail", "promotion", "page_price"]) {
    out[name] = pick(document, spec[name]);
  }
  out.image_alts = all(spec.image_alts);
  out.extra = Object.fromEntries(
    Object.entries(spec.extra).map(([name, f]) => [name, pick(document, f)]));
  out.skus = Array.from(document.querySelectorAll(spec.sku_row), (row) => ({
    sku: pick(row, spec.sku_code),
    name: pick(row, spec.sku_name),
    price: pick(row, spec.sku_price),
    final_price: pick(row, spec.sku_final_price),
    list_price: pick(row, spec.sku_list_price),
  }));
  return out;
}
"""


class NotReady(UnreadableField):
    """The page never showed its ``ready`` sign within the timeout: unreadable (a person or a
    fixed scenario looks); a scan whose first pages all fail this way stops early."""

    def __init__(self, ready: Ready) -> None:
        super().__init__(
            "product.ready", ready.shown, "", f"页面在 {ready.timeout_ms / 1000:g} 秒内没有就绪"
        )


def _spec(f: FieldSpec | None) -> dict[str, Any] | None:
    return None if f is None else {"selector": f.selector, "attribute": f.attribute}


class Storefront:
    """The scenario's storefront, read through pages; every navigation waits its turn."""

    def __init__(
        self,
        scenario: PageScanScenario,
        limiter: AsyncLimiter,
        *,
        tally: Callable[[str], None] | None = None,
    ) -> None:
        """``tally``: the run's count, told of every product page read and every part of
        it that could not be read (the run's field health)."""
        self.tally = tally
        self.scenario = scenario
        self.base = str(scenario.shop.base_url)
        self.limiter = limiter
        p = scenario.product
        self._read_spec = {
            name: _spec(getattr(p, name))
            for name in (
                "product_id",
                "title",
                "subtitle",
                "detail",
                "promotion",
                "page_price",
                "image_alts",
                "sku_code",
                "sku_name",
                "sku_price",
                "sku_final_price",
                "sku_list_price",
            )
        }
        self._read_spec["sku_row"] = p.sku_row  # type: ignore[assignment]
        self._read_spec["extra"] = {n: _spec(f) for n, f in p.extra.items()}
        self.ready = p.ready_spec
        self.clock = ShopClock(scenario.shop.timezone)
        self._blocked = frozenset(scenario.crawl.block_resources)

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    def launch_args(self) -> list[str]:
        """Chromium's own switches for the kinds it can leave unloaded: no request is made,
        nothing is intercepted (a Python route handler on every request costs more CPU than
        the images it saves)."""
        return [flag for kind, flag in CHROMIUM_BLOCKS.items() if kind in self._blocked]

    async def prepare(self, context: BrowserContext) -> None:
        """Block what the scenario lists (images, fonts, media by default): the robot reads
        text, not pixels. Media by their addresses; any other kind by each request's type."""
        rest = self._blocked - CHROMIUM_BLOCKS.keys()
        if "media" in rest:
            await context.route(MEDIA_URLS, _abort)
            rest -= {"media"}
        if not rest:
            return

        async def block(route: Route) -> None:
            if route.request.resource_type in rest:
                await route.abort()
            else:
                await route.continue_()

        await context.route("**/*", block)

    async def _open(self, page: Page, url: str) -> int:
        async with self.limiter:
            response = await page.goto(url, wait_until="domcontentloaded")
        status = response.status if response else 0
        if status >= 500 or status == 429:
            raise PageError(f"{url} answered HTTP {status}", url=url)
        return status

    async def _hrefs(self, page: Page, selector: str) -> list[str]:
        hrefs: list[str] = await page.eval_on_selector_all(
            selector, "els => els.map(e => e.getAttribute('href')).filter(Boolean)"
        )
        return [urljoin(page.url, h) for h in hrefs]

    async def category_urls(self, page: Page) -> list[str]:
        """The product lists to walk: the category links of the start page, or the start
        page itself when the scenario names no category link."""
        crawl = self.scenario.crawl
        start = self.url(crawl.start_path)
        status = await self._open(page, start)
        if status >= 400:
            raise PageError(f"the start page {start} answered HTTP {status}", url=start)
        if crawl.category_link is None:
            return [start]
        found = list(dict.fromkeys(await self._hrefs(page, crawl.category_link)))
        if not found:
            raise ScenarioUnreadable(
                f"the scenario's crawl.category_link {crawl.category_link!r} matched nothing "
                f"on the start page {start}; fix the scenario (or leave category_link out "
                "when the start page lists the products itself)"
            )
        return found

    async def product_urls(self, page: Page, category_url: str) -> list[str]:
        """Every product linked from a product list, through its pager (a next-page link, a
        next button or a load-more button: the lists' shared vocabulary)."""
        crawl = self.scenario.crawl
        spec = crawl.product_list

        async def open_list(url: str) -> None:
            status = await self._open(page, url)
            if status >= 400:
                raise PageError(f"category page {url} answered HTTP {status}", url=url)

        listed = await read_list(
            page,
            spec,
            FieldReader(spec.fields, {"href": FieldKind(required=False)}, self.clock),
            url=category_url,
            goto=open_list,
            may_be_empty=True,
        )
        hrefs = [(row.get("href") or [""])[0] for row in listed.rows]
        return [urljoin(page.url, h) for h in hrefs if h]

    async def sitemap_urls(self, page: Page) -> list[str]:
        """The product URLs of the sitemap (one level of sitemap index followed)."""
        crawl = self.scenario.crawl
        assert crawl.sitemap is not None
        pattern = re.compile(crawl.sitemap_pattern) if crawl.sitemap_pattern else None
        todo, urls = [self.url(crawl.sitemap)], []
        for depth in range(2):
            following: list[str] = []
            for sitemap in todo:
                async with self.limiter:
                    response = await page.request.get(sitemap)
                if response.status >= 400:
                    raise PageError(f"the sitemap {sitemap} answered HTTP {response.status}")
                try:
                    root = ElementTree.fromstring(await response.body())
                except ElementTree.ParseError as exc:
                    raise ScenarioUnreadable(
                        f"crawl.sitemap {sitemap} is not a sitemap (XML): {exc}"
                    ) from None
                locs = [e.text.strip() for e in root.iter() if e.tag.endswith("loc") and e.text]
                if root.tag.endswith("sitemapindex") and depth == 0:
                    following += locs
                else:
                    urls += [u for u in locs if pattern is None or pattern.search(u)]
            todo = following
        return list(dict.fromkeys(urls))

    async def read_product(self, page: Page, url: str) -> ProductPage:
        ready, status = self.ready, 0
        try:
            if ready.response is not None:
                pattern = re.compile(ready.response)
                async with page.expect_response(
                    lambda r: pattern.search(r.url) is not None, timeout=ready.timeout_ms
                ) as answer:
                    status = await self._open(page, url)
                # the answer's headers come first; its body, and the SKU rows the page's
                # script builds from it, follow (a page without them is unreadable anyway)
                await (await answer.value).finished()
                await page.wait_for_selector(
                    self.scenario.product.sku_row, state="attached", timeout=ready.timeout_ms
                )
                await page.evaluate(_QUIET_JS, ready.timeout_ms)
            else:
                status = await self._open(page, url)
            self._check_status(status, url)
            if ready.selector is not None:
                await page.wait_for_selector(
                    ready.selector, state="attached", timeout=ready.timeout_ms
                )
            elif ready.text is not None:
                await page.wait_for_function(
                    "(s) => { const e = document.querySelector(s);"
                    " return e !== null && e.textContent.trim() !== ''; }",
                    arg=ready.text,
                    timeout=ready.timeout_ms,
                )
        except PlaywrightTimeoutError:
            self._check_status(status, url)
            raise NotReady(ready) from None
        raw = await page.evaluate(_READ_JS, self._read_spec)
        return self.product_of(raw, url)

    def _unreadable(self, name: str, shown: str | None, problem: str) -> UnreadableField:
        if self.tally is not None:
            self.tally(f"{UNREADABLE}product.{name}")
        f = self.scenario.product
        spec = f.extra.get(name) if name in f.extra else getattr(f, name, None)
        selector = (spec.selector or "") if isinstance(spec, FieldSpec) else str(spec or "")
        return UnreadableField(f"product.{name}", selector, (shown or "")[:60], problem)

    def _price(self, name: str, text: str | None) -> Decimal:
        match = _PRICE.search(text or "")
        if match is None:
            raise self._unreadable(name, text, "不是价格" if text else "页面上找不到该元素")
        try:
            return Decimal(match.group().replace(",", ""))
        except InvalidOperation:
            raise self._unreadable(name, text, "不是价格") from None

    def product_of(self, raw: dict[str, Any], url: str) -> ProductPage:
        """A ``ProductPage`` from what the page showed, failing closed: no product id or
        title, a SKU row without its code, a price that does not read as one, or no SKU
        row at all make the page unreadable (never a clean page with nothing found)."""
        if self.tally is not None:
            self.tally(f"{READ}product")
        for name in ("product_id", "title"):
            if not raw[name]:
                problem = "页面上找不到该元素" if raw[name] is None else "该元素为空"
                raise self._unreadable(name, raw[name], problem)
        if not raw["skus"]:
            raise self._unreadable("sku_row", "", "没有任何 SKU 行（价格表未加载？）")
        final = self._read_spec["sku_final_price"] is not None
        skus = []
        for row in raw["skus"]:
            if not row["sku"]:
                raise self._unreadable("sku_code", row["sku"], "SKU 行没有 SKU 编码")
            price = self._price("sku_price", row["price"])
            skus.append(
                SkuOffer(
                    sku=row["sku"],
                    name=row["name"] or "",
                    price=price,
                    final_price=self._price("sku_final_price", row["final_price"])
                    if final
                    else price,
                    list_price=(
                        self._price("sku_list_price", row["list_price"])
                        if row["list_price"]
                        else None
                    ),
                )
            )
        return ProductPage(
            url=url,
            product_id=raw["product_id"],
            title=raw["title"],
            subtitle=raw["subtitle"] or "",
            image_alts=tuple(a for a in raw["image_alts"] if a),
            detail=raw["detail"] or "",
            promotion=raw["promotion"] or "",
            page_price=self._price("page_price", raw["page_price"]) if raw["page_price"] else None,
            skus=tuple(skus),
            extra=tuple((name, text) for name, text in raw["extra"].items() if text),
            matched=frozenset(self._matched(raw)),
        )

    def _matched(self, raw: dict[str, Any]) -> list[str]:
        """The optional fields the scenario names whose selector matched on this page."""
        found = [n for n in ("subtitle", "detail", "promotion", "page_price") if raw[n] is not None]
        found += ["image_alts"] if raw["image_alts"] else []
        rows = raw["skus"]
        for name, key in (("sku_name", "name"), ("sku_list_price", "list_price")):
            if any(r[key] is not None for r in rows):
                found.append(name)
        found += [n for n, text in raw["extra"].items() if text is not None]
        return found

    @staticmethod
    def _check_status(status: int, url: str) -> None:
        if status in (404, 410):
            raise BusinessException("PAGE_GONE", f"the product page answered HTTP {status}")
        if status >= 400:
            raise PageError(f"{url} answered HTTP {status}", url=url)


def item_path(url: str) -> str:
    """A product's address without the shop's host: the same page under a new base URL."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
