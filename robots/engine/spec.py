"""A robot, declared: what the CLI, the scheduler, `robots runs`, the cluster and alerts know
of it.

Each robot package exports one ``SPEC = RobotSpec(...)`` in its ``__init__.py``, and
``robots/registry.py`` lists them. The spec names the robot's parts through a small function
that imports them (``parts``, returning ``RobotParts``), so a reader, an editor and
import-linter follow a scenario to its robot, while listing the robots (`robots --help`,
`robots runs`) imports none of their heavy modules. Its `robots run <name>` command is
generated from it (``robots.commands.robot_command``): the common options, and the robot's
own ``options``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

SYSTEM = ("system_exception", "system exceptions")


@dataclass(frozen=True)
class Option:
    """One option of `robots run <robot>` beyond the common ones, handed to the scenario's
    ``load`` (``to="scenario"``) or to the robot's constructor (``to="robot"``) under the
    flag's name (``--price-list`` → ``price_list``)."""

    flag: str
    type: Any  # as typer reads it: ``Path | None``, ``list[str] | None``
    help: str
    to: Literal["scenario", "robot"]
    not_on_cluster: str = ""  # said (a ConfigError) when given with --cluster

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class RobotParts:
    """What a robot is made of, imported when first used."""

    scenario: ModuleType  # its scenario module: ``load``, ``FIELD_TABLES`` (and ``check``)
    robot: type  # its ``BaseRobot`` subclass
    report: Any  # its report: ``write_run`` (and ``queue_sheet``), a module or an ItemsReport
    probe: Callable[..., Any] | None = None  # what `robots scenario probe` opens and reads


def done_line(result: Any, dry_run: bool, parts: list[tuple[str, str]], tail: str = "") -> str:
    """ "[dry run ]done: 3 approved, 2 to a person, …": counts named by ``(count, label)``."""
    body = ", ".join(f"{result.counts.get(key, 0)} {label}" for key, label in parts)
    return f"[bold]{'dry run ' if dry_run else ''}done[/]: {body}{tail}"


@dataclass(frozen=True)
class RobotSpec:
    name: str  # `robots run <name>`, the ledger's robot column, a target's ``robot``
    title: str  # its name as ops read it (退款, 无名件…): run summaries, the queue
    help: str  # the first line of `robots run <name> --help`
    parts: Callable[[], RobotParts]
    # how `robots runs` and the summary line show its counts
    count_names: Mapping[str, str] = field(default_factory=dict)
    # counts that are items a person must look at (the alert rules' "exceptions")
    exception_counts: tuple[str, ...] = ("handed_to_person", "system_exception")
    summary: Callable[[Any, bool], str] | None = None  # default: done_line of count_names
    on_cluster: bool = False  # its items can go to the cluster's workers (--cluster)
    dry_run: bool = True  # offers --dry-run (a robot that never changes the shop does not)
    options: tuple[Option, ...] = ()
    # an optional NAME after `robots run <robot>`: its help, and where a file of that name is
    # looked for when no target has it ({name}: the name; a glob under the workspace)
    named: str = ""
    named_files: str = ""
    # one run lock per scenario file (flows: two flows run at once, one flow never twice);
    # else one per robot
    lock_per_file: bool = False

    def lock_name(self, scenario_file: Any) -> str:
        """The run lock a run of this robot on ``scenario_file`` takes (and ``robots runs``
        looks at to tell running from interrupted)."""
        if not self.lock_per_file:
            return self.name
        from pathlib import PurePath

        return f"{self.name}-{PurePath(str(scenario_file)).stem}"

    def scenario(self) -> ModuleType:
        return self.parts().scenario

    def robot(self) -> type:
        return self.parts().robot

    def report(self) -> Any:
        return self.parts().report

    @property
    def field_tables(self) -> Mapping[str, Mapping[str, Any]]:
        """Every value the robot reads (``FieldKind``s), by the scenario table they are in
        (``scenario.FIELD_TABLES``): the field reference."""
        tables: Mapping[str, Mapping[str, Any]] = getattr(self.scenario(), "FIELD_TABLES", {})
        return tables

    def load_scenario(self, file: Any, **options: Any) -> Any:
        return self.scenario().load(file, **options)

    def check_inputs(self, scenario: Any) -> None:
        """Open the files a loaded scenario names, if the robot reads any (``scenario.check``)."""
        check = getattr(self.scenario(), "check", None)
        if check is not None:
            check(scenario)

    def build(self) -> Callable[..., Any]:
        return self.robot()

    def probe(self) -> Callable[..., Any]:
        """What `robots scenario probe` opens and reads for this robot."""
        from robots.errors import ConfigError

        probe = self.parts().probe
        if probe is None:
            raise ConfigError(
                f"the {self.name} robot has no scenario probe yet", file="robots.toml", key="robot"
            )
        return probe

    def report_part(self, name: str) -> Callable[..., Any] | None:
        """``report.<name>`` of the robot if it has one: ``write_run`` (a run's workbook from
        the ledger) or ``queue_sheet`` (its sheet of the open-exceptions queue)."""
        part: Callable[..., Any] | None = getattr(self.report(), name, None)
        return part

    def summary_line(self, result: Any, dry_run: bool) -> str:
        if self.summary is not None:
            return self.summary(result, dry_run)
        return done_line(result, dry_run, [*self.count_names.items(), SYSTEM])
