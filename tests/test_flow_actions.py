"""A flow that acts (直播挂链, scenarios/demo-shop/flows/live-listing.toml): each SKU of an ops
person's list added to the live session exactly once, verified on its card, through a dry
run, a SIGKILL mid-run, an answer lost after the shop took the press, a SKU taken down
between the decision and the press, and a session that fills up."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox, one_target_workspace, reaped, robot_env, robots_cmd
from openpyxl import load_workbook

from sandbox.live import SESSION, load_live_truth

pytestmark = [pytest.mark.browser, pytest.mark.refunds(5)]
FLOW = ROOT / "scenarios" / "demo-shop" / "flows" / "live-listing.toml"
UNKNOWN = "LV-9999"


def workspace(root: Path, url: str, skus: list[str]) -> Path:
    one_target_workspace(root, url, FLOW, robot="flow", target="live", retry=True)
    lines = ["直播间,商品编码,讲解序号", *(f"{SESSION},{sku},{slot_of(sku)}" for sku in skus)]
    (root / "live-skus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def slot_of(sku: str) -> int:
    """The 讲解序号 the test's list gives a SKU (LV-0007: 8)."""
    return int(sku.rsplit("-", 1)[1]) + 1 if sku[-1].isdigit() else 1


def slots(sandbox: Sandbox) -> dict[str, int | None]:
    """The 讲解序号 the console stored with each SKU the robot added."""
    with sandbox.db() as conn:
        return dict(
            conn.execute("SELECT sku, slot FROM live_adds WHERE actor = 'robot'").fetchall()
        )


def command(root: Path, *args: str) -> list[str]:
    return robots_cmd("run", "flow", "live", "-w", str(root), *args)


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(root, *args), capture_output=True, text=True, timeout=600, env=robot_env()
    )


def adds(sandbox: Sandbox) -> Counter[str]:
    """How many times the robot added each SKU to the session."""
    with sandbox.db() as conn:
        return Counter(
            r[0] for r in conn.execute("SELECT sku FROM live_adds WHERE actor = 'robot'")
        )


def posts(sandbox: Sandbox) -> dict[str, list[str]]:
    """Every 确认添加 the console received, by SKU: its answers in order."""
    with sandbox.db() as conn:
        found: dict[str, list[str]] = {}
        for sku, answer in conn.execute("SELECT sku, answer FROM live_posts ORDER BY post_id"):
            found.setdefault(sku, []).append(answer)
        return found


def pressed_once(sandbox: Sandbox, skus: set[str]) -> None:
    assert posts(sandbox) == {s: ["flash=已添加到直播间"] for s in skus}


def expected(sandbox: Sandbox, skus: list[str]) -> tuple[set[str], dict[str, str]]:
    """What a careful person does with the list: the SKUs to add, and those to hand over."""
    truth = load_live_truth(sandbox.data)
    add = {s for s in skus if s in truth and truth[s]["state"] == "on" and not truth[s]["listed"]}
    handed = {s: "OFF_SHELF" for s in skus if s in truth and truth[s]["state"] == "off"}
    handed.update({s: "UNKNOWN_SKU" for s in skus if s not in truth})
    return add, handed


def outcomes(root: Path) -> dict[str, str]:
    """What the newest run's 已完成 sheet says became of each SKU (已操作 act, 跳过 skip…)."""
    report = sorted((root / "reports").glob("flow-*.xlsx"))[-1]
    header, *rows = list(load_workbook(report)["已完成"].iter_rows(values_only=True))
    return {
        str(r[0]).split("/")[-1]: str(dict(zip(header, r, strict=True))["结果 outcome"])
        for r in rows
    }


def handed_over(root: Path) -> dict[str, str]:
    report = sorted((root / "reports").glob("flow-*.xlsx"))[-1]
    header, *rows = list(load_workbook(report)["待人工处理"].iter_rows(values_only=True))
    return {
        str(r[0]).split("/")[-1]: str(dict(zip(header, r, strict=True))["原因代码 code"])
        for r in rows
    }


