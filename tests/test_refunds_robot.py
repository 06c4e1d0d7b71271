"""The refunds robot end to end: real Chromium, real sandbox server, real ledger and workbook."""

from __future__ import annotations

import io
import re
import signal
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import openpyxl
import pytest
from conftest import (
    PASSWORD,
    SCENARIO,
    SKINS,
    Workspace,
    approvals,
    assert_secrets_absent,
    expected_approvals,
    reaped,
    write_workspace,
)
from report_checks import assert_report_shape, records, summary_of, values

from robots.refunds.fields import FIELDS

pytestmark = pytest.mark.browser


def list_order(ws: Workspace) -> list[str]:
    """Refund ids in the order the robot lists them (the back office sorts by creation)."""
    with ws.sandbox.db() as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT refund_id FROM refunds WHERE status IN ('WAIT_SELLER_AGREE') "
                "ORDER BY created_at, refund_id"
            )
        ]


def refund_only_target(ws: Workspace) -> str:
    """A refund the robot should approve at once (refund-only, unshipped)."""
    return min(rid for rid, t in ws.sandbox.truth().items() if t["action"] == "agree_refund")


def stall_approval(ws: Workspace, refund_id: str, seconds: float) -> None:
    """The shop applies the approval, then waits ``seconds`` before answering."""
    ws.sandbox.control(
        "faults",
        path_prefix=f"/refunds/{refund_id}/approve",
        count=1,
        status=0,
        delay_s=seconds,
        after=True,
    )


def exceptions_sheet(report: Path) -> list[dict[str, Any]]:
    """The hand-over rows by header, with 主因 (the headline code) added."""
    rows = values(openpyxl.load_workbook(report)["待人工处理"])
    for r in rows:
        r["主因"] = str(r["原因代码"]).split(", ")[0]
    return rows


@pytest.mark.parametrize("workspace", SKINS, indirect=True)
def test_full_run_matches_ground_truth(workspace: Workspace) -> None:
    truth = workspace.sandbox.truth()
    assert len(truth) >= 200
    workspace.run()

    approved = approvals(workspace)
    assert approved, "nothing was approved"
    assert max(approved.values()) == 1, "a refund was approved twice"
    assert set(approved) == expected_approvals(workspace)
    for row in workspace.sandbox.audit():  # the right action, the right amount, by the robot
        t = truth[row["refund_id"]]
        assert (row["action"], row["amount"], row["actor"]) == (t["action"], t["amount"], "robot")

    [report] = workspace.reports()
    assert_report_shape(report)
    handed = {r["退款编号"]: r for r in exceptions_sheet(report)}
    expected_person = {rid: t for rid, t in truth.items() if t["expected"] == "person"}
    assert set(handed) == set(expected_person)
    for rid, t in expected_person.items():  # every rule it fails, the headline first
        assert handed[rid]["原因代码"] == ", ".join(t["reason_codes"]), rid
        assert (handed[rid]["时限"] in ("紧急", "已超时")) == t["urgent"], rid
    assert any(len(t["reason_codes"]) > 1 for t in expected_person.values())
    # untouched history: never listed, never in the ledger
    keys = {r["item_key"].split("@")[0] for r in workspace.ledger_rows()}
    assert not keys & {rid for rid, t in truth.items() if t["expected"] == "untouched"}


@pytest.mark.parametrize("workspace", SKINS, indirect=True)
@pytest.mark.refunds(60)
def test_second_run_approves_nothing_new(workspace: Workspace) -> None:
    workspace.run()
    first = approvals(workspace)
    second = workspace.run()
    assert approvals(workspace) == first
    assert "0 approved" in second.stderr
    newest = workspace.reports()[-1]
    assert exceptions_sheet(newest) == []  # unchanged refunds are not asked about twice


