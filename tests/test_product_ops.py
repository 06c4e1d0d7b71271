"""商品改价 / 上下架 as a flow (scenarios/demo-shop/flows/product-ops.toml): a reviewed workbook
applied in the back office's 商品管理, each change once; a live price that is no longer the
one the reviewer saw (before the run, or between the decision and the press), a price below
cost and too large a change reach a person; a SIGKILL mid-run changes no SKU twice."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox, one_target_workspace, reaped, robot_env, robots_cmd
from openpyxl import Workbook, load_workbook

from sandbox.merch import REVIEW_NAME

FLOW = ROOT / "scenarios" / "demo-shop" / "flows" / "product-ops.toml"
pytestmark = [pytest.mark.browser, pytest.mark.refunds(5), pytest.mark.products(30)]
HEADERS = ["SKU编码", "审核时售价", "新售价", "目标状态"]
LIMIT = Decimal("0.30")  # the flow's 改价幅度 rule


def workspace(root: Path, url: str) -> Path:
    return one_target_workspace(root, url, FLOW, robot="flow", target="ops", retry=True)


def command(root: Path, review: Path) -> list[str]:
    return robots_cmd("run", "flow", "ops", "--source-file", str(review), "-w", str(root))


def run(root: Path, review: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(root, review), capture_output=True, text=True, timeout=600, env=robot_env()
    )


def shop(sandbox: Sandbox) -> dict[str, tuple[Decimal, Decimal, str]]:
    """Each SKU as the back office holds it: (售价, 成本价, 状态)."""
    with sandbox.db() as conn:
        return {
            sku: (Decimal(price), Decimal(cost), state)
            for sku, price, cost, state in conn.execute("SELECT sku, price, cost, state FROM skus")
        }


def changes(sandbox: Sandbox) -> dict[str, list[str]]:
    """Every 改价 / 上下架 the back office received, by SKU: 'kind value → answer'."""
    with sandbox.db() as conn:
        found: dict[str, list[str]] = {}
        for sku, kind, value, answer in conn.execute(
            "SELECT sku, kind, value, answer FROM merch_posts ORDER BY post_id"
        ):
            found.setdefault(sku, []).append(f"{kind} {value} → {answer}")
        return found


def review_rows(review: Path) -> list[tuple[str, Decimal, Decimal | None, str | None]]:
    header, *rows = list(load_workbook(review).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    at = {h: i for i, h in enumerate(header)}
    return [
        (
            str(r[at["SKU编码"]]),
            Decimal(str(r[at["审核时售价"]])),
            Decimal(str(r[at["新售价"]])) if r[at["新售价"]] is not None else None,
            r[at["目标状态"]],
        )
        for r in rows
    ]


def expected(sandbox: Sandbox, review: Path) -> tuple[dict[str, str], dict[str, str]]:
    """What a careful merchandiser does with the workbook, worked out from the shop's own
    numbers: each SKU's change to make ('price 93.40', 'state 已下架'), and those to hand
    over with the reason."""
    live = shop(sandbox)
    make, handed = {}, {}
    for sku, seen, new, state in review_rows(review):
        price, cost, now = live[sku]
        if seen != price:
            handed[sku] = "CHANGED_SINCE_REVIEW"
        elif new is not None and new < cost:
            handed[sku] = "BELOW_COST"
        elif new is not None and abs(new - price) > price * LIMIT:
            handed[sku] = "OVER_CHANGE_LIMIT"
        elif new is not None:
            make[sku] = f"price {new:.2f}"
        elif state == "下架" and now == "在售":
            make[sku] = "state 已下架"
    return make, handed


def made_once(sandbox: Sandbox, make: dict[str, str]) -> None:
    """Each change received once and taken, nothing else sent; the shop shows each."""
    sent = changes(sandbox)
    assert set(sent) == set(make), set(sent) ^ set(make)
    for sku, change in make.items():
        assert len(sent[sku]) == 1 and sent[sku][0].startswith(change.split()[0]), sent[sku]
        assert "flash=" in sent[sku][0], sent[sku]
    live = shop(sandbox)
    for sku, change in make.items():
        kind, value = change.split()
        assert (str(live[sku][0]) if kind == "price" else live[sku][2]) == value, (sku, live[sku])


def handed_over(root: Path) -> dict[str, str]:
    report = sorted((root / "reports").glob("flow-*.xlsx"))[-1]
    header, *rows = list(load_workbook(report)["待人工处理"].iter_rows(values_only=True))
    return {
        str(dict(zip(header, r, strict=True))["SKU编码 sku"]): str(
            dict(zip(header, r, strict=True))["原因代码 code"]
        )
        for r in rows
    }


def test_each_reviewed_change_is_made_once_and_the_money_risks_reach_a_person(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    review = sandbox.data / REVIEW_NAME  # the seed's: every kind of row
    make, handed = expected(sandbox, review)
    assert set(handed.values()) == {"CHANGED_SINCE_REVIEW", "BELOW_COST", "OVER_CHANGE_LIMIT"}
    assert {c.split()[0] for c in make.values()} == {"price", "state"}
    root = workspace(tmp_path / "ws", sandbox.url)

    first = run(root, review)
    assert first.returncode == 0, first.stderr
    assert f"done: {len(make)} acted, {len(handed)} to a person" in first.stderr, first.stderr
    made_once(sandbox, make)
    assert handed_over(root) == handed
    queue = load_workbook(root / "reports" / "open-exceptions.xlsx")["流程待处理"]
    header, *rows = list(queue.iter_rows(values_only=True))
    money = {
        str(r[0]).split(":")[1]: r[header.index("金额 money")]
        for r in rows
        if str(r[0]).startswith("product-ops:")
    }
    live = shop(sandbox)
    assert money == {sku: float(live[sku][0]) for sku in handed}  # each with its live price

    again = run(root, review)  # the same workbook again: every change made already
    assert again.returncode == 0, again.stderr
    assert "done: 0 acted" in again.stderr, again.stderr
    made_once(sandbox, make)


def test_a_price_changed_after_the_decision_is_not_overwritten(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """A person edits the price between the robot's read and its press: the guard reads the
    page again right before the press, finds another price, and presses nothing."""
    review = sandbox.data / REVIEW_NAME
    make, _ = expected(sandbox, review)
    target = min(s for s, c in make.items() if c.startswith("price"))
    sandbox.control("merch-price-after", sku=target, renders=1, price="123.45")
    root = workspace(tmp_path / "ws", sandbox.url)
    result = run(root, review)
    assert result.returncode == 0, result.stderr
    assert target not in changes(sandbox)  # never pressed
    assert shop(sandbox)[target][0] == Decimal("123.45")  # the person's price stands
    assert handed_over(root)[target] == "GUARD_CHANGED"
    made_once(sandbox, {s: c for s, c in make.items() if s != target})


def small_changes(sandbox: Sandbox, path: Path) -> dict[str, str]:
    """A workbook of a small price change for every SKU in the shop: each to make."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADERS)
    make = {}
    for sku, (price, _, _) in sorted(shop(sandbox).items()):
        new = (price * Decimal("1.05")).quantize(Decimal("0.1"))
        ws.append([sku, float(price), float(new), None])
        make[sku] = f"price {new:.2f}"
    wb.save(path)
    return make


def test_a_killed_run_then_another_changes_each_sku_once(tmp_path: Path, sandbox: Sandbox) -> None:
    review = tmp_path / "改价审核.xlsx"
    make = small_changes(sandbox, review)
    assert len(make) >= 60
    root = workspace(tmp_path / "ws", sandbox.url)
    proc = subprocess.Popen(
        command(root, review), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=robot_env()
    )
    with reaped(proc):
        deadline = time.monotonic() + 300
        while len(changes(sandbox)) < 10:  # kill it well into the presses
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    assert 10 <= len(changes(sandbox)) < len(make)
    resumed = run(root, review)
    assert resumed.returncode == 0, resumed.stderr
    made_once(sandbox, make)  # the killed run's last press settled by reading, not repeated
    assert Counter(handed_over(root).values()) == Counter()
