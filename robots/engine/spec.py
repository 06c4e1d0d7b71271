"""What the CLI, the scheduler, `robots runs` and alerts need to know about one robot.

A robot package follows one layout, so its spec is its name: ``robots/<name>/scenario.py``
has ``load`` (read and check a scenario file), ``robot.py`` has ``Robot`` (the class a run
is built from), ``command.py`` has ``run`` (the `robots run <name>` command, whose docstring
is its help), ``summary`` (the line printed after a run), ``TITLE`` (its Chinese name),
``COUNT_NAMES`` and
``EXCEPTION_COUNTS`` (and ``ON_CLUSTER`` when its items can go to the cluster's workers);
``report.py`` may have ``write_run`` and ``queue_sheet`` (writing from
the ledger: `robots report`, the open-exceptions queue). Parts are imported only when used,
so listing the robots (or `robots --help`) imports none of their heavy modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RobotSpec:
    name: str
    package: str  # e.g. "robots.refunds"

    def _part(self, module: str, attribute: str) -> Any:
        return getattr(importlib.import_module(f"{self.package}.{module}"), attribute)

    @property
    def help(self) -> str:
        doc = self.run_command().__doc__ or self.name
        return doc.strip().splitlines()[0]

    @property
    def title(self) -> str:
        """The robot's name as ops read it (退款, 无名件…)."""
        return str(self._part("command", "TITLE"))

    @property
    def exception_counts(self) -> tuple[str, ...]:
        """Counts that are items a person must look at (the alert rules' "exceptions")."""
        counts: tuple[str, ...] = self._part("command", "EXCEPTION_COUNTS")
        return counts

    @property
    def count_names(self) -> Mapping[str, str]:
        """How `robots runs` shows this robot's counts."""
        names: Mapping[str, str] = self._part("command", "COUNT_NAMES")
        return names

    @property
    def on_cluster(self) -> bool:
        """Whether the robot's items can go to the cluster's workers (``command.ON_CLUSTER``)."""
        module = importlib.import_module(f"{self.package}.command")
        return bool(getattr(module, "ON_CLUSTER", False))

    @property
    def field_tables(self) -> Mapping[str, Mapping[str, Any]]:
        """Every value the robot reads (``FieldKind``s), by the scenario table they are in
        (``scenario.FIELD_TABLES``): the field reference."""
        tables: Mapping[str, Mapping[str, Any]] = self._part("scenario", "FIELD_TABLES")
        return tables

    def load_scenario(self, file: Any, **options: Any) -> Any:
        return self._part("scenario", "load")(file, **options)

    def check_inputs(self, scenario: Any) -> None:
        """Open the files a loaded scenario names, if the robot reads any (``scenario.check``)."""
        module = importlib.import_module(f"{self.package}.scenario")
        check = getattr(module, "check", None)
        if check is not None:
            check(scenario)

    def build(self) -> Callable[..., Any]:
        robot: Callable[..., Any] = self._part("robot", "Robot")
        return robot

    def probe(self) -> Callable[..., Any]:
        """``probe.probe`` of the robot package (`robots scenario probe`)."""
        from robots.errors import ConfigError

        try:
            found: Callable[..., Any] = self._part("probe", "probe")
        except ModuleNotFoundError:
            raise ConfigError(
                f"the {self.name} robot has no scenario probe yet", file="robots.toml", key="robot"
            ) from None
        return found

    def report_part(self, name: str) -> Callable[..., Any] | None:
        """``report.<name>`` of the robot package if it has one: ``write_run`` (a run's
        workbook from the ledger) or ``queue_sheet`` (its sheet of the open-exceptions queue)."""
        module = importlib.import_module(f"{self.package}.report")
        part: Callable[..., Any] | None = getattr(module, name, None)
        return part

    def run_command(self) -> Callable[..., Any]:
        command: Callable[..., Any] = self._part("command", "run")
        return command

    def summary_line(self, result: Any, dry_run: bool) -> str:
        line: str = self._part("command", "summary")(result, dry_run)
        return line