@pytest.mark.live(40, 50)
def test_each_sku_is_added_once_and_the_rest_reach_a_person(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    skus = [f"LV-{i:04d}" for i in range(30)] + [UNKNOWN]
    add, handed = expected(sandbox, skus)
    assert add and handed
    root = workspace(tmp_path / "ws", sandbox.url, skus)

    dry = run(root, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert adds(sandbox) == Counter(), "a dry run pressed"
    assert f"dry run done: {len(add)} acted" in dry.stderr, dry.stderr

    first = run(root)
    assert first.returncode == 0, first.stderr
    assert adds(sandbox) == Counter(dict.fromkeys(add, 1))
    pressed_once(sandbox, add)  # nothing else pressed, nothing pressed twice
    assert slots(sandbox) == {s: slot_of(s) for s in add}  # typed from the list, each its own
    assert handed_over(root) == handed
    queue = load_workbook(root / "reports" / "open-exceptions.xlsx")["流程待处理"]
    assert {str(r[0]).split("/")[-1] for r in list(queue.iter_rows(values_only=True))[1:]} == set(
        handed
    )
    again = run(root)
    assert again.returncode == 0, again.stderr
    assert "0 acted" in again.stderr and adds(sandbox) == Counter(dict.fromkeys(add, 1))


@pytest.mark.live(80, 100)
def test_a_killed_run_then_another_adds_each_sku_once(tmp_path: Path, sandbox: Sandbox) -> None:
    skus = [f"LV-{i:04d}" for i in range(80)]
    add, _ = expected(sandbox, skus)
    root = workspace(tmp_path / "ws", sandbox.url, skus)
    proc = subprocess.Popen(
        command(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=robot_env()
    )
    with reaped(proc):
        deadline = time.monotonic() + 300
        while sum(adds(sandbox).values()) < 10:  # kill it well into the presses
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    assert 10 <= sum(adds(sandbox).values()) < len(add)
    resumed = run(root)
    assert resumed.returncode == 0, resumed.stderr
    assert adds(sandbox) == Counter(dict.fromkeys(add, 1))
    pressed_once(sandbox, add)  # the killed run's last press settled by reading


@pytest.mark.live(20, 50)
@pytest.mark.parametrize("lost", ["stalled", "dropped"])
def test_an_answer_lost_after_the_press_is_settled_by_reading_not_pressed_again(
    tmp_path: Path, sandbox: Sandbox, lost: str
) -> None:
    """The console adds the SKU, then its answer stalls past the browser's timeout, or its
    connection drops. The robot reads the card, finds the SKU in the session, and counts it
    as its own. (A dropped connection makes Chromium itself send the form once more, at
    once: the console refuses that copy, the SKU being in the session already.)"""
    skus = [f"LV-{i:04d}" for i in range(20)]
    add, _ = expected(sandbox, skus)
    target = min(add)
    fault = {"delay_s": 12, "after": True, "status": 0} if lost == "stalled" else {"drop": True}
    sandbox.control("faults", path_prefix=f"/live/{SESSION}/sku/{target}/add", count=1, **fault)
    root = workspace(tmp_path / "ws", sandbox.url, skus)
    result = run(root)
    assert result.returncode == 0, result.stderr
    assert adds(sandbox) == Counter(dict.fromkeys(add, 1))
    assert target not in handed_over(root)
    assert outcomes(root)[target] == "已操作 act"  # its press, proved landed: ours
    sent = posts(sandbox)
    if lost == "stalled":
        pressed_once(sandbox, add)
    else:
        assert sent[target][0] == "flash=已添加到直播间"
        assert all(a == "error=该商品已在直播间" for a in sent[target][1:]), sent[target]
        assert len(sent[target]) <= 2  # the browser's one copy at most; the robot: never
        assert {s: v for s, v in sent.items() if s != target} == {
            s: ["flash=已添加到直播间"] for s in add - {target}
        }


@pytest.mark.live(20, 50)
def test_a_sku_taken_down_between_the_decision_and_the_press_is_not_pressed(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    skus = [f"LV-{i:04d}" for i in range(20)]
    add, _ = expected(sandbox, skus)
    target = min(add)
    sandbox.control("live-off-after", sku=target, renders=1)  # down once its card was read
    root = workspace(tmp_path / "ws", sandbox.url, skus)
    result = run(root)
    assert result.returncode == 0, result.stderr
    assert target not in adds(sandbox) and target not in posts(sandbox)  # never pressed
    pressed_once(sandbox, add - {target})
    assert handed_over(root)[target] == "GUARD_CHANGED"


@pytest.mark.live(30, 8)
def test_a_full_session_sends_the_rest_to_a_person(tmp_path: Path, sandbox: Sandbox) -> None:
    skus = [f"LV-{i:04d}" for i in range(30)]
    add, handed = expected(sandbox, skus)
    truth = load_live_truth(sandbox.data)
    room = 8 - sum(t["listed"] for t in truth.values())
    assert 0 < room < len(add)
    root = workspace(tmp_path / "ws", sandbox.url, skus)
    result = run(root)
    assert result.returncode == 0, result.stderr
    added = adds(sandbox)
    assert max(added.values()) == 1 and len(added) == room and set(added) <= add
    for answers in posts(sandbox).values():  # a press the other lane beat: refused, once
        assert len(answers) == 1 and answers[0] in ("flash=已添加到直播间", "error=直播间商品已满")
    over = handed_over(root)
    assert {s for s, code in over.items() if code == "SESSION_FULL"} == add - set(added)
    assert {s: c for s, c in over.items() if c != "SESSION_FULL"} == handed


@pytest.mark.live(30, 50)
def test_an_action_that_moves_money_stops_at_the_daily_cap(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """With money = "price" and a daily cap, the adds stop before the day's sum passes it;
    the rest go to a person as DAILY_CAP_REACHED, none pressed."""
    skus = [f"LV-{i:04d}" for i in range(30)]
    add, _ = expected(sandbox, skus)
    truth = load_live_truth(sandbox.data)
    cap = Decimal("300")
    assert sum(Decimal(truth[s]["price"]) for s in add) > cap  # the cap binds
    root = workspace(tmp_path / "ws", sandbox.url, skus)
    flow = root / "live-listing.toml"
    text = flow.read_text(encoding="utf-8")
    flow.write_text(
        text.replace(
            'landed = "page.in_session"',
            f'landed = "page.in_session"\nmoney = "price"\ndaily_cap = {cap}',
        ),
        encoding="utf-8",
    )
    result = run(root)
    assert result.returncode == 0, result.stderr
    added = adds(sandbox)
    assert added and max(added.values()) == 1
    assert sum(Decimal(truth[s]["price"]) for s in added) <= cap
    capped = {s for s, code in handed_over(root).items() if code == "DAILY_CAP_REACHED"}
    assert capped and capped == add - set(added)
    assert not capped & set(posts(sandbox))  # never pressed


@pytest.mark.live(20, 50)
def test_money_that_cannot_be_read_is_never_pressed_past_the_cap(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """The money field reads nothing (its selector points nowhere): no add is made on an
    unknown amount; each goes to a person as MONEY_UNREAD."""
    skus = [f"LV-{i:04d}" for i in range(20)]
    add, _ = expected(sandbox, skus)
    root = workspace(tmp_path / "ws", sandbox.url, skus)
    flow = root / "live-listing.toml"
    text = flow.read_text(encoding="utf-8").replace('selector = "dd.price"', 'selector = "dd.nope"')
    text = text.replace(
        'landed = "page.in_session"', 'landed = "page.in_session"\nmoney = "price"\ndaily_cap = 300'
    )
    flow.write_text(text, encoding="utf-8")
    result = run(root)
    assert result.returncode == 0, result.stderr
    assert posts(sandbox) == {} and adds(sandbox) == Counter()
    assert {s for s, c in handed_over(root).items() if c == "MONEY_UNREAD"} == add


@pytest.mark.live(10, 50)
@pytest.mark.shipments(10)
def test_each_flow_has_its_own_run_lock(tmp_path: Path, sandbox: Sandbox) -> None:
    """A flow running holds its own lock: the same flow started again is refused with one
    line naming it, another flow in the same workspace runs meanwhile."""
    from robots.registry import load_workspace
    from robots.runtime.lock import robot_lock

    root = workspace(tmp_path / "ws", sandbox.url, ["LV-0000"])
    logistics = ROOT / "scenarios" / "demo-shop" / "flows" / "logistics.toml"
    (root / "logistics.toml").write_text(logistics.read_text(encoding="utf-8"), encoding="utf-8")
    with (root / "robots.toml").open("a", encoding="utf-8") as toml:
        toml.write(
            '\n[[targets]]\nname = "logistics"\nrobot = "flow"\nscenario = "logistics.toml"\n'
            f'base_url = "{sandbox.url}"\n'
        )
    with robot_lock(load_workspace(root).lock_dir, "flow-live-listing", holder="the test"):
        refused = run(root)  # 直播挂链 is "running"
        other = subprocess.run(
            robots_cmd("run", "flow", "logistics", "-w", str(root)),
            capture_output=True,
            text=True,
            timeout=600,
            env=robot_env(),
        )
    assert refused.returncode == 75, refused.stderr
    first = refused.stderr.strip().splitlines()[0]
    assert "flow-live-listing" in first and "the test" in first, first
    assert adds(sandbox) == Counter()
    assert other.returncode == 0, other.stderr
    assert "done:" in other.stderr and "0 system exceptions" in other.stderr, other.stderr
