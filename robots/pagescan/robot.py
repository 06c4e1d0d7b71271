"""The page-scan robot: walk the storefront, check every product page, report the findings.

Read-only: it never presses anything in the shop. A *scan* is one pass over every product the
crawl finds; each product page is a ledger item of that scan (``<scan>|<path>``), claimed before
it is read and finished with its findings after. A scan that was killed or stopped by
``--limit`` is resumed by the next run, which reads only the pages not done yet. Prices seen are
remembered for the next scan's "changed by more than 50 %" rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter
from loguru import logger
from playwright.async_api import BrowserContext, Page
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from robots.config import PageScanScenario, Workspace
from robots.errors import BusinessException, SystemException
from robots.ledger import ItemView, Ledger, State, new_run_id
from robots.pagescan.inputs import load_allowlist, load_banned_words, load_price_list
from robots.pagescan.model import PageResult, PriceFinding, ProductPage, WordFinding
from robots.pagescan.prices import check_prices
from robots.pagescan.storefront import Storefront, item_path
from robots.pagescan.words import WordMatcher
from robots.reports.pagescan import ScanSummary, write_pagescan_report
from robots.runtime.browser import (
    BrowserSession,
    ItemPage,
    ItemTrace,
    browser_session,
    recycled,
)
from robots.runtime.logs import run_logging
from robots.runtime.redaction import Redactor
from robots.runtime.retry import TEMPORARY, RetryPolicy
from robots.runtime.stopping import StopRequest, exit_code

ROBOT = "pagescan"


def find_words(
    page: ProductPage, matcher: WordMatcher, fields: tuple[str, ...]
) -> list[WordFinding]:
    found = []
    for field, text in page.texts():
        if field not in fields:
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


def _price_finding(d: dict[str, Any]) -> PriceFinding:
    return PriceFinding(
        **{
            **d,
            "shown": Decimal(d["shown"]),
            "reference": Decimal(d["reference"]) if d["reference"] is not None else None,
        }
    )


@dataclass
class ScanResult:
    run_id: str
    scan_id: str
    report: Path
    run_dir: Path
    counts: dict[str, int]
    complete: bool

    @property
    def exit_code(self) -> int:
        return exit_code(self.counts)


class PageScanRobot:
    """One run of the page scan against one storefront."""

    def __init__(
        self,
        ws: Workspace,
        scenario: PageScanScenario,
        scenario_file: Path,
        *,
        limit: int | None = None,
        only: list[str] | None = None,
        console: Console | None = None,
        console_level: str = "WARNING",
        stop: StopRequest | None = None,
    ) -> None:
        self.ws, self.scenario, self.scenario_file = ws, scenario, scenario_file
        self.limit, self.only = limit, list(only or [])
        self.stop = stop or StopRequest()
        self.console = console or Console(stderr=True)
        self.console_level = console_level
        # inputs are checked before anything starts: a bad file stops the run at once
        self.price_list = load_price_list(scenario.price_list, scenario.price_list.file)
        words = load_banned_words(scenario.words.banned)
        allow = load_allowlist(scenario.words.allowlist) if scenario.words.allowlist else []
        self.matcher = WordMatcher(words, allow, context_chars=scenario.words.context_chars)
        cfg = ws.config
        self.retry = RetryPolicy(cfg.retry.attempts, cfg.retry.wait_initial_s, cfg.retry.wait_max_s)
        self.parallel = scenario.crawl.parallel_pages or cfg.browser.parallel_pages
        self.run_id = new_run_id(ROBOT)
        self.run_dir = ws.path(cfg.paths.logs) / self.run_id
        self.evidence_dir = self.run_dir / "evidence"
        self.ledger = Ledger.at(ws.path(cfg.paths.ledger))
        self.shop_key = scenario.shop.name
        self.scan_id = self.run_id
        self.counts: dict[str, int] = {}
        self.crawled_all = False

    # -- entry point ----------------------------------------------------------------------
    def run(self) -> ScanResult:
        with run_logging(
            self.run_dir, Redactor([]), console=self.console, console_level=self.console_level
        ):
            self.scan_id = self._scan_to_work_on()
            logger.info(
                "run {} of {} against {}: scan {}",
                self.run_id,
                self.scenario_file,
                self.scenario.shop.base_url,
                self.scan_id,
            )
            started = datetime.now()
            summary: dict[str, Any] = {"scan": self.scan_id, "partial": bool(self.only)}
            self.ledger.begin_run(
                self.run_id, ROBOT, str(self.scenario_file), dry_run=False, summary=summary
            )
            complete = False
            try:
                asyncio.run(self._run())
                items = self.ledger.items(ROBOT, key_prefix=f"{self.scan_id}|")
                left = [i for i in items if i.state in (State.PENDING, State.ACTING)]
                complete = self.crawled_all and not left
            finally:
                self.ledger.end_run(
                    self.run_id, {**summary, "complete": complete, "counts": self.counts}
                )
            report = self.ws.path(self.ws.config.paths.reports) / f"pagescan-{self.run_id}.xlsx"
            self._write_report(report, items, started, complete)
            logger.info("report written to {}; counts {}", report, self.counts)
        self.ledger.close()
        return ScanResult(
            self.run_id, self.scan_id, report, self.run_dir, dict(self.counts), complete
        )

    def _scan_to_work_on(self) -> str:
        """An unfinished full scan of this scenario is resumed; otherwise a new one starts."""
        if self.only:
            return self.run_id
        for run in self.ledger.runs(ROBOT, scenario=str(self.scenario_file), limit=20):
            if run.summary.get("partial"):
                continue
            if not run.summary.get("complete"):
                logger.info(
                    "resuming scan {} (left unfinished by {})", run.summary.get("scan"), run.run_id
                )
                return str(run.summary.get("scan") or run.run_id)
            break
        return self.run_id

    async def _run(self) -> None:
        b = self.ws.config.browser
        rps = self.scenario.crawl.requests_per_second
        limiter = AsyncLimiter(rps, 1.0) if rps >= 1 else AsyncLimiter(1, 1.0 / rps)
        shop = Storefront(self.scenario, limiter)
        async with browser_session(
            executable=b.executable,
            headless=b.headless,
            timeout_ms=b.timeout_ms,
            trace=b.trace_on_failure,
        ) as session:
            todo = await self._claim_pages(session, shop)
            if not todo:
                logger.info("nothing to do: every page of scan {} is done", self.scan_id)
                return
            queue: asyncio.Queue[str] = asyncio.Queue()
            for url in todo:
                queue.put_nowait(url)
            with Progress(
                TextColumn("[bold]pagescan"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                disable=not self.console.is_terminal,
            ) as progress:
                task = progress.add_task("", total=len(todo))
                workers = min(self.parallel, len(todo))
                await asyncio.gather(
                    *(self._worker(session, shop, queue, progress, task) for _ in range(workers))
                )

    async def _claim_pages(self, session: BrowserSession, shop: Storefront) -> list[str]:
        """Crawl (or take ``--only``), record every page as pending, return those to read."""
        if self.only:
            urls = [shop.url(u) for u in self.only]
            self.crawled_all = True
        else:
            context = await session.new_context(anonymous=True)
            await shop.prepare(context)
            page = await context.new_page()
            try:
                urls = await self._crawl(shop, page)
            except TEMPORARY as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SystemException(
                    f"could not walk the storefront at {shop.base}: {first}", url=shop.base
                ) from exc
            finally:
                await session.close_context(context)
            self.crawled_all = True
        todo = []
        for url in dict.fromkeys(urls):
            key = f"{self.scan_id}|{item_path(url)}"
            if self.ledger.claim(
                ROBOT, key, run_id=self.run_id, fingerprint="", details={"url": url}
            ):
                todo.append(url)
            else:
                self._count("done_before")
        logger.info("{} product pages found, {} to read", len(urls), len(todo))
        if self.limit is not None and len(todo) > self.limit:
            todo = todo[: self.limit]
        return todo

    async def _crawl(self, shop: Storefront, page: Page) -> list[str]:
        categories: list[str] = []
        async for attempt in self.retry.retrying("opening the storefront"):
            with attempt:
                categories = await shop.category_urls(page)
        logger.info("{} categories", len(categories))
        urls: list[str] = []
        for category in categories:
            async for attempt in self.retry.retrying(f"category {category}"):
                with attempt:
                    found = await shop.product_urls(page, category)
            logger.info("{}: {} products", category, len(found))
            urls += found
        return urls

    async def _worker(
        self,
        session: BrowserSession,
        shop: Storefront,
        queue: asyncio.Queue[str],
        progress: Progress,
        task: Any,
    ) -> None:
        context = await session.new_context(anonymous=True)
        await shop.prepare(context)
        page = await context.new_page()
        done = 0
        try:
            while True:
                if self.stop.requested:
                    self.counts["stopped"] = 1
                    return
                try:
                    url = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                page = await self._item(shop, context, page, url)
                progress.advance(task)
                done += 1
                page = await recycled(page, done)
        finally:
            await session.close_context(context)

    # -- one page -------------------------------------------------------------------------
    async def _item(self, shop: Storefront, context: BrowserContext, page: Page, url: str) -> Page:
        key = f"{self.scan_id}|{item_path(url)}"
        trace = ItemTrace(context, self.ws.config.browser.trace_on_failure)
        await trace.start()
        name = item_path(url).strip("/").replace("/", "_")
        tries = ItemPage(context, page, self.evidence_dir, name)
        evidence = tries.evidence
        with logger.contextualize(item=item_path(url)):
            try:
                async for attempt in self.retry.retrying(f"page {url}"):
                    with attempt:
                        product = await tries.attempt(lambda p: shop.read_product(p, url))
            except BusinessException as exc:
                self.ledger.finish(
                    ROBOT,
                    key,
                    State.BUSINESS_EXCEPTION,
                    run_id=self.run_id,
                    reason_code=exc.code,
                    message=str(exc),
                )
                self._count("page_gone")
                logger.warning("{}: {}", exc.code, exc)
                await trace.finish(None)
                return tries.page
            except TEMPORARY as exc:
                kept = await trace.finish(self.evidence_dir / f"{name}.trace.zip")
                evidence += [kept] if kept else []
                message = self.ledger.give_up(
                    ROBOT, key, exc, run_id=self.run_id, evidence=evidence
                )
                self._count("system_exception")
                logger.error("system exception after {} attempts: {}", tries.attempts, message)
                return tries.page
            await trace.finish(None)
            result = self._check(product)
            self.ledger.finish(ROBOT, key, State.DONE, run_id=self.run_id, details=_to_json(result))
            self.ledger.remember(
                ROBOT,
                {f"{self.shop_key}|{sku}": price for sku, price in result.shown_prices.items()},
                run_id=self.run_id,
            )
            self._count("pages_read")
            if result.prices or result.words:
                self._count("pages_with_findings")
            logger.info("{} price and {} word findings", len(result.prices), len(result.words))
        return tries.page

    def _check(self, product: ProductPage) -> PageResult:
        keys = [f"{self.shop_key}|{s.sku}" for s in product.skus]
        last = {k.split("|", 1)[1]: Decimal(v) for k, v in self.ledger.recall(ROBOT, keys).items()}
        return PageResult(
            prices=check_prices(product, self.price_list, last, self.scenario.price_rules),
            words=find_words(product, self.matcher, self.scenario.words.fields),
            shown_prices={s.sku: str(s.price) for s in product.skus},
        )

    def _count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    # -- report ---------------------------------------------------------------------------
    def _write_report(
        self, path: Path, items: list[ItemView], started: datetime, complete: bool
    ) -> None:
        prices: list[PriceFinding] = []
        words: list[WordFinding] = []
        failed: list[ItemView] = []
        for item in items:
            if item.state == State.DONE:
                prices += [_price_finding(d) for d in item.details.get("prices", [])]
                words += [WordFinding(**d) for d in item.details.get("words", [])]
            elif item.state in (State.SYSTEM_EXCEPTION, State.BUSINESS_EXCEPTION):
                failed.append(item)
        summary = ScanSummary(
            run_id=self.run_id,
            scan_id=self.scan_id,
            scenario=str(self.scenario_file),
            shop=str(self.scenario.shop.base_url),
            started_at=started,
            ended_at=datetime.now(),
            complete=complete,
            pages_total=len(items),
            pages_read=sum(1 for i in items if i.state == State.DONE),
            pages_failed=len(failed),
            this_run=dict(self.counts),
        )
        write_pagescan_report(path, summary, prices, words, failed, reports_dir=path.parent)
