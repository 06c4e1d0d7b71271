"""An author's ordinary slips, on both back offices of the sandbox: none moves money or skips
work quietly. A status typo or a list keyed by the shop's own tab numbers fails `config
check`; a list path the shop does not filter by stops the run; a list whose items all turn
out "handled elsewhere" stops and alerts; a positional selector one row off for any yes/no or
number the policy reads approves nothing a person should see, and the hand-overs name the
field and its label; a field that breaks on some pages only is in the run's summary, its
汇总 and its alert, and the run exits 1."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import (
    SKINS,
    Sandbox,
    Workspace,
    approvals,
    robot_env,
    robots_cmd,
    start_sandbox,
    stop_sandbox,
    write_workspace,
)
from report_checks import summary_of, values
from test_alerts import Receiver

from robots.refunds.fields import FIELDS

# the yes/no and number fields the policy reads
BOOLS = sorted(n for n, k in FIELDS.items() if k.type == "bool" and k.rules)
INTS = sorted(n for n, k in FIELDS.items() if k.type == "int" and k.rules)


def scenario_text(skin: str) -> str:
    return SKINS[skin].read_text(encoding="utf-8")


def workspace_for(
    root: Path, sb: Sandbox, text: str, *, extra: str = "", parallel: int = 2
) -> Workspace:
    return Workspace(
        write_workspace(root, sb.url, scenario_text=text, parallel=parallel, extra=extra), sb
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd(*args), capture_output=True, text=True, env=robot_env(), timeout=600
    )


def first_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.strip().splitlines()[0]


def set_field(text: str, name: str, **keys: str) -> str:
    """``text`` with field ``name``'s spec given these keys (the rest as it was): a value
    starting with "[" is written as a TOML list, any other as a string."""
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{name} = "))
    new = line
    for key, value in keys.items():  # a list as TOML ("[...]"), anything else as a string
        quoted = (
            value
            if value.startswith("[")
            else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        )
        pattern = re.compile(rf'\b{key} = ("(?:[^"\\]|\\.)*"|\[[^\]]*\])')
        if pattern.search(new):
            new = pattern.sub(lambda _m, k=key, q=quoted: f"{k} = {q}", new, count=1)
        else:
            new = new.replace("{ ", f"{{ {key} = {quoted}, ", 1)
    return text.replace(line, new)


# -- config check: mistakes found before any page is opened ---------------------------------------
@pytest.mark.parametrize("skin", SKINS)
def test_a_status_typo_fails_config_check_and_the_run(tmp_path: Path, skin: str) -> None:
    text = scenario_text(skin).replace(
        'pending_statuses = ["WAIT_SELLER_AGREE",', 'pending_statuses = ["WAIT_SELLER_AGRE",'
    )
    assert 'WAIT_SELLER_AGRE"' in text
    ws = write_workspace(tmp_path, "http://127.0.0.1:9/", scenario_text=text)
    for args in (("config", "check"), ("run", "refunds")):
        result = cli(*args, "-w", str(ws))
        assert result.returncode == 2, result.stderr
        line = first_line(result)
        assert line.startswith("ConfigError: ") and "shop.pending_statuses.0" in line, line
        assert "'WAIT_SELLER_AGRE'" in line and "WAIT_SELLER_CONFIRM_GOODS" in line, line
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("skin", SKINS)
def test_a_list_keyed_by_tab_numbers_fails_config_check(tmp_path: Path, skin: str) -> None:
    """?tab={status} with the shop's tab numbers as pending statuses: refused, naming both;
    list.status_values says what {status} is, and the codes stay the robot's."""
    text = re.sub(
        r'(?m)^path = "/(v2/aftersale|refunds)[^"]*"',
        r'path = "/\1?tab={status}"',
        scenario_text(skin),
        count=1,
    )
    text = re.sub(r"pending_statuses = \[[^\]]*\]", 'pending_statuses = ["1", "3"]', text)
    ws = write_workspace(tmp_path, "http://127.0.0.1:9/", scenario_text=text)
    result = cli("config", "check", "-w", str(ws))
    assert result.returncode == 2
    assert "shop.pending_statuses.0: '1' is not a status" in first_line(result)
    assert "shop.pending_statuses.1: '3' is not a status" in result.stderr
    assert "list.status_values" in first_line(result)


