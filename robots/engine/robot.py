"""The base every robot class extends: its run built from the scenario, report names, times.

A robot subclass sets ``NAME`` (and ``REASONS``, the Chinese texts of its reason codes) and
writes ``perform()``, usually ``return self.run_work(work)``: the run envelope with the
robot's declared report. ``open_list`` and ``open_page`` read a scenario's ``ListSpec`` and
``PageSpec`` through typed, fail-closed fields. ``robots/stalled/robot.py`` is the smallest
robot to copy; ``robots/refunds/robot.py`` the one that acts (money, batches, the cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from robots.engine.run import Lane, RobotRun, RunOptions, RunResult, Web
from robots.errors import ScenarioUnreadable

if TYPE_CHECKING:
    from playwright.async_api import Page

    from robots.config import ListSpec, PageSpec, Workspace
    from robots.engine.fields import FieldKind
    from robots.ledger import RunView
    from robots.runtime.credentials import Credential


class BaseRobot:
    NAME: ClassVar[str]
    REASONS: ClassVar[Mapping[str, str]] = {}
    # what an item handed to a person for each reason code counts as in the run's counts,
    # beside handed_to_person ("*": any other reason); the engine counts it as the item ends
    REASON_COUNTS: ClassVar[Mapping[str, str]] = {}
    RUN_PREFIX: ClassVar[str | None] = None  # run ids name the robot, unless this is set
    ITEM: ClassVar[Any] = None  # the type of the work loop's items (a cluster decodes them)
    # the robot's report (``write_run(ledger, run, path, now=…)``, e.g. a
    # ``reports.items.ItemsReport``): ``run_work`` writes this run's and a killed run's
    REPORT: ClassVar[Any] = None

    def __init__(
        self, ws: Workspace, scenario: Any, scenario_file: Path, options: RunOptions | None = None
    ) -> None:
        self.ws, self.scenario = ws, scenario
        self.run = RobotRun(
            ws,
            self.NAME,
            scenario_file,
            shop_zone=scenario.shop.timezone,
            options=options,
            run_prefix=self.RUN_PREFIX,
            reasons=self.REASONS,
            reason_counts=self.REASON_COUNTS,
        )
        # read for this run, by name; mangled, so no subclass attribute can collide with it
        self.__credentials: dict[str, Credential] = {}
        self.setup()

    def setup(self) -> None:
        """What the robot prepares once its run exists (page flows, report rows)."""

    def perform(self) -> RunResult:
        raise NotImplementedError

    def credential(self, name: str) -> Credential:
        """The named credential, read once; from here its secrets are kept out of logs,
        traces and reports. Read before the run starts, a missing one is bad input."""
        found = self.__credentials.get(name)
        if found is None:
            found = self.__credentials[name] = self.ws.credentials().get(name)
            self.run.secrets += found.secrets
        return found

    # -- the run envelope, and reading pages ------------------------------------------------
    def run_work(
        self,
        work: Callable[[], Coroutine[Any, Any, None]],
        *,
        where: str | None = None,
        summary: dict[str, Any] | None = None,
        details: Callable[[], dict[str, Any]] = dict,
    ) -> RunResult:
        """``work`` in the run envelope (``RobotRun.run``): the run recorded, foreign errors
        mapped at this boundary (named ``where``), and the robot's ``REPORT`` written from
        the ledger whatever happened (and an earlier killed run's, so its hand-overs reach a
        person). The shop's credential is read first: a missing one is bad input, before
        anything is recorded."""
        if self._login() is not None:
            self.credential(self.scenario.shop.credential)
        report = self.REPORT
        return self.run.run(
            work,
            where=where or self.base_url or self.NAME,
            report=lambda _result: None if report is None else self._write_run(report),
            left_behind=None if report is None else lambda view: self._write_run(report, view),
            summary=summary,
            details=details,
        )

    def _write_run(self, report: Any, view: RunView | None = None) -> Path:
        """The workbook of run ``view`` (default: this one; or a killed earlier one), from
        the ledger."""
        view = view or self.run.ledger.find_run(self.run.run_id)
        assert view is not None, "the run is recorded before its report is written"
        mine = view.run_id == self.run.run_id
        path = self.report_path(self.NAME, None if mine else view.run_id)
        written: Path = report.write_run(self.run.ledger, view, path, now=self.run.clock.now())
        return written

    def url(self, path: str, **values: Any) -> str:
        """``path`` on the shop's address, each ``{name}`` filled with ``values`` (quoted)."""
        from robots.engine.pages import page_url

        return page_url(self.base_url or "", path, **values)

    async def goto(self, page: Page, url: str) -> None:
        """Open ``url``; a shop's error page is a system exception, its login page a lost
        session (retried after logging in again, in ``item.attempt``)."""
        from robots.runtime.browser import goto

        login = self._login()
        await goto(page, url, login_path=login.path if login is not None else "/login")

    async def open_list(
        self, page: Page, spec: ListSpec, kinds: Mapping[str, FieldKind], **values: Any
    ) -> list[dict[str, Any]]:
        """Every row of the list at ``spec.path`` through its pager, each row's ``fields``
        typed. A row that cannot be read stops the run, naming the field: the rows are the
        run's items, and one skipped would be work left undone without a word."""
        from robots.engine.fields import FieldReader, UnreadableField
        from robots.engine.pages import read_list

        if spec.path is None:
            raise ScenarioUnreadable("the scenario's list names no path")
        reader = FieldReader.of(spec, kinds, self.run.clock, name="list")
        url = self.url(spec.path, **values)
        listed = await read_list(page, spec, reader, url=url, goto=lambda u: self.goto(page, u))
        try:
            return [reader.read(raw) for raw in listed.rows]
        except UnreadableField as exc:
            raise ScenarioUnreadable(f"a row of the list at {url}: {exc}") from None

    async def open_page(
        self,
        page: Page,
        spec: PageSpec,
        kinds: Mapping[str, FieldKind],
        *,
        table: str = "detail",
        reader: Any = None,
        **values: Any,
    ) -> dict[str, Any]:
        """The fields of the page at ``spec.path`` (``{name}`` filled from ``values``),
        typed. One that cannot be read raises ``UnreadableField``: inside an item block, the
        item goes to a person naming field, selector and what the page showed. Counted for
        the run's field health under ``table``; ``reader``: one built so once, for a robot
        that reads many such pages."""
        from robots.engine.fields import READ_JS, FieldReader

        await self.goto(page, self.url(spec.path, **values))
        if spec.ready is not None:  # values JavaScript fills in: not before they are there
            await self.wait_ready(page, spec.ready)
        if reader is None:
            reader = FieldReader.of(spec, kinds, self.run.clock, name=table, tally=self.run.count)
        return reader.read(await page.evaluate(READ_JS, reader.js_specs))

    async def wait_ready(self, page: Page, ready: str) -> None:
        """Until ``ready`` is on the page (the browser's timeout): a page that never shows it
        is unreadable, named so (a person looks; never read half filled)."""
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        from robots.engine.fields import UnreadableField

        timeout = self.ws.config.browser.timeout_ms
        try:
            await page.wait_for_selector(ready, state="attached", timeout=timeout)
        except PlaywrightTimeoutError:
            raise UnreadableField(
                "page.ready", ready, "", f"页面在 {timeout / 1000:g} 秒内没有就绪（{ready}）"
            ) from None

    def _login(self) -> Any:
        return getattr(self.scenario, "login", None)

    # -- what a cluster worker needs to work this robot's items (robots.cluster.worker) ------
    def open_browser(self) -> AbstractAsyncContextManager[Web]:
        """The robot's browser, as ``perform`` opens it: logged in when the scenario has a
        ``[login]`` (with the shop's credential)."""
        login = self._login()
        if login is None:
            return self.run.browser()
        from robots.runtime.browser import LoginForm

        credential = self.credential(self.scenario.shop.credential)
        return self.run.browser(
            login=LoginForm.at(self.base_url or "", login), credential=credential
        )

    def open_lane(self, web: Web) -> AbstractAsyncContextManager[Lane]:
        """One worker's context and page in that browser."""
        return web.lane()

    @property
    def base_url(self) -> str | None:
        """The shop's address as this run uses it (a target's or --base-url wins)."""
        shop = getattr(self.scenario, "shop", None)
        url = getattr(shop, "base_url", None)
        return str(url) if url is not None else None

    def input_files(self) -> list[Path]:
        """Files beside the scenario that the robot reads (word lists, price lists): on the
        cluster, a worker whose copies differ from its coordinator's refuses the run."""
        return []

    async def prepare_worker(self) -> None:
        """What a worker's copy of the robot opens before its first item, beyond the
        browser (the returns robot: the terminal on the worker's display)."""

    def release_worker(self) -> None:
        """Closes what ``prepare_worker`` opened."""

    def shared(self) -> dict[str, Any]:
        """What a worker's copy of this robot must share with the coordinator's (JSON),
        beyond the run id: ``join`` takes it on the worker's side."""
        return {}

    def join(self, shared: dict[str, Any]) -> None:
        """A worker's copy of the robot takes what the coordinator's ``shared`` gave."""

    def encode_item(self, item: Any) -> Any:
        """An item of the work loop as JSON for a task message; ``decode_item`` undoes it."""
        from pydantic import TypeAdapter

        return TypeAdapter(type(item)).dump_python(item, mode="json")

    def decode_item(self, data: Any) -> Any:
        if self.ITEM is None:
            return data
        from pydantic import TypeAdapter

        return TypeAdapter(self.ITEM).validate_python(data)

    def report_path(self, kind: str, run_id: str | None = None) -> Path:
        """``reports/<kind>-<run id>[-dry-run].xlsx`` (this run's, or ``run_id``'s)."""
        run = self.run
        dry = "-dry-run" if run.dry_run and run_id is None else ""
        name = f"{kind}-{run_id or run.run_id}{dry}.xlsx"
        return self.ws.path(self.ws.config.paths.reports) / name

    def run_times(self) -> tuple[datetime, datetime]:
        """When the run started and ended, as the ledger recorded them (host wall times)."""
        view = self.run.ledger.find_run(self.run.run_id)
        now = self.run.clock.wall(self.run.clock.now())
        if view is None:
            return now, now
        return view.started_at, view.ended_at or now
