"""`robots flow record`: a person's clicks in a visible Chromium (on Xvfb) written as a flow.

The end-to-end test drives the recorder's own browser through Chrome's remote debugging, as
a person would with the mouse: log in (the recorder does), the 商品管理 list, a row opened,
Alt+click on the values to read, 下架, Alt+click on what shows it took, 完成录制. The flow
written then passes `robots config check` and runs against the sandbox: every other SKU of
the list taken off the shelf exactly once, the one delisted while recording left alone.
The other tests hand the writer recorded events directly (no browser)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox, one_target_workspace, reaped, robot_env, robots_cmd

from robots.errors import ConfigError
from robots.flow.recorder import Recorded, flow_from_recording
from robots.flow.scenario import FlowFile

SCENARIO = ROOT / "scenarios" / "demo-shop" / "refunds.toml"
FOUND = {
    "row": "tr.sku-row",
    "rows": 3,
    "data": ["data-sku"],
    "headers": ["SKU编码", "商品", "规格", "售价", "状态"],
    "labelSelector": "th",
    "next": "",
}
ROW = {"cells": ["A-1", "围巾", "灰色", "¥89.00", "在售"], "data": {"data-sku": "A-1"}}
SHOP = '[shop]\nname = "s"\nbase_url = "http://127.0.0.1:9/"\ncredential = "demo-shop"'
LOGIN = '[login]\nlogged_in = "#current-user"'


def event(kind: str, selector: str, **more: object) -> dict[str, object]:
    return {"kind": kind, "selector": selector, "positional": False, "url": "", "text": "", **more}


def recorded(*item_events: dict[str, object], secrets: tuple[str, ...] = ()) -> Recorded:
    opened = event(
        "click", "td > a", row=ROW, href="http://127.0.0.1:9/admin/skus/A-1", url="/admin/skus"
    )
    url = "http://127.0.0.1:9/admin/skus/A-1"
    return Recorded(
        list_url="http://127.0.0.1:9/admin/skus?q=A",
        found=FOUND,
        events=[opened, *({**e, "url": url} for e in item_events)],
        secrets=secrets,
    )


def written(rec: Recorded, tmp_path: Path) -> FlowFile:
    from robots.flow.scenario import load

    out = tmp_path / "rec.toml"
    out.write_text(flow_from_recording(rec, title="下架", shop=SHOP, login=LOGIN), "utf-8")
    flow = load(out)
    assert flow.problems() == []
    return flow


def test_typed_values_of_the_item_become_its_fields_and_the_state_decides(
    tmp_path: Path,
) -> None:
    flow = written(
        recorded(
            event("point", "dd.price", text="¥89.00", label="售价", labelTag="dt"),
            event("point", "dd.state", text="在售", label="状态", labelTag="dt"),
            event("fill", "#note", value="A-1"),  # the row's own SKU: {sku}
            event("fill", "#reason", value="清仓 {2}"),  # braces kept as typed
            event("click", "#delist"),
            event("point", "dd.state", text="已下架", label="状态", labelTag="dt"),
            event("point", "p.flash.ok", text="商品已下架"),
        ),
        tmp_path,
    )
    assert flow.page is not None and flow.page.path == "/admin/skus/{sku}"
    assert flow.page_kinds["price"].type == "money" and flow.page.fields["price"].label == "售价"
    action = flow.actions["recorded"]
    assert [s.text for s in action.steps if s.fill] == ["{sku}", "清仓 {{2}}"]
    assert action.success == "p.flash.ok" and action.guard == ["price", "state"]
    assert action.landed == 'page.state == "已下架"'
    assert [(r.when, r.outcome) for r in flow.rules] == [
        ('page.state == "已下架"', "skip"),
        ('page.state == "在售"', "act"),
        ("true", "hand_over"),
    ]


@pytest.mark.parametrize(
    "typed",
    [
        {"value": "s3cret-pass"},  # the login's password, typed into a plain field
        {"value": "anything", "secret": True},  # a password field
    ],
)
def test_a_recorded_secret_is_never_written(tmp_path: Path, typed: dict[str, object]) -> None:
    rec = recorded(
        event("point", "dd.state", text="在售", label="状态", labelTag="dt"),
        event("fill", "#pay-password", **typed),
        event("click", "#delist"),
        event("point", "dd.state", text="已下架"),
        secrets=("robot", "s3cret-pass"),
    )
    with pytest.raises(ConfigError, match="never types a password") as caught:
        flow_from_recording(rec, title="t", shop=SHOP, login=LOGIN)
    assert "s3cret-pass" not in str(caught.value)


@pytest.mark.parametrize(
    ("events", "said"),
    [
        ([], "no value was pointed at"),
        (
            [event("point", "dd.state", text="在售"), event("click", "#delist")],
            "value that shows it took",
        ),
    ],
)
def test_a_recording_that_cannot_make_a_flow_says_what_to_do(
    events: list[dict[str, object]], said: str
) -> None:
    with pytest.raises(ConfigError, match=said):
        flow_from_recording(recorded(*events), title="t", shop=SHOP, login=LOGIN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def delists(sandbox: Sandbox) -> Counter[str]:
    with sandbox.db() as conn:
        return Counter(
            sku
            for (sku,) in conn.execute(
                "SELECT sku FROM merch_posts WHERE kind = 'state' AND answer LIKE 'flash=%'"
            )
        )


@pytest.mark.browser
@pytest.mark.refunds(5)
@pytest.mark.products(12)
def test_a_recorded_flow_runs_green_once_per_item(
    tmp_path: Path, sandbox: Sandbox, display: str
) -> None:
    from playwright.sync_api import sync_playwright

    root = one_target_workspace(
        tmp_path / "ws", sandbox.url, SCENARIO, robot="refunds", target="shop"
    )
    with sandbox.db() as conn:
        first = conn.execute("SELECT sku FROM skus ORDER BY rowid LIMIT 1").fetchone()[0]
        prefix = first.split("-")[0]
        listed = [
            s for (s,) in conn.execute("SELECT sku FROM skus WHERE sku LIKE ?", (f"{prefix}-%",))
        ]
    assert len(listed) >= 2
    port = free_port()
    env = {**robot_env(), "DISPLAY": display}
    cmd = robots_cmd(
        "flow", "record", f"/admin/skus?q={prefix}", "--target", "shop", "--flow", "rec",
        "--title", "商品下架", "--debug-port", str(port), "-w", str(root),
    )  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with reaped(proc), sync_playwright() as pw:
        deadline = time.monotonic() + 60
        while True:  # the recorder's Chromium, once it listens and shows the list
            assert proc.poll() is None, proc.communicate()
            try:
                browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
                pages = [p for c in browser.contexts for p in c.pages if "/admin/skus" in p.url]
                if pages:
                    break
                browser.close()
            except Exception:  # not listening yet
                pass
            assert time.monotonic() < deadline, "the recorder's browser never showed the list"
            time.sleep(0.3)
        page = pages[0]
        page.wait_for_selector("#robots-recorder-bar")
        opened = page.locator("tr.sku-row a").first
        sku = opened.inner_text()
        opened.click()
        page.wait_for_url(f"**/admin/skus/{sku}")
        page.wait_for_selector("#robots-recorder-bar")
        page.click("dd.price", modifiers=["Alt"])
        page.click("dd.state", modifiers=["Alt"])
        page.click("#delist")
        page.wait_for_selector(".flash.ok")
        page.wait_for_selector("#robots-recorder-bar")
        page.click("dd.state", modifiers=["Alt"])
        page.click(".flash.ok", modifiers=["Alt"])
        page.click("#robots-recorder-done")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    flow_file = root / "flows" / "rec.toml"
    text = flow_file.read_text(encoding="utf-8")
    assert 'path = "/admin/skus/{sku}"' in text and "#delist" in text
    assert delists(sandbox) == Counter({sku: 1})  # the person's own, while recording

    check = subprocess.run(
        robots_cmd("config", "check", "-w", str(root)),
        capture_output=True,
        text=True,
        env=robot_env(),
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = robots_cmd("run", "flow", "--scenario", str(flow_file), "-w", str(root))
    first_run = subprocess.run(run, capture_output=True, text=True, env=robot_env(), timeout=300)
    assert first_run.returncode == 0, first_run.stderr
    assert delists(sandbox) == Counter(dict.fromkeys(listed, 1))  # every SKU once, that one too
    assert f"done: {len(listed) - 1} acted" in first_run.stderr, first_run.stderr
    again = subprocess.run(run, capture_output=True, text=True, env=robot_env(), timeout=300)
    assert again.returncode == 0 and "done: 0 acted" in again.stderr, again.stderr
    assert delists(sandbox) == Counter(dict.fromkeys(listed, 1))