def test_config_check_names_every_static_mistake_at_once(tmp_path: Path) -> None:
    text = scenario_text("demo-shop-2")
    text = set_field(text, "created_at", formats='["%Y-%m-%d %Q"]')  # no such directive
    text = set_field(text, "deadline", formats='["%m月%d日 %H:%M"]')  # no year: read as 1900
    cards, rest = text.split("[detail]", 1)
    cards = cards.replace('"售后关闭" = "CLOSED"', '"售后关闭" = "CLOSD"')  # no such code
    cards = cards.replace(
        '"退款成功" = "SUCCESS" }', '"退款成功" = "SUCCESS", "退款成功 " = "CLOSED" }'
    )
    text = cards + "[detail]" + rest
    text = text.replace("\nintervention = {", "\nintervension = {", 1)  # a typo'd name
    ws = write_workspace(tmp_path, "http://127.0.0.1:9/", scenario_text=text)
    result = cli("config", "check", "-w", str(ws))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    err = result.stderr
    assert first_line(result).startswith("ConfigError: ")
    for expected in (
        "list.fields.status.map: '售后关闭' maps onto 'CLOSD': not a code the robot knows",
        "list.fields.status.map: keys '退款成功' and '退款成功 ' are the same text",
        "detail.fields: missing field selectors: intervention",
        "detail.fields.intervension: the robot reads no field 'intervension'",
        "detail.fields.created_at.formats.0: datetime format '%Y-%m-%d %Q': unknown directive %Q",
        "detail.fields.deadline.formats.0: datetime format '%m月%d日 %H:%M': loses the date",
    ):
        assert expected in err, (expected, err)

    # a workspace naming two targets alike: the first would win silently
    file = ws / "robots.toml"
    file.write_text(
        file.read_text()
        + '\n[[targets]]\nname = "sandbox"\nrobot = "refunds"\nscenario = "refunds.toml"\n'
    )
    result = cli("config", "check", "-w", str(ws))
    assert result.returncode == 2
    assert "two targets are named 'sandbox'" in first_line(result)


# -- runs that must stop, on a shop ---------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = start_sandbox(tmp_path_factory.mktemp("slips") / "shop", refunds=40)
    yield sb
    stop_sandbox(sb)


@pytest.mark.browser
@pytest.mark.parametrize("skin", SKINS)
def test_a_list_path_the_shop_does_not_filter_by_stops_the_run(
    tmp_path: Path, shop: Sandbox, skin: str
) -> None:
    """{status} in a query parameter the shop ignores: the list shows every status, so a
    row in another one stops the run with one line naming the path; nothing is approved."""
    before = approvals(Workspace(tmp_path, shop))
    text = scenario_text(skin)
    if skin == "demo-shop":
        text = text.replace("/refunds?status={status}", "/refunds?state={status}")
    else:
        text = text.replace('path = "/v2/aftersale"', 'path = "/v2/aftersale?tab={status}"')
        text = text.replace(
            "[list.fields]",
            '[list.status_values]\nWAIT_SELLER_AGREE = "1"\n'
            'WAIT_SELLER_CONFIRM_GOODS = "3"\n\n[list.fields]',
        )
    ws = workspace_for(tmp_path / "ws", shop, text)
    result = ws.run(check=False)
    assert result.returncode == 1, result.stderr
    line = first_line(result)
    assert line.startswith("ScenarioUnreadable: the list at ") and "does not filter" in line, line
    assert "Traceback" not in result.stderr
    assert approvals(ws) == before


