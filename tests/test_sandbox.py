"""The sandbox back office over plain HTTP: login, CSRF, pagination, the version guard, seeding."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from conftest import PASSWORD, USERNAME, Sandbox

from sandbox.seed import BRANCHES, generate


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@contextmanager
def logged_in(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.url, timeout=10) as client:
        yield login(client)


def login(client: httpx.Client) -> httpx.Client:
    token = csrf(client.get("/login").text)
    r = client.post(
        "/login",
        data={"csrf_token": token, "username": USERNAME, "password": PASSWORD, "next": "/refunds"},
    )
    assert r.status_code == 303
    return client


def approve_form(client: httpx.Client, refund_id: str) -> dict[str, str]:
    html = client.get(f"/refunds/{refund_id}").text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    assert {"csrf_token", "action", "version", "refund_fee"} <= fields.keys()
    return fields


@pytest.mark.refunds(60)
def test_pages_need_a_login_and_a_right_password(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        r = client.get("/refunds")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        token = csrf(client.get("/login").text)
        r = client.post(
            "/login",
            data={
                "csrf_token": token,
                "username": USERNAME,
                "password": "wrong",
                "next": "/refunds",
            },
        )
        assert r.status_code == 401 and "用户名或密码错误" in r.text


@pytest.mark.refunds(60)
def test_forms_without_the_csrf_token_are_refused(sandbox: Sandbox) -> None:
    with logged_in(sandbox) as client:
        rid = next(r for r, t in sandbox.truth().items() if t["action"] == "agree_refund")
        form = approve_form(client, rid)
        form["csrf_token"] = "forged"
        r = client.post(f"/refunds/{rid}/approve", data=form)
        assert r.status_code == 403
        assert sandbox.audit() == []


@pytest.mark.refunds(60)
def test_list_filters_by_status_and_pages_by_20(sandbox: Sandbox) -> None:
    with logged_in(sandbox) as client:
        pending = [r for r, t in sandbox.truth().items() if t["status"] == "WAIT_SELLER_AGREE"]
        seen: list[str] = []
        page = 1
        while True:
            html = client.get(f"/refunds?status=WAIT_SELLER_AGREE&page={page}").text
            rows = re.findall(r'data-refund-id="(RF\d+)"', html)
            assert len(rows) <= 20
            seen += rows
            if 'rel="next"' not in html:
                break
            assert len(rows) == 20
            page += 1
        assert sorted(seen) == sorted(pending)
        assert page == -(-len(pending) // 20)
        # 每页 50 条 keeps its size through the pager; a size not offered is the default 20
        html = client.get("/refunds?status=WAIT_SELLER_AGREE&per_page=50").text
        assert len(seen) > 20
        assert re.findall(r'data-refund-id="(RF\d+)"', html) == seen[:50]
        if len(pending) > 50:
            assert "per_page=50&amp;page=2" in html
        html = client.get("/refunds?status=WAIT_SELLER_AGREE&per_page=7").text
        assert re.findall(r'data-refund-id="(RF\d+)"', html) == seen[:20]


@pytest.mark.refunds(60)
def test_approval_is_audited_and_version_guarded(sandbox: Sandbox) -> None:
    with logged_in(sandbox) as client:
        rid = next(r for r, t in sandbox.truth().items() if t["action"] == "agree_refund")
        form = approve_form(client, rid)
        r = client.post(f"/refunds/{rid}/approve", data=form)
        assert r.status_code == 303
        [row] = sandbox.audit()
        assert (row["actor"], row["refund_id"], row["action"], row["amount"]) == (
            USERNAME,
            rid,
            "agree_refund",
            form["refund_fee"],
        )
        assert sandbox.statuses()[rid][0] == "SUCCESS"
        # the same form again: the version moved on, so it fails visibly and pays nothing
        r = client.post(f"/refunds/{rid}/approve", data=form)
        assert r.status_code == 409 and 'id="action-error"' in r.text
        assert len(sandbox.audit()) == 1


@pytest.mark.refunds(60)
def test_amount_changed_after_render_is_refused(sandbox: Sandbox) -> None:
    with logged_in(sandbox) as client:
        rid = next(r for r, t in sandbox.truth().items() if t["action"] == "agree_refund")
        sandbox.control("change-after-render", refund_id=rid, refund_fee="2.00")
        form = approve_form(client, rid)
        r = client.post(f"/refunds/{rid}/approve", data=form)
        assert r.status_code == 409
        assert sandbox.audit() == []


def test_seed_is_deterministic_and_covers_every_branch() -> None:
    now = datetime(2026, 11, 23, 9, 0)
    a = [row for table, row in generate(5, 3000, now) if table == "truth"]
    b = [row for table, row in generate(5, 3000, now) if table == "truth"]
    assert a == b and len(a) == 3000
    counts: dict[str, int] = {}
    for row in a:
        counts[row["branch"]] = counts.get(row["branch"], 0) + 1
    assert set(counts) == {branch.name for branch in BRANCHES}
    total_weight = sum(branch.weight for branch in BRANCHES)
    for branch in BRANCHES:  # realistic proportions: within a few points of the weights
        share = counts[branch.name] / len(a)
        assert abs(share - branch.weight / total_weight) < 0.03, branch.name
    assert sum(1 for r in a if r["urgent"]) > 0


def test_seed_builds_a_large_shop(tmp_path: Path) -> None:
    from sandbox.seed import seed_shop

    counts = seed_shop(tmp_path, refunds=20_000, seed=3, username="u", password="p" * 8)
    assert sum(counts.values()) == 20_000


def test_the_seed_command_builds_a_shop_with_its_truth_files(tmp_path: Path) -> None:
    """`robots sandbox seed` (what `make demo` runs; the tests' shops are seeded in-process)."""
    import json
    import os
    import subprocess

    from conftest import robots_cmd

    data = tmp_path / "shop"
    done = subprocess.run(
        robots_cmd(
            "sandbox",
            "seed",
            "--data",
            str(data),
            "--refunds",
            "30",
            "--products",
            "4",
            "--parcels",
            "6",
            "--orders",
            "24",
            "--shipments",
            "3",
            "--live-products",
            "5",
            "--conversations",
            "7",
            "--now",
            "2026-11-23 09:00:00",
        ),
        env={**os.environ, "SANDBOX_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "seeded 30 refunds, 4 products, 6 parcels, 3 shipments, 5 live SKUs and 7 conversations"
    )
    with (data / "ground_truth.jsonl").open(encoding="utf-8") as f:
        assert len([json.loads(line) for line in f]) == 30
    truths = (
        "products_truth.jsonl",
        "parcels_truth.jsonl",
        "shipments_truth.jsonl",
        "service_truth.jsonl",
    )
    for name in (*truths, "live_truth.jsonl"):
        assert (data / name).read_text(encoding="utf-8").count("\n") >= 3, name
    with sqlite3.connect(data / "shop.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1


@pytest.mark.refunds(5)
@pytest.mark.parcels(40)
def test_linking_a_parcel_to_a_return_request_records_the_warehouse_receipt(
    sandbox: Sandbox,
) -> None:
    """入库: the terminal's link writes a receipt under the request's return waybill (what the
    refund page shows); a link to an order (a refused delivery) writes none."""
    import json

    from sandbox.terminal import link_parcel

    truth = [
        json.loads(line)
        for line in (sandbox.data / "parcels_truth.jsonl").read_text("utf-8").splitlines()
    ]
    typo = next(t for t in truth if t["kind"] == "waybill_typo")
    refused = next(t for t in truth if t["kind"] == "refused_delivery")
    with sandbox.db() as conn:
        before = conn.execute("SELECT COUNT(*) FROM warehouse_receipts").fetchone()[0]
        sid, sku = conn.execute(
            "SELECT return_sid, sku FROM refunds WHERE refund_id = ?", (typo["target"],)
        ).fetchone()
        parcel_waybill = conn.execute(
            "SELECT waybill FROM parcels WHERE parcel_id = ?", (typo["parcel_id"],)
        ).fetchone()[0]
    assert parcel_waybill != sid  # the parcel came back under a mistyped waybill
    conn = sqlite3.connect(sandbox.data / "shop.sqlite3", isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        assert link_parcel(conn, typo["parcel_id"], typo["target"], "tester") == ""
        assert link_parcel(conn, refused["parcel_id"], refused["target"], "tester") == ""
        rows = conn.execute(
            "SELECT waybill, sku, quantity FROM warehouse_receipts ORDER BY receipt_id"
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == before + 1
    got = tuple(rows[-1])
    assert got[0] == sid and got[1] == sku  # under the request's waybill, its SKU
    with logged_in(sandbox) as client:
        page = client.get(f"/refunds/{typo['target']}").text
    assert f'<span data-field="receipt_waybill">{sid}</span>' in page and "已入库" in page