@pytest.mark.parametrize("workspace", SKINS, indirect=True)
@pytest.mark.refunds(60)
def test_sigkill_mid_run_then_resume(workspace: Workspace) -> None:
    expected = expected_approvals(workspace)
    proc = workspace.popen()
    with reaped(proc):
        deadline = time.monotonic() + 300
        while len(workspace.sandbox.audit()) < 15:  # kill it well into the approvals
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    partial = approvals(workspace)
    assert 15 <= sum(partial.values()) < len(expected)

    workspace.run()
    approved = approvals(workspace)
    assert max(approved.values()) == 1
    assert set(approved) == expected


@pytest.mark.refunds(60)
def test_kill_after_approval_landed_is_settled_without_acting_again(workspace: Workspace) -> None:
    target = refund_only_target(workspace)
    # the shop approves, then stalls before answering: the robot cannot see the result
    stall_approval(workspace, target, 60)
    proc = workspace.popen()
    with reaped(proc):
        deadline = time.monotonic() + 120
        while target not in approvals(workspace):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    [row] = [r for r in workspace.ledger_rows() if r["item_key"].startswith(target)]
    assert row["state"] == "acting"

    result = workspace.run()
    assert approvals(workspace)[target] == 1
    [row] = [r for r in workspace.ledger_rows() if r["item_key"].startswith(target)]
    assert row["state"] == "done"
    assert '"settled_on_resume": "SUCCESS"' in row["details"]
    assert set(approvals(workspace)) == expected_approvals(workspace), result.stderr
    # the run that settled it reports it as it was decided: order, buyer, amount, link
    book = openpyxl.load_workbook(workspace.root / "reports" / f"refunds-{row['run_id']}.xlsx")
    [shown] = [r for r in records(book["已同意"]) if r["退款编号"].value == target]
    fee = workspace.sandbox.statuses()[target][2]
    assert shown["订单编号"].value and shown["买家"].value, {h: c.value for h, c in shown.items()}
    assert f"{shown['退款金额'].value:.2f}" == f"{float(fee):.2f}"
    assert shown["后台链接"].hyperlink is not None


@pytest.mark.refunds(60)
def test_unanswered_approval_is_verified_not_repeated(workspace: Workspace) -> None:
    target = refund_only_target(workspace)
    # the shop approves but answers only after the robot's 10 s timeout
    stall_approval(workspace, target, 15)
    workspace.run()
    assert approvals(workspace)[target] == 1
    [row] = [r for r in workspace.ledger_rows() if r["item_key"].startswith(target)]
    assert (row["state"], row["attempts"]) == ("done", 1)  # pressed once, verified on retry
    log = next((workspace.root / "logs").glob("*/run.log")).read_text(encoding="utf-8")
    assert (
        f"refund {target}@WAIT_SELLER_AGREE failed (attempt 1/3): PageError: approving {target}: "
        "neither the success sign" in log
    )
    assert set(approvals(workspace)) == expected_approvals(workspace)


@pytest.mark.parametrize("workspace", SKINS, indirect=True)
@pytest.mark.refunds(60)
def test_refund_changed_before_approval_is_not_approved(workspace: Workspace) -> None:
    truth = workspace.sandbox.truth()
    target = refund_only_target(workspace)
    old_fee = truth[target]["amount"]
    # the buyer lowers the amount right after the robot's page was rendered
    workspace.sandbox.control("change-after-render", refund_id=target, refund_fee="1.00")
    workspace.run()
    assert target not in approvals(workspace)
    status, _version, fee = workspace.sandbox.statuses()[target]
    assert (status, fee) == ("WAIT_SELLER_AGREE", "1.00")
    handed = {r["退款编号"]: r for r in exceptions_sheet(workspace.reports()[-1])}
    assert handed[target]["主因"] == "STALE_RECORD"
    assert old_fee != "1.00"
    # the next run reads the new record and hands the now-partial refund to a person
    workspace.run()
    assert target not in approvals(workspace)
    handed = {r["退款编号"]: r for r in exceptions_sheet(workspace.reports()[-1])}
    assert handed[target]["主因"] == "PARTIAL_REFUND"


