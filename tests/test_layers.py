"""Dependencies point down: the import-linter contracts in pyproject.toml hold, and break
when a module imports upward (so the check itself can fail)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT)], cwd=root, capture_output=True, text=True, timeout=300, env=env
    )


def copy_tree(to: Path) -> Path:
    for package in ("robots", "sandbox", "scheduler"):
        shutil.copytree(ROOT / package, to / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    return to


def add_import(file: Path, line: str) -> None:
    text = file.read_text(encoding="utf-8")
    anchor = "from __future__ import annotations\n"
    file.write_text(text.replace(anchor, anchor + line + "\n", 1), encoding="utf-8")


def test_the_tree_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_config_importing_a_robot_package_breaks_a_contract(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    add_import(tree / "robots" / "config.py", "from robots.refunds import policy  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "robots.config is not allowed to import robots.refunds" in result.stdout


def test_a_robot_importing_another_breaks_a_contract(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    add_import(tree / "robots" / "returns" / "robot.py", "import robots.pagescan.robot  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "Robots never import each other BROKEN" in result.stdout.replace("\n", " ")


def test_the_engine_importing_a_robot_breaks_a_contract(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    add_import(tree / "robots" / "engine" / "item.py", "import robots.returns.report  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "robots.engine is not allowed to import robots.returns" in result.stdout
    assert "robots.engine.item -> robots.returns.report" in result.stdout


LAYERS = "Dependencies point down"


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the upward imports the tree had (issue 27), each planted back
        ("robots/engine/run.py", "import robots.cluster.coordinator", LAYERS),
        ("robots/config.py", "import robots.alerts", LAYERS),
        ("robots/config.py", "import robots.registry", LAYERS),
        ("robots/config.py", "import scheduler.service", "nothing imports the scheduler service"),
        ("robots/ledger.py", "import robots.engine.item", LAYERS),
        ("robots/reports/queue.py", "import robots.registry", LAYERS),
        ("robots/runtime/lock.py", "import robots.ledger", LAYERS),
        ("robots/alerts.py", "import robots.registry", LAYERS),
        ("robots/engine/item.py", "import robots.ops", LAYERS),
        # a robot's package naming the commands (its generated command: robots.commands)
        ("robots/refunds/__init__.py", "import robots.commands", LAYERS),
        ("robots/cluster/worker.py", "import robots.refunds.robot", "The cluster names no robot"),
    ],
)
def test_an_upward_import_breaks_the_layers(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    tree = copy_tree(tmp_path)
    add_import(tree / module, f"{line}  # noqa")
    result = lint(tree)
    out = " ".join(result.stdout.split())
    assert result.returncode != 0, out
    verdict = re.search(re.escape(broken) + r".*?\b(KEPT|BROKEN)\b", out)
    assert verdict is not None and verdict.group(1) == "BROKEN", out


def test_a_tool_follows_a_robot_from_the_registry_to_its_parts() -> None:
    """The registry lists declared specs, whose parts are imports (not module names in
    strings): the import graph leads from the registry to every robot's class and scenario."""
    import grimp

    from robots.registry import ROBOTS

    graph = grimp.build_graph("robots")
    for name, robot in ROBOTS.items():
        parts = robot.parts()
        report = parts.report
        report_module = getattr(report, "__name__", None) or type(report).__module__
        if report_module == "robots.reports.items":  # an ItemsReport declared in its report.py
            report_module = f"robots.{name}.report"
        for module in (parts.robot.__module__, parts.scenario.__name__, report_module):
            assert module.startswith(f"robots.{name}.")
            chain = graph.find_shortest_chain(importer="robots.registry", imported=module)
            assert chain is not None, f"robots.registry does not lead to {module}"
