"""The base every robot class extends: its run built from the scenario, report names, times.

A robot subclass sets ``NAME`` (and ``REASONS``, the Chinese texts of its reason codes) and
writes ``perform()``; see ``robots/refunds/robot.py`` for the model to copy.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from robots.engine.run import Lane, RobotRun, RunOptions, RunResult, Web

if TYPE_CHECKING:
    from robots.config import Workspace
    from robots.runtime.credentials import Credential


class BaseRobot:
    NAME: ClassVar[str]
    REASONS: ClassVar[dict[str, str]] = {}
    RUN_PREFIX: ClassVar[str | None] = None  # run ids name the robot, unless this is set
    ITEM: ClassVar[Any] = None  # the type of the work loop's items (a cluster decodes them)

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

    # -- what a cluster worker needs to work this robot's items (robots.cluster.worker) ------
    def open_browser(self) -> AbstractAsyncContextManager[Web]:
        """The robot's browser, as ``perform`` opens it (logged in, if the shop needs it)."""
        return self.run.browser()

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