@pytest.mark.refunds(60)
def test_dry_run_changes_nothing(workspace: Workspace) -> None:
    before = workspace.sandbox.statuses()
    result = workspace.run("--dry-run")
    assert workspace.sandbox.audit() == []
    assert workspace.sandbox.statuses() == before
    assert not [r for r in workspace.ledger_rows()], "a dry run wrote work items"
    [report] = workspace.reports()
    assert report.name.endswith("-dry-run.xlsx")
    wb = openpyxl.load_workbook(report)
    summary = summary_of(wb)
    assert summary["演练 dry run"].startswith("是")
    would = {r["退款编号"] for r in values(wb["已同意"])}
    assert would == expected_approvals(workspace)
    assert "would be approved" in result.stderr
    # and a real run afterwards still does everything
    workspace.run()
    assert set(approvals(workspace)) == expected_approvals(workspace)


@pytest.mark.refunds(60)
def test_daily_cap_limits_money_approved(tmp_path: Path, workspace: Workspace) -> None:
    text = SCENARIO.read_text(encoding="utf-8").replace(
        "daily_auto_total = 20000", "daily_auto_total = 1000"
    )
    ws = Workspace(
        write_workspace(tmp_path / "capped", workspace.sandbox.url, scenario_text=text),
        workspace.sandbox,
    )
    ws.run()
    paid = [r for r in ws.sandbox.audit() if r["action"] != "agree_return"]
    assert 0 < sum(float(r["amount"]) for r in paid) <= 1000
    codes = Counter(r["主因"] for r in exceptions_sheet(ws.reports()[-1]))
    assert codes["DAILY_CAP_REACHED"] > 0
    # return requests move no money, so the cap does not hold them back
    agreed = {r["refund_id"] for r in ws.sandbox.audit() if r["action"] == "agree_return"}
    truth = ws.sandbox.truth()
    assert agreed == {rid for rid, t in truth.items() if t["action"] == "agree_return"}


@pytest.mark.refunds(30)
def test_system_exception_is_retried_then_recovers(workspace: Workspace) -> None:
    target = refund_only_target(workspace)
    workspace.sandbox.control("faults", path_prefix=f"/refunds/{target}", count=2, status=503)
    workspace.run()
    assert approvals(workspace)[target] == 1
    log = next((workspace.root / "logs").glob("*/run.log")).read_text(encoding="utf-8")
    assert "attempt 1/3" in log and "attempt 2/3" in log


@pytest.mark.refunds(30)
def test_system_exception_leaves_evidence_without_secrets(workspace: Workspace) -> None:
    target = refund_only_target(workspace)
    workspace.sandbox.control("faults", path_prefix=f"/refunds/{target}", count=50, status=500)
    result = workspace.run(check=False)
    assert result.returncode == 1, result.stderr  # an item needs an operator
    assert target not in approvals(workspace)
    [row] = [r for r in workspace.ledger_rows() if r["item_key"].startswith(target)]
    assert row["state"] == "system_exception" and row["attempts"] == 0
    run_dir = next((workspace.root / "logs").iterdir())
    shots = sorted(run_dir.glob("evidence/*.png"))
    traces = sorted(run_dir.glob("evidence/*.trace.zip"))
    assert len(shots) == 3 and len(traces) == 1
    handed = {r["退款编号"]: r for r in exceptions_sheet(workspace.reports()[-1])}
    assert handed[target]["主因"] == "SYSTEM_ERROR"
    wb = openpyxl.load_workbook(workspace.reports()[-1])
    row = next(r for r in records(wb["待人工处理"]) if r["退款编号"].value == target)
    evidence = row["证据"]
    assert evidence.hyperlink is not None
    assert evidence.hyperlink.target.startswith("file:///")  # absolute: survives mailing
    assert Path(unquote(evidence.hyperlink.target.removeprefix("file://"))).exists()

    # the password is nowhere: logs, traces (unzipped), reports (unzipped)
    assert assert_secrets_absent([*run_dir.rglob("*"), *workspace.reports()], [PASSWORD]) >= 6
    log = (run_dir / "run.log").read_text(encoding="utf-8")
    assert "logged in" in log

    # the fault clears; the next run retries the system exception and approves it once
    workspace.sandbox.control("reset")
    workspace.run()
    assert approvals(workspace)[target] == 1


