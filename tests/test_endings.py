"""An item's ending is written in one place: only ``robots/engine/item.py`` calls the ledger's
methods that end an item (done, handed over, given up, a problem noted, acting begun), for
every robot, ``robots apply``, batch approval and the cluster's workers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENDINGS = {"finish", "give_up", "note_problem", "start_acting"}
ALLOWED = {Path("robots/engine/item.py"), Path("robots/ledger.py")}


def calls_to_endings(file: Path, base: Path = ROOT) -> list[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    return [
        f"{file.relative_to(base)}:{node.lineno} .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ENDINGS
        and "ledger" in ast.unparse(node.func.value)
    ]


def test_only_the_item_writes_an_ending() -> None:
    found = [
        call
        for file in sorted((ROOT / "robots").rglob("*.py"))
        if file.relative_to(ROOT) not in ALLOWED
        for call in calls_to_endings(file)
    ]
    assert found == [], "an item's ending written outside engine/item.py:\n" + "\n".join(found)


def test_the_check_finds_an_ending_written_elsewhere(tmp_path: Path) -> None:
    planted = tmp_path / "robot.py"
    planted.write_text("def f(run):\n    run.ledger.finish('r', 'k', 'done')\n")
    assert calls_to_endings(planted, tmp_path) == ["robot.py:2 .finish()"]
