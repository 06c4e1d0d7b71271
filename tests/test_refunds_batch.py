"""批量同意: the refunds robot with the scenario's batch approval declared, against the
sandbox's list checkboxes and batch button (real Chromium, real shop, real ledger)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT, SCENARIO, Workspace, approvals, expected_approvals, write_workspace
from report_checks import values

sys.path.insert(0, str(ROOT / "bench"))
from common import uncommented

from robots.errors import ConfigError
from robots.refunds.scenario import load_refund_scenario

pytestmark = pytest.mark.browser

BATCHED = uncommented(SCENARIO.read_text(encoding="utf-8"), "batch_approve")


def batched_workspace(tmp_path: Path, ws: Workspace, text: str = BATCHED) -> Workspace:
    return Workspace(
        write_workspace(tmp_path / "batched", ws.sandbox.url, scenario_text=text), ws.sandbox
    )


def batch_of(row: object) -> int | None:
    return json.loads(row["details"] or "{}").get("batch")  # type: ignore[index]


@pytest.mark.refunds(150)
def test_batch_approval_decides_as_one_by_one_and_approves_each_once(
    tmp_path: Path, workspace: Workspace
) -> None:
    ws = batched_workspace(tmp_path, workspace)
    truth = ws.sandbox.truth()
    result = ws.run()
    approved = approvals(ws)
    assert max(approved.values()) == 1, "a refund was approved twice"
    assert set(approved) == expected_approvals(ws)
    for row in ws.sandbox.audit():
        t = truth[row["refund_id"]]
        assert (row["action"], row["amount"], row["actor"]) == (t["action"], t["amount"], "robot")
    rows = {r["item_key"].split("@")[0]: r for r in ws.ledger_rows()}
    in_batch = {rid for rid, r in rows.items() if batch_of(r) is not None}
    refund_only = {rid for rid in approved if truth[rid]["action"] == "agree_refund"}
    # every refund-only approval went in a batch (nothing failed here); the others one by one
    assert in_batch == refund_only and len({batch_of(rows[r]) for r in in_batch}) >= 2
    for rid in in_batch:
        assert rows[rid]["state"] == "done" and rows[rid]["amount_cents"] > 0
    assert f"{len(in_batch)} in batches" in result.stderr
    # the workbook shows them like any approval
    wb = openpyxl.load_workbook(ws.reports()[-1])
    assert {r["退款编号"] for r in values(wb["已同意"])} == set(approved)
    # a second run finds nothing new
    ws.run()
    assert approvals(ws) == approved


@pytest.mark.refunds(80)
def test_a_refund_changed_after_it_was_read_is_not_ticked_and_is_decided_again(
    tmp_path: Path, workspace: Workspace
) -> None:
    ws = batched_workspace(tmp_path, workspace)
    truth = ws.sandbox.truth()
    target = min(rid for rid, t in truth.items() if t["action"] == "agree_refund")
    # the buyer lowers the amount right after the robot read the refund's page
    ws.sandbox.control("change-after-render", refund_id=target, refund_fee="1.00")
    ws.run()
    assert target not in approvals(ws)
    [row] = [r for r in ws.ledger_rows() if r["item_key"].startswith(target)]
    # re-read on its own page: the new amount is a partial refund, for a person
    assert (row["state"], row["reason_code"]) == ("business_exception", "PARTIAL_REFUND")
    assert set(approvals(ws)) == expected_approvals(ws) - {target}


@pytest.mark.refunds(80)
@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_a_batch_whose_answer_is_lost_is_settled_by_reading_never_sent_again(
    tmp_path: Path, workspace: Workspace, fault: str
) -> None:
    """The shop applies the first batch, then the connection drops before the answer (the
    browser may re-send it: the shop then refuses each as changed, and the rows show them
    approved) or the answer comes only after the robot gave up waiting (each refund of it
    is then read on its own page): either way each is booked as the robot's, its money
    counted against the cap, nothing is approved twice and the cap holds."""
    cap = 2500
    text = BATCHED.replace("daily_auto_total = 20000", f"daily_auto_total = {cap}")
    ws = batched_workspace(tmp_path, workspace, text)
    lost = {"drop": True} if fault == "drop" else {"status": 0, "delay_s": 25, "after": True}
    ws.sandbox.control("faults", path_prefix="/refunds/batch-approve", count=1, **lost)
    result = ws.run(check=False)
    assert result.returncode in (0, 1), result.stderr
    approved = approvals(ws)
    assert approved and max(approved.values()) == 1, "a refund was approved twice"
    audit = ws.sandbox.audit()
    automatic = [r for r in audit if r["action"] != "agree_return"]
    assert 0 < sum(float(r["amount"]) for r in automatic) <= cap
    rows = {r["item_key"].split("@")[0]: r for r in ws.ledger_rows()}
    truth = ws.sandbox.truth()
    for rid in approved:  # each approval booked as the robot's, with its money
        assert rows[rid]["state"] == "done", (rid, rows[rid]["state"])
        if truth[rid]["action"] != "agree_return":
            assert rows[rid]["amount_cents"] == round(float(truth[rid]["amount"]) * 100), rid
    ledger_money = sum(r["amount_cents"] for r in ws.ledger_rows() if r["state"] == "done")
    assert ledger_money == round(sum(float(r["amount"]) for r in automatic) * 100)
    if fault == "stall":
        log = next((ws.root / "logs").glob("*/run.log")).read_text(encoding="utf-8")
        assert "a batch of" in log and "failed" in log and "worked on its own" in log


def test_batch_approval_needs_versions_in_the_list_rows(tmp_path: Path) -> None:
    text = BATCHED.replace('version = { selector = ":scope", attribute = "data-version" }\n', "", 1)
    file = tmp_path / "refunds.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_refund_scenario(file)
    assert "batch_approve needs list.fields.version" in str(caught.value)