@pytest.mark.refunds(60)
def test_expired_session_is_logged_in_again(workspace: Workspace) -> None:
    workspace.sandbox.control("expire-sessions", after_requests=60)
    workspace.run()
    approved = approvals(workspace)
    assert max(approved.values()) == 1
    assert set(approved) == expected_approvals(workspace)
    log = next((workspace.root / "logs").glob("*/run.log")).read_text(encoding="utf-8")
    assert log.count("logged in to") == 2
    assert "SessionExpired" in log


@pytest.mark.refunds(60)
def test_wrong_password_is_a_clear_error(tmp_path: Path, workspace: Workspace) -> None:
    creds = workspace.root / "secrets" / "credentials.toml"
    creds.write_text('[demo-shop]\nusername = "robot"\npassword = "not-the-password"\n')
    result = workspace.run(check=False)
    assert result.returncode == 2
    assert "CredentialError" in result.stderr and "用户名或密码错误" in result.stderr
    assert "Traceback" not in result.stderr
    assert "not-the-password" not in result.stderr


@pytest.mark.refunds(60)
def test_trace_file_is_a_readable_playwright_trace(workspace: Workspace) -> None:
    target = refund_only_target(workspace)
    workspace.sandbox.control("faults", path_prefix=f"/refunds/{target}", count=50, status=500)
    listed = list_order(workspace)
    workspace.run("--limit", str(listed.index(target) + 1), check=False)
    [trace] = list((workspace.root / "logs").glob("*/evidence/*.trace.zip"))
    with zipfile.ZipFile(trace) as z:
        names = z.namelist()
        assert any(n.endswith(".trace") for n in names)
        events = io.TextIOWrapper(z.open(next(n for n in names if n.endswith(".trace"))))
        assert target in events.read()


@pytest.mark.refunds(80)
def test_dropped_answer_after_the_approval_landed_is_booked_as_ours(
    tmp_path: Path, workspace: Workspace
) -> None:
    """The shop applies an approval, then the connection drops before the answer: whether
    the browser re-sends the request (the shop then refuses it as a changed record) or
    reports the lost answer, the refund is the robot's, its money counts against the cap,
    and the automatic approvals in the audit log never exceed the cap."""
    cap = 1500
    text = SCENARIO.read_text(encoding="utf-8").replace(
        "daily_auto_total = 20000", f"daily_auto_total = {cap}"
    )
    ws = Workspace(
        write_workspace(tmp_path / "capped", workspace.sandbox.url, scenario_text=text),
        workspace.sandbox,
    )
    truth = ws.sandbox.truth()
    paying = sorted(rid for rid, t in truth.items() if t["action"] == "agree_refund")
    dropped = paying[:6]
    for rid in dropped:
        ws.sandbox.control("faults", path_prefix=f"/refunds/{rid}/approve", count=1, drop=True)
    result = ws.run(check=False)
    assert result.returncode in (0, 1), result.stderr

    audit = ws.sandbox.audit()
    approved = approvals(ws)
    assert max(approved.values()) == 1, "a refund was approved twice"
    automatic = [r for r in audit if r["action"] != "agree_return" and r["actor"] == "robot"]
    assert 0 < sum(float(r["amount"]) for r in automatic) <= cap
    landed = [rid for rid in dropped if rid in approved]
    assert landed, "no dropped approval landed"
    rows = {r["item_key"].split("@")[0]: r for r in ws.ledger_rows()}
    for rid in landed:  # booked as the robot's approval, its money reserved and counted
        row = rows[rid]
        assert row["state"] == "done", (rid, row["state"], row["error_message"])
        assert row["amount_cents"] == round(float(truth[rid]["amount"]) * 100), rid
    ledger_money = sum(r["amount_cents"] for r in ws.ledger_rows() if r["state"] == "done")
    assert ledger_money == round(sum(float(r["amount"]) for r in automatic) * 100)
    handed = {r["退款编号"]: r["主因"] for r in exceptions_sheet(ws.reports()[-1])}
    assert not set(landed) & set(handed), {rid: handed[rid] for rid in set(landed) & set(handed)}
    wb = openpyxl.load_workbook(ws.reports()[-1])
    approved_sheet = {r["退款编号"] for r in values(wb["已同意"])}
    assert set(landed) <= approved_sheet


