"""数据抓取 as a flow (scenarios/demo-shop/flows/price-watch.toml): each SKU of an ops watch
list read off the storefront, one row per SKU; two runs around price and stock changes in
the shop mark exactly the SKUs that changed (新增 the first time, then 涨价 / 降价 / 缺货)."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox, one_target_workspace, robot_env, robots_cmd
from openpyxl import load_workbook

FLOW = ROOT / "scenarios" / "demo-shop" / "flows" / "price-watch.toml"
pytestmark = [pytest.mark.browser, pytest.mark.refunds(5), pytest.mark.products(12)]


def run(root: Path, watch: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd("run", "flow", "watch", "--source-file", str(watch), "-w", str(root)),
        capture_output=True,
        text=True,
        timeout=600,
        env=robot_env(),
    )


def newest(root: Path) -> Path:
    return sorted((root / "reports").glob("flow-*.xlsx"))[-1]


def marks(root: Path) -> dict[str, tuple[str, float, str]]:
    """The newest run's rows: SKU → (its mark, the price read, the stock read)."""
    report = sorted((root / "reports").glob("flow-*.xlsx"))[-1]
    header, *rows = list(load_workbook(report)["已完成"].iter_rows(values_only=True))
    out = {}
    for r in rows:
        row = dict(zip(header, r, strict=True))
        out[str(row["SKU编码 sku"])] = (
            str(row["标记 note"] or ""),
            float(row["售价 price"]),  # type: ignore[arg-type]
            str(row["库存 stock"]),
        )
    return out


def shop_skus(sandbox: Sandbox) -> dict[str, tuple[Decimal, int]]:
    with sandbox.db() as conn:
        return {
            r["sku"]: (Decimal(r["price"]), r["stock"])
            for r in conn.execute("SELECT sku, price, stock FROM skus")
        }


def test_two_runs_around_changes_mark_exactly_the_changed_skus(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    watch = sandbox.data / "watch-skus.csv"
    watched = [line.split(",")[1] for line in watch.read_text(encoding="utf-8").split()[1:]]
    assert len(watched) >= 20
    root = one_target_workspace(tmp_path / "ws", sandbox.url, FLOW, robot="flow", target="watch")

    listed = watch.read_text(encoding="utf-8")  # and a product the shop no longer has
    watch.write_text(listed + "P-GONE,GONE-SKU\n", encoding="utf-8")
    first = run(root, watch)
    assert first.returncode == 0, first.stderr
    header, *failed = list(load_workbook(newest(root))["失败页面"].iter_rows(values_only=True))
    assert [dict(zip(header, f, strict=True))["页面 page"] for f in failed] == [
        f"{sandbox.url}shop/p/P-GONE?sku=GONE-SKU"
    ], failed
    watch.write_text(listed, encoding="utf-8")
    opened = sorted(t for t, m, path in sandbox.requests() if path.startswith("/shop/p/"))
    assert len(opened) >= len(watched)  # at most 4 a second (the flow's limit): a burst of
    assert opened[-1] - opened[0] >= (len(watched) - 4) / 4 - 0.5  # 4, then 4 each second
    truth = shop_skus(sandbox)
    seen = marks(root)
    assert set(seen) == set(watched)
    for sku, (mark, price, stock) in seen.items():  # what the shop shows, each one new
        assert mark == "新增" and Decimal(str(price)) == truth[sku][0], (sku, seen[sku])
        assert stock == (str(truth[sku][1]) if truth[sku][1] else "无货"), (sku, stock)

    in_stock = [s for s in watched if truth[s][1] > 0]
    up, down, sold_out = in_stock[:2], in_stock[2:3], in_stock[3:4]
    for sku in up:
        sandbox.control("set-price", sku=sku, price=str(truth[sku][0] + Decimal("10.00")))
    for sku in down:
        sandbox.control("set-price", sku=sku, price=str(truth[sku][0] - Decimal("5.00")))
    for sku in sold_out:
        sandbox.control("set-price", sku=sku, stock=0)

    second = run(root, watch)
    assert second.returncode == 0, second.stderr
    changed = {s: m for s, (m, _p, _s) in marks(root).items() if m}
    expected = {**dict.fromkeys(up, "涨价"), **dict.fromkeys(down, "降价")}
    expected.update(dict.fromkeys(sold_out, "缺货"))
    assert changed == expected