@pytest.mark.browser
@pytest.mark.parametrize("skin", SKINS)
def test_a_list_whose_items_all_turn_out_handled_elsewhere_stops_and_alerts(
    tmp_path: Path, shop: Sandbox, skin: str
) -> None:
    """Every listed refund is at another stage on its own page (the list's statuses swapped):
    not "0 approved, done" but a stopped run, exit 1, an alert."""
    before = approvals(Workspace(tmp_path, shop))
    text = scenario_text(skin)
    if skin == "demo-shop":  # each status's list fetched for the other, rows showing none
        text = text.replace(
            "[list.fields]",
            '[list.status_values]\nWAIT_SELLER_AGREE = "WAIT_SELLER_CONFIRM_GOODS"\n'
            'WAIT_SELLER_CONFIRM_GOODS = "WAIT_SELLER_AGREE"\n\n[list.fields]',
        )
        text = re.sub(
            r'(?m)^status = \{ selector = ":scope", attribute = "data-status" \}\n', "", text
        )
    else:  # the cards' words mapped the wrong way round
        head, rest = text.split("[list.fields]", 1)
        cards, rest = rest.split("[detail]", 1)
        cards = cards.replace(
            '"待商家处理" = "WAIT_SELLER_AGREE", "待商家收货" = "WAIT_SELLER_CONFIRM_GOODS"',
            '"待商家处理" = "WAIT_SELLER_CONFIRM_GOODS", "待商家收货" = "WAIT_SELLER_AGREE"',
        )
        text = head + "[list.fields]" + cards + "[detail]" + rest
    hook = Receiver()
    try:
        ws = workspace_for(
            tmp_path / "ws",
            shop,
            text,
            extra="[early_stop]\nmin_items = 6\n\n[alerts]\n[[alerts.webhooks]]\n"
            f'url = "{hook.url}/generic"\n',
        )
        result = ws.run(check=False)
        assert result.returncode == 1, result.stderr
        line = first_line(result)
        assert line.startswith("ScenarioUnreadable: ") and "handled elsewhere" in line, line
        assert approvals(ws) == before
        alert = next(body for _path, body in hook.posts if body.get("level") == "critical")
        assert "handled elsewhere" in alert["text"]
    finally:
        hook.close()


NEIGHBOURS: dict[str, dict[str, str]] = {
    # the demo shop lays values out as dt/dd rows in three sections
    "demo-shop": {
        "has_good_return": "dl > dd:nth-of-type(3)",  # 退款性质, the row after 退款类型
        "refund_quantity": "dl > dd:nth-of-type(6)",  # 退款原因, after 退款商品
        "intervention": "dl > dd:nth-of-type(11)",  # 该订单行未完结退款, after 平台介入
        "open_refunds_on_line": "dl > dd:nth-of-type(12)",  # 版本
        "line_quantity": "section:nth-of-type(2) dl > dd:nth-of-type(5)",  # 实付金额
        "has_gift": "section:nth-of-type(2) dl > dd:nth-of-type(11)",  # 货物状态, before 赠品
        "shared_discount": "section:nth-of-type(2) dl > dd:nth-of-type(12)",  # 赠品
        "buyer_orders_90d": "section:nth-of-type(3) dl > dd:nth-of-type(3)",  # 近90天退款数
        "buyer_refunds_90d": "section:nth-of-type(3) dl > dd:nth-of-type(2)",  # 近90天订单数
        "buyer_blacklisted": "section:nth-of-type(3) dl > dd:nth-of-type(3)",  # 近90天退款数
        "receipt": "section:nth-of-type(3) dl > dd:nth-of-type(6)",  # 退货寄出时间
        "receipt_quantity": "section:nth-of-type(3) dl > dd:nth-of-type(6)",  # 退货寄出时间
    },
    # the second back office as .kv rows in three panels, after each panel's title
    "demo-shop-2": {
        "has_good_return": ".wb-panel:nth-child(1) .kv:nth-of-type(3) .v",  # 退款类型
        "refund_quantity": ".wb-panel:nth-child(1) .kv:nth-of-type(6) .v",  # 退款原因
        "intervention": ".wb-panel:nth-child(1) .kv:nth-of-type(10) .v",  # 同订单行
        "open_refunds_on_line": ".wb-panel:nth-child(1) .kv:nth-of-type(9) .v",  # 平台客服
        "line_quantity": ".wb-panel:nth-child(2) .kv:nth-of-type(6) .v",  # 实付款
        "has_gift": ".wb-panel:nth-child(2) .kv:nth-of-type(10) .v",  # 跨店优惠
        "shared_discount": ".wb-panel:nth-child(2) .kv:nth-of-type(9) .v",  # 赠品
        "buyer_orders_90d": ".wb-panel:nth-child(3) .kv:nth-of-type(4) .v",  # 风险
        "buyer_refunds_90d": ".wb-panel:nth-child(3) .kv:nth-of-type(2) .v",  # 买家
        "buyer_blacklisted": ".wb-panel:nth-child(3) .kv:nth-of-type(3) .v",  # 售后记录
        "receipt": ".wb-panel:nth-child(3) .kv:nth-of-type(5) .v",  # 退货物流
        "receipt_quantity": ".wb-panel:nth-child(3) .kv:nth-of-type(5) .v",  # 退货物流
    },
}