def point_at_nothing(text: str, name: str) -> str:
    """The scenario ``text`` with field ``name``'s selector pointing at nothing (the rest of
    its spec, label and words, as it was)."""
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{name} = "))
    selector = re.search(r'selector = "((?:[^"\\]|\\.)*)"', line)
    assert selector is not None, line
    return text.replace(line, line.replace(selector.group(0), f'selector = "#no-such-{name}"'))


@pytest.mark.refunds(40)
@pytest.mark.parametrize("name", ["intervention", "has_gift", "category"])
def test_a_policy_field_that_reads_nothing_approves_nothing_and_stops_the_run(
    tmp_path: Path, workspace: Workspace, name: str
) -> None:
    """The scenario's selector for one policy field points at nothing: no refund is approved,
    the ones worked go to a person naming the field, and the run stops early (exit 1)."""
    broken = point_at_nothing(SCENARIO.read_text(encoding="utf-8"), name)
    ws = Workspace(
        write_workspace(tmp_path / "broken", workspace.sandbox.url, scenario_text=broken),
        workspace.sandbox,
    )
    result = ws.run(check=False)
    assert result.returncode == 1, result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"ScenarioUnreadable: the scenario's field '{name}'"), first
    assert f"#no-such-{name}" in first and "Traceback" not in result.stderr
    assert approvals(ws) == Counter(), "a refund was approved with a field unread"
    rows = exceptions_sheet(ws.reports()[-1])
    unreadable = [r for r in rows if r["主因"] == "UNREADABLE_FIELD"]
    assert len(unreadable) >= 10 and len(unreadable) == len(rows)
    assert all(name in str(r["原因（全部未通过的规则）"]) for r in unreadable)
    states = Counter(r["state"] for r in ws.ledger_rows())
    assert states["pending"] > 0 and "acting" not in states  # the rest waits for a fixed run


POLICY_FIELDS = sorted(
    n for n, k in FIELDS.items() if k.required and n not in ("refund_id", "version", "status")
)


@pytest.mark.refunds(24)
@pytest.mark.parametrize("workspace", ["demo-shop-2"], indirect=True)
def test_breaking_any_policy_field_on_a_shop_of_words_approves_nothing(
    tmp_path: Path, workspace: Workspace
) -> None:
    """On the second back office (words, not codes), each policy field in turn points at
    nothing: no refund is approved, those worked go to a person naming the field, the run
    stops early. Optional fields (absent on some refunds by nature) may read as absent, but
    never approve a refund the ground truth hands to a person."""
    text = workspace.scenario.read_text(encoding="utf-8")
    expected = expected_approvals(workspace)
    optional = sorted(n for n, k in FIELDS.items() if not k.required)
    for name in [*POLICY_FIELDS, *optional]:
        broken = point_at_nothing(text, name)
        ws = Workspace(
            write_workspace(
                tmp_path / name,
                workspace.sandbox.url,
                scenario_text=broken,
                extra="[early_stop]\nmin_items = 4\n",
            ),
            workspace.sandbox,
        )
        result = ws.run(check=False)
        if name in optional:
            assert result.returncode in (0, 1), (name, result.stderr)
            assert set(approvals(workspace)) <= expected, name
            continue
        assert result.returncode == 1, (name, result.stderr)
        first = result.stderr.strip().splitlines()[0]
        assert first.startswith(f"ScenarioUnreadable: the scenario's field '{name}'"), first
        assert approvals(workspace) == Counter(), f"approved with {name} unread"
        rows = exceptions_sheet(ws.reports()[-1])
        assert rows and all(r["主因"] == "UNREADABLE_FIELD" for r in rows), name
        assert all(name in str(r["原因（全部未通过的规则）"]) for r in rows), name
    workspace.run()  # the good scenario afterwards: everything right, nothing twice
    approved = approvals(workspace)
    assert set(approved) == expected and max(approved.values()) == 1


