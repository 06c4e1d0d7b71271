"""Flow files run on the engine (robots run flow): the shipped 物流异常 flow against the
sandbox's logistics pages and their ground truth, fail-closed reads, and `config check`
refusing a flow a run would trip on, with one line naming file and key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox, one_target_workspace, robot_env, robots_cmd
from openpyxl import load_workbook

from sandbox.logistics import load_shipments_truth

FLOW = ROOT / "scenarios" / "demo-shop" / "flows" / "logistics.toml"
# what a careful person does with each kind of shipment the sandbox makes
EXPECTED = {
    "returning": "LOGISTICS_EXCEPTION",
    "stalled": "STALLED",
    "moving": "已记录 record",
    "delivered": "跳过 skip",
}


WORDS = """[words]
text = "{text}"
[words.classes.back]
label = "退回"
words = ["退回"]
{more}"""
RISE = "[words.rise]\nhours = 3\n"


def workspace(root: Path, url: str, edits: tuple[tuple[str, str], ...] = ()) -> Path:
    return one_target_workspace(root, url, FLOW, robot="flow", target="logistics", edits=edits)


def robots(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        robots_cmd(*args, "-w", str(root)),
        capture_output=True,
        text=True,
        timeout=600,
        env=robot_env(),
    )


def sheet_rows(path: Path, sheet: str) -> list[dict[str, object]]:
    header, *rows = list(load_workbook(path)[sheet].iter_rows(values_only=True))
    return [dict(zip(header, r, strict=True)) for r in rows]


def order_of(row: dict[str, object]) -> str:
    return str(row["条目 item"]).split(":", 1)[1].split("@")[0]


@pytest.mark.browser
@pytest.mark.refunds(5)
@pytest.mark.shipments(70)
def test_the_logistics_flow_meets_its_ground_truth(tmp_path: Path, sandbox: Sandbox) -> None:
    truth = load_shipments_truth(sandbox.data)
    assert {t["kind"] for t in truth.values()} == set(EXPECTED)  # the shop has every kind
    root = workspace(tmp_path / "ws", sandbox.url)

    first = robots(root, "run", "flow", "logistics")  # the target of that name
    assert first.returncode == 0, first.stderr
    [report] = sorted((root / "reports").glob("flow-*.xlsx"))
    handed = sheet_rows(report, "待人工处理")
    done = sheet_rows(report, "已完成")
    got = {order_of(r): str(r["原因代码 code"]) for r in handed}
    got.update({order_of(r): str(r["结果 outcome"]) for r in done})
    assert got == {o: EXPECTED[t["kind"]] for o, t in truth.items()}
    for r in handed:  # what a person needs: carrier, last event and its time, the rule's why
        assert r["物流公司 company"] and r["最新轨迹内容 last_event"] and r["最新轨迹时间 last_at"]
        assert str(r["原因 reason"]).startswith(("物流异常：", "物流停滞：")), r
    queue = sheet_rows(root / "reports" / "open-exceptions.xlsx", "流程待处理")
    assert {order_of(r) for r in queue} == {order_of(r) for r in handed}
    for r in queue:  # what was read, by header, beside the reason
        said = str(r["读到的内容 values"])
        assert "物流公司：" in said and "最新轨迹时间：" in said, said

    again = robots(root, "run", "flow")  # the same shop day: each order was raised once today
    assert again.returncode == 0, again.stderr
    assert "0 to a person" in again.stderr
    newest = sorted((root / "reports").glob("flow-*.xlsx"))[-1]
    assert newest != report and sheet_rows(newest, "待人工处理") == []


@pytest.mark.browser
@pytest.mark.refunds(5)
@pytest.mark.shipments(30)
def test_the_probe_shows_each_field_and_each_rule_on_a_live_item(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    truth = load_shipments_truth(sandbox.data)
    stalled = min(o for o, t in truth.items() if t["kind"] == "stalled")
    root = workspace(tmp_path / "ws", sandbox.url)
    result = robots(root, "scenario", "probe", "--target", "logistics", "--item", stalled)
    assert result.returncode == 0, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    for field in ("company", "state", "last_at", "last_event"):
        assert field in text, field
    assert "rule 1" in text and "rule 4" in text
    # rule 1 (returned or refused) is false, rule 3 (stalled) holds and decides
    assert "the item ends in hand_over STALLED" in text and "(rule 3)" in text, text


@pytest.mark.browser
@pytest.mark.refunds(5)
@pytest.mark.shipments(30)
def test_a_value_the_flow_cannot_read_is_never_decided_on(tmp_path: Path, sandbox: Sandbox) -> None:
    """The state's selector points at nothing: no item is recorded or skipped on a guess;
    each goes to a person naming the field, and the run stops early (exit 1)."""
    root = workspace(
        tmp_path / "ws",
        sandbox.url,
        (('state = { selector = "dd.state"', 'state = { selector = "dd.no-such-state"'),),
    )
    result = robots(root, "run", "flow")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [report] = sorted((root / "reports").glob("flow-*.xlsx"))
    assert sheet_rows(report, "已完成") == []
    handed = sheet_rows(report, "待人工处理")
    assert handed and all(r["原因代码 code"] == "UNREADABLE_FIELD" for r in handed)
    assert all("state" in str(r["原因 reason"]) for r in handed)


@pytest.mark.browser
@pytest.mark.refunds(5)
@pytest.mark.shipments(30)
def test_items_from_a_file_a_person_prepared(tmp_path: Path, sandbox: Sandbox) -> None:
    """The same flow, its orders from a CSV instead of the list page: exactly those orders are
    decided, as the ground truth says; a file with a bad row is refused whole, naming row and
    column, before any page is opened."""
    truth = load_shipments_truth(sandbox.data)
    chosen = sorted(truth)[::3]  # every third order, of every kind
    text = FLOW.read_text(encoding="utf-8")
    start, end = text.index("[source]"), text.index("# 物流详情")
    source = '[source]\nfile = "orders.csv"\nkey = "{order_id}@{today}"\n'
    source += 'columns.order_id = { header = "订单号" }\n\n'
    root = workspace(tmp_path / "ws", sandbox.url, ((text[start:end], source),))
    (root / "orders.csv").write_text("订单号\n" + "\n".join(chosen) + "\n", encoding="utf-8")

    result = robots(root, "run", "flow", "logistics")
    assert result.returncode == 0, result.stderr
    [report] = sorted((root / "reports").glob("flow-*.xlsx"))
    got = {order_of(r): str(r["原因代码 code"]) for r in sheet_rows(report, "待人工处理")}
    got.update({order_of(r): str(r["结果 outcome"]) for r in sheet_rows(report, "已完成")})
    assert got == {o: EXPECTED[truth[o]["kind"]] for o in chosen}

    bad = tmp_path / "bad.csv"
    bad.write_text(f"订单号,备注\n{chosen[0]},\n,急\n", encoding="utf-8")  # row 3: no order
    refused = robots(root, "run", "flow", "logistics", "--source-file", str(bad))
    assert refused.returncode == 2, refused.stderr
    first = refused.stderr.strip().splitlines()[0]
    assert "bad.csv" in first and "row 3 column 订单号 (A)" in first, first


@pytest.mark.parametrize(
    ("edit", "key", "says"),
    [
        (
            ("when = 'page.state == \"已签收\"'", "when = 'page.status == \"已签收\"'"),
            "rules.2.when",
            "page.status",
        ),
        (
            ("skip = true", 'act = "remind"'),
            "rules.2.act",
            "no action 'remind'",
        ),
        (
            ('key = "{order_id}@{today}"', 'key = "{order}@{today}"'),
            "source.key",
            "names order",
        ),
        (
            ('path = "/shipments/{order_id}"', 'path = "/shipments/{id}"'),
            "page.path",
            "names id",
        ),
        (
            ('now - page.last_at >= duration("72h")', "page.last_at >= 72"),
            "rules.3.when",
            "declared types",
        ),
        (
            ('path = "/shipments"\n', ""),
            "source",
            "a list page's path, or a file",
        ),
        (
            ('type = "datetime"', 'type = "date"'),
            "page.fields.last_at.type",
            "",
        ),
        (  # a path value nobody gives: which list would be read?
            ('path = "/shipments"\n', 'path = "/shipments?state={state}"\n'),
            "source.path",
            "names state: give its values in source.for_each",
        ),
        (  # values for a path that names none: the one list read twice
            ('path = "/shipments"\n', 'path = "/shipments"\nfor_each = { state = ["a"] }\n'),
            "source.for_each.state",
            "names no {state}",
        ),
        (
            ('path = "/shipments"\n', 'path = "/s?state={state}"\nfor_each = { state = [] }\n'),
            "source.for_each.state",
            "no values",
        ),
        (
            ('page.last_event.contains("拒收")', 'has_word(page.last_at, ["拒收"])'),
            "rules.1.when",
            "has_word takes a text",
        ),
        (
            ("\n[shop]", '\n[report]\ncolumns = ["carrier"]\n\n[shop]'),
            "report.columns",
            "no field 'carrier'",
        ),
        (
            ("\n[shop]", '\n[report]\nmoney = "company"\n\n[shop]'),
            "report.money",
            "not a money field",
        ),
        (
            ("company = { label", "rule = { label"),
            "page.fields.rule",
            "the workbook's own column",
        ),
        (  # a rule comparing with the last run, in a flow that keeps nothing
            ("when = 'page.state == \"已签收\"'", "when = 'page.state == last.state'"),
            "rules.2.when",
            "remembers nothing",
        ),
        (
            ('title = "物流异常"', 'title = "物流异常"\nremember = "{order}"'),
            "remember",
            "names order",
        ),
        (  # words found in a flow that declares none
            ("when = 'page.state == \"已签收\"'", "when = 'size(hits) > 0'"),
            "rules.2.when",
            "declares no [words]",
        ),
        (
            ("\n[shop]", f"\n{WORDS.format(text='last_at', more='')}\n[shop]"),
            "words.text",
            "no text field 'last_at'",
        ),
        (  # counted by the hour, but at no time
            ("\n[shop]", f"\n{WORDS.format(text='last_event', more=RISE)}\n[shop]"),
            "words.rise",
            "give words.time",
        ),
        (
            (
                "\n[shop]",
                f"\n{WORDS.format(text='last_event', more='').replace('退回', '**')}[shop]",
            ),
            "words.classes.back.words",
            "no letters or digits",
        ),
    ],
)
def test_config_check_refuses_a_flow_a_run_would_trip_on(
    tmp_path: Path, edit: tuple[str, str], key: str, says: str
) -> None:
    root = workspace(tmp_path / "ws", "http://127.0.0.1:9/", (edit,))
    result = robots(root, "config", "check")
    assert result.returncode != 0, result.stdout
    first = result.stderr.strip().splitlines()[0]
    assert "logistics.toml" in first and key in first and says in first, first
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("nosuch",),
            "no flow target named 'nosuch', and not one file scenarios/*/flows/nosuch.toml",
        ),
        (("logistics", "--target", "logistics"), "give 'logistics' or --target / --scenario"),
    ],
)
def test_a_flow_name_that_names_nothing_or_too_much_is_one_line(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    root = workspace(tmp_path / "ws", "http://127.0.0.1:9/")
    result = robots(root, "run", "flow", *args)
    assert result.returncode != 0
    first = result.stderr.strip().splitlines()[0]
    assert says in first and "Traceback" not in result.stderr, result.stderr


@pytest.mark.browser
@pytest.mark.refunds(5)
@pytest.mark.shipments(30)
def test_a_flow_started_from_a_live_list_page_runs_as_written(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """`robots flow new` on the logistics list: a file that passes the checks, whose source
    is that list (its data attribute and columns by header), and that runs read-only,
    recording every row."""
    root = workspace(tmp_path / "ws", sandbox.url)
    made = robots(root, "flow", "new", "watch", "--list-url", "/shipments", "--target", "logistics")
    assert made.returncode == 0, made.stderr
    flow = root / "flows" / "watch.toml"
    text = flow.read_text(encoding="utf-8")
    assert 'row = "tr.shipment-row"' in text and 'attribute = "data-order-id"' in text
    assert 'label = "物流公司"' in text and 'key = "{order_id}@{today}"' in text
    again = robots(
        root, "flow", "new", "watch", "--list-url", "/shipments", "--target", "logistics"
    )
    assert again.returncode != 0 and "exists" in again.stderr.splitlines()[0]

    result = robots(root, "run", "flow", "--scenario", str(flow))
    assert result.returncode == 0, result.stderr
    assert "0 to a person, 30 recorded" in result.stderr, result.stderr
    [report] = sorted((root / "reports").glob("flow-*.xlsx"))
    rows = sheet_rows(report, "已完成")
    column = next(c for c in rows[0] if str(c).startswith("物流公司"))  # read by its header
    assert all(r[column] for r in rows), rows[0]


def test_docs_catalogue_md_is_what_robots_flow_list_writes() -> None:
    """The catalogue page is the shipped flows as `robots flow list --markdown` writes them,
    and each says what it does in Chinese and in English."""
    import re

    listed = robots(ROOT, "flow", "list")
    assert listed.returncode == 0, listed.stderr
    written = robots(ROOT, "flow", "list", "--markdown")
    assert written.returncode == 0, written.stderr
    page = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    assert page == written.stdout, (
        "docs/catalogue.md is stale: robots flow list --markdown > docs/catalogue.md"
    )
    shipped = sorted((ROOT / "scenarios" / "demo-shop" / "flows").glob("*.toml"))
    assert len(shipped) >= 3
    for file in shipped:
        assert f"({file.stem})" in page, file
        description = next(
            line
            for line in file.read_text(encoding="utf-8").splitlines()
            if line.startswith("description = ")
        )
        assert re.search(r"[\u4e00-\u9fff]", description), file  # Chinese first …
        assert re.search(r"[A-Za-z]{4,} [a-z]+", description), file  # … and English


def test_an_action_types_the_items_own_values_and_config_check_knows_their_names(
    tmp_path: Path,
) -> None:
    """直播挂链 types each SKU's 讲解序号 from the list into the dialog (``text = "{slot}"``):
    filled per item, braces doubled for a brace itself; a name the flow does not read is
    refused before a run."""
    from robots.flow.scenario import filled, load

    live = ROOT / "scenarios" / "demo-shop" / "flows" / "live-listing.toml"
    flow = load(live)
    assert flow.problems() == []
    add = flow.actions["add"]
    typed = [s.text for s in filled(add, {"slot": 7, "sku": "LV-1"}).steps if s.fill]
    assert typed == ["7"] and [s.text for s in add.steps if s.fill] == ["{slot}"]
    braces = add.model_copy(
        update={
            "steps": [
                s.model_copy(update={"text": "{{第{slot}位}}"}) if s.fill else s for s in add.steps
            ]
        }
    )
    assert [s.text for s in filled(braces, {"slot": 3}).steps if s.fill] == ["{第3位}"]

    wrong = tmp_path / "flows" / "live-listing.toml"
    wrong.parent.mkdir()
    wrong.write_text(
        live.read_text(encoding="utf-8").replace('text = "{slot}"', 'text = "{place}"'),
        encoding="utf-8",
    )
    (tmp_path / "flows" / "live-skus.csv").write_text("直播间,商品编码,讲解序号\n", "utf-8")
    from robots.errors import ConfigError

    with pytest.raises(ConfigError, match=r"actions\.add\.steps: fills in \{place\}, which"):
        load(wrong)
