"""The refunds policy as a flow (scenarios/demo-shop/flows/refunds-as-flow.toml): run beside
the built-in refunds robot on two copies of one 300-refund shop, it decides every refund as
the robot does — approve with the same action, or a person with the same headline reason —
and each shop's audit log shows the same approvals, once each."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    SCENARIO,
    Sandbox,
    Workspace,
    one_target_workspace,
    reaped,
    robot_env,
    robots_cmd,
    serve_sandbox,
    start_sandbox,
    stop_sandbox,
    write_workspace,
)
from openpyxl import load_workbook

FLOW = ROOT / "scenarios" / "demo-shop" / "flows" / "refunds-as-flow.toml"
NAME = FLOW.stem


def flow_workspace(root: Path, url: str, *, retry: bool = False) -> Path:
    """The flow's workspace, its day's cap lifted (as the robot's is in the comparison)."""
    return one_target_workspace(
        root,
        url,
        FLOW,
        robot="flow",
        target=NAME,
        edits=(("daily_cap = 20000", "daily_cap = 1000000"),),
        retry=retry,
    )


def answers(ledger: Path, robot: str, prefix: str = "") -> dict[str, tuple[str, str]]:
    """Each refund's decision as the ledger keeps it: ("approve", action) or ("person", the
    headline reason code); anything else by its state. (The robot's keys carry the status
    the refund was listed under: ``RF…@WAIT_SELLER_AGREE``.)"""
    conn = sqlite3.connect(ledger)
    try:
        rows = conn.execute(
            "SELECT item_key, state, action, reason_code FROM work_items WHERE robot = ?",
            (robot,),
        ).fetchall()
    finally:
        conn.close()
    out = {}
    for key, state, action, code in rows:
        if not key.startswith(prefix):
            continue
        refund = key[len(prefix) :].split("@")[0]
        if state == "done":
            out[refund] = ("approve", action)
        elif state == "business_exception":
            out[refund] = ("person", code)
        else:
            out[refund] = (state, code)
    return out


def approvals(sandbox: Sandbox) -> Counter[str]:
    return Counter(r["refund_id"] for r in sandbox.audit())


@pytest.mark.browser
def test_the_refunds_flow_decides_every_refund_as_the_refunds_robot(tmp_path: Path) -> None:
    shop = start_sandbox(tmp_path / "shop-robot", refunds=300)
    copy = None
    try:
        shutil.copytree(shop.data, tmp_path / "shop-flow")  # the same shop, before either acts
        copy = serve_sandbox(tmp_path / "shop-flow")

        # the day's cap is lifted on both: which refunds meet it depends on the order pages
        # finish in, not on the policy compared here
        policy = SCENARIO.read_text(encoding="utf-8")
        assert "daily_auto_total = 20000" in policy
        policy = policy.replace("daily_auto_total = 20000", "daily_auto_total = 1000000")
        robot = Workspace(write_workspace(tmp_path / "robot", shop.url, scenario_text=policy), shop)
        robot.run()
        root = flow_workspace(tmp_path / "flow", copy.url)
        flow = subprocess.run(
            robots_cmd("run", "flow", NAME, "-w", str(root)),
            capture_output=True,
            text=True,
            timeout=600,
            env=robot_env(),
        )
        assert flow.returncode == 0, flow.stderr

        by_robot = answers(robot.ledger, "refunds")
        by_flow = answers(root / "state" / "ledger.sqlite3", "flow", f"{NAME}:")
        assert len(by_robot) > 250  # the pending refunds of a 300-refund shop
        mismatches = [
            f"{rid}: refunds robot {by_robot.get(rid)} · flow {by_flow.get(rid)}"
            for rid in sorted(by_robot.keys() | by_flow.keys())
            if by_robot.get(rid) != by_flow.get(rid)
        ]
        assert not mismatches, f"{len(mismatches)} differ:\n" + "\n".join(mismatches)
        decided = Counter(kind for kind, _ in by_flow.values())
        assert decided["approve"] > 150 and decided["person"] > 20, decided  # both kinds met

        sheet = load_workbook(root / "reports" / "open-exceptions.xlsx")["流程待处理"]
        header, *rows = list(sheet.iter_rows(values_only=True))  # each hand-over, its money
        queued = {str(r[0]).split(":", 1)[1]: dict(zip(header, r, strict=True)) for r in rows}
        assert set(queued) == {r for r, (kind, _) in by_flow.items() if kind == "person"}
        fees = {rid: fee for rid, (_s, _v, fee) in copy.statuses().items()}
        for rid, r in queued.items():
            assert r["金额 money"] == pytest.approx(float(fees[rid])), (rid, r)
            assert "退款金额" in str(r["读到的内容 values"]), r

        robot_approved, flow_approved = approvals(shop), approvals(copy)
        assert flow_approved == robot_approved
        assert set(flow_approved.values()) == {1}  # each once
        assert set(flow_approved) == {r for r, (k, _) in by_flow.items() if k == "approve"}
    finally:
        stop_sandbox(shop)
        if copy is not None:
            stop_sandbox(copy)


@pytest.mark.browser
@pytest.mark.refunds(80)
def test_the_refunds_flow_approves_each_refund_once_through_a_kill_and_a_lost_answer(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """Killed (SIGKILL, browsers and all) well into its approvals, then run again; one
    approval's answer dropped after the shop took it: every refund the ground truth approves
    is approved exactly once, the lost one counted as the flow's own."""
    truth = sandbox.truth()
    eligible = {rid for rid, t in truth.items() if t["expected"] == "approve"}
    lost = max(rid for rid in eligible if truth[rid]["action"] == "agree_refund")
    sandbox.control("faults", path_prefix=f"/refunds/{lost}/approve", count=1, drop=True)
    root = flow_workspace(tmp_path / "flow", sandbox.url, retry=True)
    command = robots_cmd("run", "flow", NAME, "-w", str(root))
    first = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=robot_env(),
        start_new_session=True,
    )
    with reaped(first):
        deadline = time.monotonic() + 300
        while len(sandbox.audit()) < 15:  # well into its approvals
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(60)
    assert len(sandbox.audit()) < len(eligible)  # killed with approvals left to do
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=robot_env())
    assert again.returncode == 0, again.stderr
    approved = Counter(r["refund_id"] for r in sandbox.audit())
    assert approved == Counter(dict.fromkeys(eligible, 1)), {
        r: n for r, n in approved.items() if n != 1 or r not in eligible
    }
    answered = answers(root / "state" / "ledger.sqlite3", "flow", f"{NAME}:")
    assert answered[lost] == ("approve", "agree_refund")  # its press, proved landed: ours
    pressed = [
        p for _, m, p in sandbox.requests() if m == "POST" and p.startswith(f"/refunds/{lost}/")
    ]
    assert pressed, "the lost answer's approval was never pressed"
    assert {r for r, (kind, _) in answered.items() if kind == "approve"} == eligible
    assert not {r for r, (kind, _) in answered.items() if kind not in ("approve", "person")}
