"""The page-scan robot: walk the storefront, check every product page, report the findings.

Read-only: it never presses anything in the shop. A *scan* is one pass over every product the
crawl finds; each product page is a ledger item of that scan (``<scan>|<path>``), claimed before
it is read and finished with its findings after. A scan that was killed or stopped by
``--limit`` is resumed by the next run, which reads only the pages not done yet. Prices seen are
remembered for the next scan's "changed by more than 50 %" rule.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from aiolimiter import AsyncLimiter
from loguru import logger
from playwright.async_api import Page

from robots.config import Workspace
from robots.engine.pace import Pace
from robots.engine.robot import BaseRobot
from robots.engine.run import Lane, RunOptions, RunResult, Web
from robots.engine.words import WordMatcher
from robots.errors import ScenarioUnreadable
from robots.ledger import State
from robots.pagescan.inputs import load_allowlist, load_banned_words, load_price_list
from robots.pagescan.model import PageResult, ProductPage, WordFinding
from robots.pagescan.prices import check_prices
from robots.pagescan.report import ScanSummary, scan_findings, write_pagescan_report
from robots.pagescan.scenario import PageScanScenario
from robots.pagescan.storefront import NotReady, Storefront, item_path
from robots.reports import workbook as book

ROBOT = "pagescan"


def find_words(
    page: ProductPage, matcher: WordMatcher, fields: tuple[str, ...]
) -> list[WordFinding]:
    found = []
    extra = {name for name, _ in page.extra}
    for field, text in page.texts():
        if field not in fields and field not in extra:
            continue
        for hit in matcher.find(text):
            found.append(
                WordFinding(
                    page.product_id,
                    page.url,
                    field,
                    hit.word.word,
                    hit.matched_text,
                    hit.context,
                    hit.word.category,
                    hit.word.severity,
                    title=page.title,
                )
            )
    return found


def _to_json(result: PageResult) -> dict[str, Any]:
    def plain(obj: Any) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Decimal) else v) for k, v in dataclasses.asdict(obj).items()
        }

    return {
        "prices": [plain(f) for f in result.prices],
        "words": [plain(f) for f in result.words],
        "shown_prices": result.shown_prices,
    }


NOT_READY_STOP = 3  # pages in a row that never got ready, none before them did


class ScanCount(enum.StrEnum):
    PAGES_READ = "pages_read"
    PAGES_WITH_FINDINGS = "pages_with_findings"
    PAGE_GONE = "page_gone"
    PAGE_UNREADABLE = "page_unreadable"
    DONE_BEFORE = "done_before"


class PageScanRobot(BaseRobot):
    """One run of the page scan against one storefront."""

    NAME = ROBOT
    ITEM = str  # a product page URL
    REASON_COUNTS: ClassVar[dict[str, str]] = {
        "PAGE_GONE": ScanCount.PAGE_GONE,
        "*": ScanCount.PAGE_UNREADABLE,
    }
    scenario: PageScanScenario

    def __init__(
        self,
        ws: Workspace,
        scenario: PageScanScenario,
        scenario_file: Path,
        options: RunOptions | None = None,
        *,
        only: list[str] | None = None,
    ) -> None:
        super().__init__(ws, scenario, scenario_file, options)
        self.only = list(only or [])
        # inputs are checked before anything starts: a bad file stops the run at once
        self.price_list = load_price_list(scenario.price_list, scenario.price_list.file)
        words = load_banned_words(scenario.words.banned)
        allow = load_allowlist(scenario.words.allowlist) if scenario.words.allowlist else []
        self.matcher = WordMatcher(words, allow, context_chars=scenario.words.context_chars)
        self.parallel = Pace.of(scenario.crawl.parallel_pages or ws.config.browser.parallel_pages)
        self.shop_key = scenario.shop.name
        self.resumed_from = ""
        self.scan_id = self._scan_to_work_on()
        self.crawled_all = False
        self.found: set[str] = set()  # the product pages claimed in this scan so far
        self.to_read = 0  # of those, the pages this run reads
        self.complete = False
        self.ready_seen, self.not_ready = False, 0
        self.pages_ok, self.field_hits = 0, Counter[str]()
        rps = scenario.crawl.requests_per_second
        limiter = AsyncLimiter(rps, 1.0) if rps >= 1 else AsyncLimiter(1, 1.0 / rps)
        self.shop = Storefront(scenario, limiter, tally=self.run.count)

    # -- entry point ----------------------------------------------------------------------
    def perform(self) -> RunResult:
        run, shop = self.run, self.shop

        async def work() -> None:
            if self.resumed_from:
                logger.info(
                    "resuming scan {} (left unfinished by {})", self.scan_id, self.resumed_from
                )
            logger.info("scan {}", self.scan_id)
            async with self.open_browser() as web:
                todo: list[str] = []
                feed = None
                if self.only:
                    todo, self.crawled_all = self._claim([shop.url(u) for u in self.only]), True
                else:  # the pages are read while the crawl goes on, each list claimed first
                    feed = self._crawled(web, shop)
                await run.work(
                    todo,
                    self._page,
                    lanes=self.parallel,
                    lane=lambda: self.open_lane(web),
                    feed=feed,
                )
                if not self.to_read:
                    logger.info("nothing to do: every page of scan {} is done", self.scan_id)
            self._check_selectors()
            left = [
                i
                for i in run.ledger.items(ROBOT, key_prefix=f"{self.scan_id}|")
                if i.state in (State.PENDING, State.ACTING)
            ]
            self.complete = self.crawled_all and not left

        return run.run(
            work,
            where=f"the storefront at {shop.base}",
            report=self._write_report,
            summary={"scan": self.scan_id, "partial": bool(self.only)},
            details=lambda: {"scan": self.scan_id, "complete": self.complete},
        )

    # -- what the cluster's workers need (robots.cluster.worker) ---------------------------
    def open_browser(self) -> AbstractAsyncContextManager[Web]:
        return self.run.browser(args=self.shop.launch_args())

    def input_files(self) -> list[Path]:
        words = self.scenario.words
        return [self.scenario.price_list.file, words.banned, *filter(None, [words.allowlist])]

    def open_lane(self, web: Web) -> AbstractAsyncContextManager[Lane]:
        return web.lane(anonymous=True, prepare=self.shop.prepare)

    def shared(self) -> dict[str, Any]:
        return {"scan": self.scan_id}  # a worker's pages are the coordinator's scan's

    def join(self, shared: dict[str, Any]) -> None:
        self.scan_id = str(shared.get("scan") or self.scan_id)

    def _scan_to_work_on(self) -> str:
        """An unfinished full scan of this scenario is resumed; otherwise a new one starts."""
        run = self.run
        if self.only:
            return run.run_id
        for earlier in run.ledger.runs(ROBOT, scenario=str(run.scenario_file), limit=20):
            if earlier.summary.get("partial"):
                continue
            if not earlier.summary.get("complete"):
                self.resumed_from = earlier.run_id
                return str(earlier.summary.get("scan") or earlier.run_id)
            break
        return run.run_id

    def _claim(self, urls: list[str]) -> list[str]:
        """Record these pages as pending (all of them: the scan's whole list); return those
        to read now (``--limit`` cuts what is read, not what is claimed)."""
        found = [u for u in dict.fromkeys(urls) if u not in self.found]
        self.found.update(found)
        todo = self.run.claim(
            found,
            lambda url: (f"{self.scan_id}|{item_path(url)}", "", {"url": url}),
            unchanged=ScanCount.DONE_BEFORE,
            up_to_limit=False,
        )
        if self.run.limit is not None:
            todo = todo[: max(self.run.limit - self.to_read, 0)]
        self.to_read += len(todo)
        return todo

    async def _crawled(self, web: Web, shop: Storefront) -> AsyncIterator[list[str]]:
        """The product pages as the crawl finds them, a product list at a time, claimed; no
        page at all stops the run."""
        async with web.lane(anonymous=True, prepare=shop.prepare) as lane:
            async for urls in self._crawl(shop, lane.page):
                yield self._claim(urls)
        if not self.found:
            raise ScenarioUnreadable(f"no product page found: {self._nothing_found(shop)}")
        self.crawled_all = True
        logger.info("{} product pages found, {} to read", len(self.found), self.to_read)

    async def _crawl(self, shop: Storefront, page: Page) -> AsyncIterator[list[str]]:
        """The product pages, from the scenario's source: the list, the sitemap, or each
        product list of the crawl in turn."""
        crawl, run = self.scenario.crawl, self.run
        if crawl.source == "product_urls":
            yield [shop.url(u) for u in crawl.product_urls]
        elif crawl.source == "sitemap":
            yield await run.retried("reading the sitemap", lambda: shop.sitemap_urls(page))
        else:
            categories = await run.retried(
                "opening the storefront", lambda: shop.category_urls(page)
            )
            logger.info("{} product lists", len(categories))
            for category in categories:
                urls = await run.retried(
                    f"category {category}", partial(shop.product_urls, page, category)
                )
                logger.info("{}: {} products", category, len(urls))
                yield urls

    def _nothing_found(self, shop: Storefront) -> str:
        crawl = self.scenario.crawl
        return {
            "product_urls": "crawl.product_urls is empty; fix the scenario",
            "sitemap": f"crawl.sitemap {crawl.sitemap!r} lists no URL matching "
            f"crawl.sitemap_pattern {crawl.sitemap_pattern!r}; fix the scenario",
            "crawl": f"crawl.product_link {crawl.product_link!r} matched nothing on the "
            f"product lists from {shop.url(crawl.start_path)}; fix the scenario",
        }[crawl.source]

    # -- one page -------------------------------------------------------------------------
    async def _page(self, url: str, lane: Lane) -> None:
        await self._item(self.shop, lane, url)

    async def _item(self, shop: Storefront, lane: Lane, url: str) -> None:
        run = self.run
        key = f"{self.scan_id}|{item_path(url)}"
        name = item_path(url).strip("/").replace("/", "_")
        async with run.item(key, lane=lane, name=name) as item:
            try:
                product = await item.attempt(lambda p: shop.read_product(p, url), f"page {url}")
            except NotReady as exc:
                self._not_ready(exc)
                raise
            self.ready_seen = True
            self.pages_ok += 1
            self.field_hits.update(product.matched)
            result = self._check(product)
            found = [ScanCount.PAGES_WITH_FINDINGS] if result.prices or result.words else []
            item.done(
                details={**_to_json(result), "matched": sorted(product.matched)},
                counts=[ScanCount.PAGES_READ, *found],
            )
            run.ledger.remember(
                ROBOT,
                {f"{self.shop_key}|{sku}": price for sku, price in result.shown_prices.items()},
                run_id=run.run_id,
            )
            logger.info("{} price and {} word findings", len(result.prices), len(result.words))

    def _check_selectors(self) -> None:
        """A field the scenario names whose selector matched on none of this run's pages
        (enough of them): the selector is wrong, and the scan would report those texts clean;
        stop with the field named rather than end green. A promotion and a list price are
        absent from many shops' pages by nature, so they are not held to this."""
        p = self.scenario.product
        named = [
            n
            for n in ("subtitle", "detail", "page_price", "image_alts", "sku_name")
            if getattr(p, n) is not None
        ] + list(p.extra)
        pages_ok, field_hits = self.pages_ok, self.field_hits
        if self.run.cluster:  # the workers read the pages: what each matched is in the ledger
            pages_ok, field_hits = 0, Counter[str]()
            for view in self.run.ledger.items(ROBOT, key_prefix=f"{self.scan_id}|"):
                if view.run_id == self.run.run_id and "matched" in view.details:
                    pages_ok += 1
                    field_hits.update(view.details["matched"])
        never = [n for n in named if not field_hits[n]]
        if pages_ok < self.ws.config.early_stop.min_items or not never or self.run.broken:
            return
        shown = ", ".join(
            f"product.{n} ({(p.extra.get(n) or getattr(p, n)).selector!r})" for n in never
        )
        raise ScenarioUnreadable(
            f"the scenario's {shown} matched nothing on any of the {pages_ok} product "
            "pages read: fix the selector or leave the field out (a text never read is never "
            "checked)"
        )

    def _not_ready(self, exc: NotReady) -> None:
        """The first pages of a scan never got ready: the ``ready`` sign is wrong, not the
        pages; stop instead of waiting out the timeout on every page of the shop."""
        self.not_ready += 1
        if self.ready_seen or self.not_ready < NOT_READY_STOP or self.run.broken:
            return
        self.run.broken = (
            f"the scenario's product.ready ({exc.selector}) did not show on the first "
            f"{self.not_ready} product pages within "
            f"{self.scenario.product.ready_spec.timeout_ms / 1000:g} s; the run stopped "
            "early: fix product.ready (robots scenario probe shows what a page has)"
        )
        self.run.stop.request(f"{self.not_ready} pages never got ready", console=False)

    def _check(self, product: ProductPage) -> PageResult:
        keys = [f"{self.shop_key}|{s.sku}" for s in product.skus]
        recalled = self.run.ledger.recall(ROBOT, keys)
        last = {k.split("|", 1)[1]: Decimal(v) for k, v in recalled.items()}
        return PageResult(
            prices=check_prices(product, self.price_list, last, self.scenario.price_rules),
            words=find_words(product, self.matcher, self.scenario.words.fields),
            shown_prices={s.sku: str(s.price) for s in product.skus},
        )

    # -- report ---------------------------------------------------------------------------
    def _write_report(self, result: RunResult) -> Path:
        run = self.run
        path = self.report_path("pagescan")
        items = run.ledger.items(ROBOT, key_prefix=f"{self.scan_id}|")
        prices, words, failed = scan_findings(items)
        not_started = sum(1 for i in items if i.state == State.PENDING)
        started, ended = self.run_times()
        summary = ScanSummary(
            run_id=run.run_id,
            scan_id=self.scan_id,
            scenario=str(run.scenario_file),
            shop=f"{self.scenario.shop.name} ({self.scenario.shop.base_url})",
            started_at=started,
            ended_at=ended,
            complete=self.complete,
            pages_total=len(items),
            pages_read=sum(1 for i in items if i.state == State.DONE),
            pages_failed=len(failed),
            this_run=dict(result.counts),
            status=book.run_status(
                failure=result.failure,
                ended=True,
                stopped=result.stopped,
                not_started=not_started,
                unit="页",
            ),
        )
        return write_pagescan_report(path, summary, prices, words, failed)
