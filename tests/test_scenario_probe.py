"""`robots scenario probe` on both back offices of the sandbox: a good scenario reads every
field (exit 0, a table); a broken field is named with what the page showed (exit 1)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    SKINS,
    Sandbox,
    robot_env,
    robots_cmd,
    start_sandbox,
    stop_sandbox,
    write_workspace,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = start_sandbox(tmp_path_factory.mktemp("probe") / "shop", refunds=30)
    yield sb
    stop_sandbox(sb)


def probe(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd("scenario", "probe", "--target", "sandbox", "-w", str(ws), *args),
        capture_output=True,
        text=True,
        env={**robot_env(), "COLUMNS": "250"},
        timeout=120,
    )


def pending_refund(sb: Sandbox) -> str:
    with sb.db() as conn:
        (rid,) = conn.execute(
            "SELECT refund_id FROM refunds WHERE status = 'WAIT_SELLER_AGREE' ORDER BY refund_id"
        ).fetchone()
    return str(rid)


@pytest.mark.parametrize("skin", SKINS)
def test_a_good_scenario_reads_every_field(shop: Sandbox, tmp_path: Path, skin: str) -> None:
    ws = write_workspace(tmp_path, shop.url, scenario_text=SKINS[skin].read_text("utf-8"))
    result = probe(ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every field" in result.stderr
    table = result.stdout
    assert "list rows 1-5" in table and "1 · refund_id" in table and "refund page RF" in table
    for name in ("refund_fee", "deadline", "has_good_return", "buyer_refunds_90d", "category"):
        assert name in table
    assert "✗" not in table
    assert "WAIT_SELLER_AGREE" in table  # the status as the robot reads it, whatever was shown


@pytest.mark.parametrize("skin", SKINS)
def test_a_broken_field_is_named_with_what_the_page_showed(
    shop: Sandbox, tmp_path: Path, skin: str
) -> None:
    text = SKINS[skin].read_text("utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith("refund_fee = "))
    broken = text.replace(line, 'refund_fee = { selector = "#nowhere" }')
    # and a field on the wrong element: a label where an amount belongs
    line = next(ln for ln in broken.splitlines() if ln.startswith("payment = "))
    broken = broken.replace(line, 'payment = { selector = "h1, .wb-panel__title" }')
    ws = write_workspace(tmp_path, shop.url, scenario_text=broken)
    target = pending_refund(shop)
    result = probe(ws, "--item", target)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in result.stdout.splitlines() if "│" in ln}
    assert "#nowhere" in rows["refund_fee"] and "找不到该元素" in rows["refund_fee"]
    assert "不是金额" in rows["payment"]
    assert "✗" not in rows["reason"]
    assert f"refund page {target}" in result.stdout
    assert "2 problem(s)" in result.stderr


def test_a_page_named_by_url_and_a_list_that_matches_nothing(shop: Sandbox, tmp_path: Path) -> None:
    text = SKINS["demo-shop-2"].read_text("utf-8")
    ws = write_workspace(tmp_path / "url", shop.url, scenario_text=text)
    target = pending_refund(shop)
    result = probe(ws, "--url", f"{shop.url}v2/aftersale/detail?id={target}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert target in result.stdout and "list rows" not in result.stdout
    ws = write_workspace(
        tmp_path / "rows", shop.url, scenario_text=text.replace('row = ".as-card"', 'row = ".x"')
    )
    result = probe(ws)
    assert result.returncode == 1
    assert "list.row '.x' matched nothing" in result.stdout


@pytest.mark.parametrize("skin", SKINS)
def test_the_probe_shows_the_label_beside_each_value(
    shop: Sandbox, tmp_path: Path, skin: str
) -> None:
    """A good scenario: each anchored field with its label. A selector one row off: the label
    found, ≠ the one expected, and the field unreadable (exit 1), where before the value of
    the neighbouring row (无) read as a plain "no"."""
    text = SKINS[skin].read_text("utf-8")
    ws = write_workspace(tmp_path / "good", shop.url, scenario_text=text)
    target = pending_refund(shop)
    result = probe(ws, "--item", target)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in result.stdout.splitlines() if "│" in ln}
    label = "平台介入" if skin == "demo-shop" else "平台客服"
    assert label in rows["intervention"] and "≠" not in rows["intervention"]
    gift = "[data-field=has_gift]" if skin == "demo-shop" else ".kv:has(.kv-gift) .v"
    line = next(ln for ln in text.splitlines() if ln.startswith("intervention = "))
    slipped = text.replace(line, re.sub(r'selector = "[^"]*"', f'selector = "{gift}"', line))
    ws = write_workspace(tmp_path / "slipped", shop.url, scenario_text=slipped)
    result = probe(ws, "--item", target)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in result.stdout.splitlines() if "│" in ln}
    assert f"赠品 ≠ {label}" in rows["intervention"], rows["intervention"]
    assert "✗" in rows["intervention"]


def test_config_check_live_reads_a_live_item(shop: Sandbox, tmp_path: Path) -> None:
    ws = write_workspace(tmp_path, shop.url, scenario_text=SKINS["demo-shop-2"].read_text("utf-8"))
    result = subprocess.run(
        robots_cmd("config", "check", "--live", "--target", "sandbox", "-w", str(ws)),
        capture_output=True,
        text=True,
        env={**robot_env(), "COLUMNS": "250"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok  sandbox" in result.stderr and "every field" in result.stderr
    assert "refund page RF" in result.stdout and "平台客服" in result.stdout
    refused = subprocess.run(
        robots_cmd("config", "check", "--live", "-w", str(ws)),
        capture_output=True,
        text=True,
        env=robot_env(),
        timeout=60,
    )
    assert refused.returncode == 2 and "--target" in refused.stderr.splitlines()[0]
