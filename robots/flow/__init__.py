"""Flows: new jobs declared in files (a source of items, typed reads, rules in CEL) that run
on the engine like the robots: `robots run flow <name>` (a target, or
``scenarios/<shop>/flows/<name>.toml``; or ``--target``, ``--scenario``).

A list page or a workbook / CSV as the source, each item's page read, and rules that hand
an item to a person, record what was read, skip it, or take one of the flow's actions
exactly once (the engine's acting protocol); `robots flow new` starts one from a list page."""

from __future__ import annotations

from pathlib import Path

from robots.engine.spec import Option, RobotParts, RobotSpec


def parts() -> RobotParts:
    from robots.flow import probe, robot, scenario

    return RobotParts(scenario, robot.FlowRobot, robot, probe.probe)


SPEC = RobotSpec(
    name="flow",
    title="流程",
    help="Run a flow file: items from its source, read, decided by its CEL rules, acted on once.",
    parts=parts,
    count_names={
        "acted": "acted",
        "handed_to_person": "to a person",
        "recorded": "recorded",
        "skipped": "skipped",
    },
    named="The flow: a target of that name, or scenarios/<shop>/flows/<NAME>.toml.",
    on_cluster=True,  # `robots run flow NAME --cluster`: each item, with its row, to a worker
    lock_per_file=True,  # two flows run at once; one flow never twice
    named_files="scenarios/*/flows/{name}.toml",
    options=(
        Option(
            "--source-file",
            Path | None,
            "The workbook or CSV to take the items from, overriding the flow's [source] file.",
            to="scenario",
        ),
    ),
)