@pytest.mark.browser
@pytest.mark.parametrize("skin", SKINS)
def test_a_positional_selector_one_row_off_approves_nothing_a_person_should_see(
    tmp_path: Path, shop: Sandbox, skin: str
) -> None:
    """For each yes/no and number the policy reads: the selector one row off (the slip of
    counting rows), with the scenario's words left as they were. The refunds the ground
    truth sends to a person are never approved; those worked go to a person naming the
    field and the label that should have stood beside it."""
    assert set(NEIGHBOURS[skin]) == {*BOOLS, *INTS}
    truth = shop.truth()
    to_person = {rid for rid, t in truth.items() if t["expected"] == "person"}
    for name in [*BOOLS, *INTS]:
        text = set_field(scenario_text(skin), name, selector=NEIGHBOURS[skin][name])
        ws = workspace_for(tmp_path / name, shop, text, extra="[early_stop]\nmin_items = 4\n")
        result = ws.run(check=False)
        assert result.returncode == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert not set(approvals(ws)) & to_person, name
        wb = openpyxl.load_workbook(ws.reports()[-1])
        rows = [r for r in values(wb["待人工处理"]) if r["原因代码"] == "UNREADABLE_FIELD"]
        label = re.search(rf'^{name} = {{ label = "([^"]+)"', scenario_text(skin), re.M)
        assert label is not None
        named = [r for r in rows if f"{name}（" in r["原因（全部未通过的规则）"]]
        assert named, (name, [r["原因（全部未通过的规则）"] for r in rows][:3])
        assert all(f"应为“{label.group(1)}”" in r["原因（全部未通过的规则）"] for r in named), name


@pytest.mark.browser
@pytest.mark.parametrize("skin", SKINS)
def test_a_field_broken_on_some_pages_only_is_reported_and_fails_the_run(
    tmp_path: Path, skin: str
) -> None:
    """receipt_sku's selector matches nothing, so only refunds the warehouse received are
    unreadable (too few for the early stop): they go to a person, the rest are approved as
    the ground truth says, and the field's count is in the summary line, the 汇总 and the
    alert; the run exits 1."""
    sb = start_sandbox(tmp_path / "shop", refunds=60)
    hook = Receiver()
    try:
        text = set_field(scenario_text(skin), "receipt_sku", selector="#no-such-receipt-sku")
        ws = workspace_for(
            tmp_path / "ws",
            sb,
            text,
            extra=f'[alerts]\n[[alerts.webhooks]]\nurl = "{hook.url}/generic"\n',
        )
        result = ws.run(check=False)
        assert result.returncode == 1, result.stderr
        truth = sb.truth()
        received = {r for r, t in truth.items() if t["action"] == "confirm_refund"}
        assert received, "the shop has refunds the warehouse received"
        approved = approvals(ws)
        expected = {r for r, t in truth.items() if t["expected"] == "approve"}
        assert set(approved) == expected - received and max(approved.values()) == 1
        line = next(ln for ln in result.stderr.splitlines() if ln.startswith("unreadable:"))
        assert "detail.receipt_sku" in line and "exit 1" in line
        wb = openpyxl.load_workbook(ws.reports()[-1])
        summary = summary_of(wb)
        count = summary["  detail.receipt_sku"]
        unread, reads = (int(x) for x in count.split(" / "))
        assert unread >= len(received) and reads >= unread
        alert = next(body for _path, body in hook.posts if "reasons" in body)
        assert any("detail.receipt_sku" in r for r in alert["reasons"])
        unread_rows = [r for r in values(wb["待人工处理"]) if r["原因代码"] == "UNREADABLE_FIELD"]
        assert len(unread_rows) >= len(received)
        # each with its money and deadline, read off the page beside the field that was not
        assert all(r["退款金额"] > 0 and r["截止时间"] for r in unread_rows), unread_rows[:2]
    finally:
        hook.close()
        stop_sandbox(sb)
