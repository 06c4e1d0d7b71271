"""The example robot (robots/stalled, ARCHITECTURE.md's walk-through) against the sandbox's
logistics pages: every stalled shipment, and only those, reaches a person through the run's
workbook and the open-exceptions queue; a daily re-run reads nothing twice; a value beside
the wrong label is never read; and the robot stays as small as the walk-through says."""

from __future__ import annotations

import ast
import io
import subprocess
import tokenize
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox, one_target_workspace, robot_env, robots_cmd
from openpyxl import load_workbook

from sandbox.logistics import load_shipments_truth

pytestmark = [pytest.mark.browser, pytest.mark.refunds(5), pytest.mark.shipments(70)]
SCENARIO = ROOT / "scenarios" / "demo-shop" / "stalled.toml"


def workspace(root: Path, sandbox: Sandbox, edits: tuple[tuple[str, str], ...] = ()) -> Path:
    return one_target_workspace(
        root, sandbox.url, SCENARIO, robot="stalled", target="logistics", edits=edits
    )


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd("run", "stalled", "-w", str(root)),
        capture_output=True,
        text=True,
        timeout=600,
        env=robot_env(),
    )


def sheet_rows(path: Path, sheet: str) -> list[dict[str, object]]:
    ws = load_workbook(path)[sheet]
    header, *rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_every_stalled_shipment_and_only_those_reach_a_person(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    truth = load_shipments_truth(sandbox.data)
    stalled = {o for o, t in truth.items() if t["kind"] == "stalled"}
    assert stalled and len(stalled) < len(truth)  # the shop has both
    root = workspace(tmp_path / "ws", sandbox)

    first = run(root)
    assert first.returncode == 0, first.stderr
    reports = sorted((root / "reports").glob("stalled-*.xlsx"))
    assert len(reports) == 1, reports
    handed = sheet_rows(reports[0], "待人工处理")
    assert {r["订单号 order"] for r in handed} == stalled
    assert all(r["原因代码 code"] == "STALLED" for r in handed)
    assert all(str(r["原因 reason"]).startswith("物流停滞：") for r in handed)
    assert all(float(r["停滞天数 days"]) >= 3 for r in handed)  # type: ignore[arg-type]
    done = {r["订单号 order"] for r in sheet_rows(reports[0], "已完成")}
    assert done == set(truth) - stalled  # moving, returning, and delivered since the list
    queue = sheet_rows(root / "reports" / "open-exceptions.xlsx", "物流停滞待处理")
    assert {r["订单号 order"] for r in queue} == stalled

    again = run(root)  # the same day: every order was read today, none is read twice
    assert again.returncode == 0, again.stderr
    second = max((root / "reports").glob("stalled-*.xlsx"), key=lambda p: p.stat().st_mtime)
    assert sheet_rows(second, "待人工处理") == [] and sheet_rows(second, "已完成") == []
    queue = sheet_rows(root / "reports" / "open-exceptions.xlsx", "物流停滞待处理")
    assert {r["订单号 order"] for r in queue} == stalled  # still waiting for a person


def test_a_value_beside_the_wrong_label_is_never_read(tmp_path: Path, sandbox: Sandbox) -> None:
    """The state's selector slips onto the neighbouring row (发货时间): no shipment is taken
    for moving or delivered; each read goes to a person naming the field and both labels,
    and the run stops once its items are mostly unreadable (the rest wait, not started)."""
    slip = ('selector = "dd.state"', 'selector = "dl.card dd:nth-of-type(4)"')
    root = workspace(tmp_path / "ws", sandbox, (slip,))
    result = run(root)
    assert result.returncode == 1, result.stderr  # unreadable everywhere: the run says so
    first = result.stderr.splitlines()[0]
    assert first.startswith("ScenarioUnreadable: the scenario's field 'state'"), first
    assert "应为“物流状态”" in first, first
    report = max((root / "reports").glob("stalled-*.xlsx"))
    handed = sheet_rows(report, "待人工处理")
    assert handed and sheet_rows(report, "已完成") == []
    for r in handed:
        assert r["原因代码 code"] == "UNREADABLE_FIELD"
        assert "state" in str(r["原因 reason"]) and "发货时间" in str(r["原因 reason"])
    summary = dict(load_workbook(report)["汇总"].iter_rows(values_only=True))  # type: ignore[arg-type]
    assert summary["未开始 not started"] == len(load_shipments_truth(sandbox.data)) - len(handed)


def test_the_probe_shows_what_the_scenario_reads(tmp_path: Path, sandbox: Sandbox) -> None:
    root = workspace(tmp_path / "ws", sandbox)
    shown = subprocess.run(
        robots_cmd("scenario", "probe", "--target", "logistics", "-w", str(root)),
        capture_output=True,
        text=True,
        timeout=300,
        env=robot_env(COLUMNS="200"),
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "物流状态" in shown.stdout and "最新轨迹时间" in shown.stdout  # the labels beside
    assert "every field of" in shown.stderr, shown.stderr


def code_lines(path: Path) -> int:
    """Lines holding code: no blank line, comment or docstring."""
    text = path.read_text(encoding="utf-8")
    docs: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docs.update(range(first.lineno, (first.end_lineno or 0) + 1))
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip and tok.type != tokenize.ENDMARKER:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docs)


@pytest.mark.parametrize("marks", [()], ids=["no-browser"])
def test_the_example_robot_stays_small(marks: tuple[()]) -> None:
    package = ROOT / "robots" / "stalled"
    assert code_lines(package / "robot.py") + code_lines(package / "scenario.py") <= 60