@pytest.mark.refunds(30)
@pytest.mark.parametrize("workspace", SKINS, indirect=True)
def test_a_list_selector_matching_nothing_stops_the_run(
    tmp_path: Path, workspace: Workspace
) -> None:
    text = workspace.scenario.read_text(encoding="utf-8")
    row = next(ln for ln in text.splitlines() if ln.startswith("row = "))
    ws = Workspace(
        write_workspace(
            tmp_path / "broken",
            workspace.sandbox.url,
            scenario_text=text.replace(row, 'row = ".no-such-row"'),
        ),
        workspace.sandbox,
    )
    result = ws.run(check=False)
    assert result.returncode == 1, result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("ScenarioUnreadable: the scenario's list.row selector '.no-such-row'")
    assert "Traceback" not in result.stderr and approvals(ws) == Counter()


@pytest.mark.refunds(30)
@pytest.mark.parametrize("workspace", ["demo-shop-2"], indirect=True)
def test_a_status_nobody_mapped_goes_to_a_person_not_handled_elsewhere(
    tmp_path: Path, workspace: Workspace
) -> None:
    """The list shows 待商家处理 and the scenario's map lacks it: every such refund is
    unreadable (a person looks; the run stops early), none is dropped as handled elsewhere."""
    text = workspace.scenario.read_text(encoding="utf-8")
    unmapped = text.replace('map = { "待商家处理" = "WAIT_SELLER_AGREE", ', "map = { ", 1)
    assert unmapped != text
    ws = Workspace(
        write_workspace(tmp_path / "unmapped", workspace.sandbox.url, scenario_text=unmapped),
        workspace.sandbox,
    )
    result = ws.run(check=False)
    assert result.returncode == 1, result.stderr
    assert "ScenarioUnreadable: the scenario's field 'status'" in result.stderr
    assert "待商家处理" in result.stderr.splitlines()[0]
    # only refunds whose status did read (待商家收货) may have been paid
    assert {row["action"] for row in ws.sandbox.audit()} <= {"confirm_refund"}
    details = [r["details"] or "" for r in ws.ledger_rows()]
    assert not [d for d in details if "handled_elsewhere" in d]
    rows = exceptions_sheet(ws.reports()[-1])
    assert rows and {r["主因"] for r in rows} == {"UNREADABLE_FIELD"}
    # each with its money and deadline, read off its own page (its list row said nothing)
    assert all(r["退款金额"] > 0 and r["截止时间"] for r in rows), rows[:2]


@pytest.mark.refunds(80)
@pytest.mark.parametrize("workspace", ["demo-shop-2"], indirect=True)
def test_a_list_turned_in_place_by_a_next_button(tmp_path: Path, workspace: Workspace) -> None:
    """The second back office's paged view: 下一页 replaces the cards without a new address.
    Every pending refund is still found: the approvals are the ground truth's."""
    text = workspace.scenario.read_text(encoding="utf-8")
    paged = text.replace('path = "/v2/aftersale"', 'path = "/v2/aftersale?view=pages"').replace(
        'load_more = "button.as-more"', 'next_button = "button.as-next"'
    )
    assert paged.count("as-next") == 1 and "view=pages" in paged
    ws = Workspace(
        write_workspace(tmp_path / "paged", workspace.sandbox.url, scenario_text=paged),
        workspace.sandbox,
    )
    with ws.sandbox.db() as conn:
        pending = {
            r[0]
            for r in conn.execute(
                "SELECT refund_id FROM refunds"
                " WHERE status IN ('WAIT_SELLER_AGREE', 'WAIT_SELLER_CONFIRM_GOODS')"
            )
        }
    ws.run()
    approved = approvals(ws)
    assert set(approved) == expected_approvals(ws) and max(approved.values()) == 1
    listed = {r["item_key"].split("@")[0] for r in ws.ledger_rows()}
    assert listed == pending and len(listed) > 20  # more than one page of cards
