"""Label-anchored fields in a real Chromium: a value is read only beside the label a person
reads next to it, on the layouts back offices use (dl, key/value spans, tables with row or
column headers, 抖店-style description rows); a positional selector one row off, a label
missing or shown twice is unreadable, never a value."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_runtime import blank_page

from robots.config import FieldSpec
from robots.engine.fields import READ_JS, FieldKind, FieldReader, UnreadableField
from robots.engine.pages import ROWS_JS
from robots.runtime.clock import ShopClock

CLOCK = ShopClock()

DL = """
<h1>退款详情 <span id="rid">RF1</span></h1>
<dl>
  <dt>退款金额</dt><dd id="fee">¥128.00</dd>
  <dt>平台介入</dt><dd id="iv">否</dd>
  <dt>赠品</dt><dd id="gift">无</dd>
  <dt>退款商品</dt><dd><span id="sku">TS-1</span> × <span id="qty">2</span></dd>
  <dt>退货物流</dt><dd>圆通速递 <span id="sid">YT123</span></dd>
</dl>"""
KV = """
<div class="kv"><span class="k">平台客服</span><span class="v" id="cs">客服介入：未介入</span></div>
<div class="kv"><span class="k">赠品：</span><span class="v" id="gift">无</span></div>
<div class="kv"><span class="k">仓库入库</span><span class="v"><span class="st">已入库</span>
  运单 <span class="wb">SF1</span></span></div>"""
ROWS = """
<div class="desc">
  <div class="desc-item"><span class="desc-label">退款原因：</span>
    <span class="desc-value">不想要了</span></div>
  <div class="desc-item"><span class="desc-label">平台介入：</span>
    <span class="desc-value">无</span></div>
  <div class="desc-item"><span class="desc-label">赠品：</span>
    <span class="desc-value">无</span></div>
</div>"""
VERTICAL = """
<table><tr><th>平台介入</th><th>赠品</th></tr>
  <tr><td id="a">否</td><td id="b">含赠品</td></tr></table>"""
LIST = """
<table id="list"><thead><tr><th>编号</th><th>状态</th></tr></thead>
<tbody><tr class="row"><td>RF1</td><td>待处理</td></tr>
  <tr class="row"><td>RF2</td><td>已完成</td></tr></tbody>
</table>"""


def read(html: str, specs: dict[str, dict[str, Any]], **reader: Any) -> dict[str, Any]:
    """Each field read on ``html`` in Chromium: its typed value, or the UnreadableField."""
    plain = {n: dict(s) for n, s in specs.items()}
    kinds = {n: FieldKind(s.pop("kind", "text")) for n, s in plain.items()}
    fr = FieldReader({n: FieldSpec(**s) for n, s in plain.items()}, kinds, CLOCK, **reader)

    async def go() -> dict[str, Any]:
        async with blank_page(5000) as page:
            await page.set_content(html)
            raw: dict[str, Any] = await page.evaluate(READ_JS, fr.js_specs)
        out: dict[str, Any] = {}
        for name in fr.fields:
            try:
                out[name] = fr.read(raw, [name])[name]
            except UnreadableField as exc:
                out[name] = exc
        return out

    return asyncio.run(go())


@pytest.mark.browser
def test_values_beside_their_labels_read_and_one_row_off_does_not() -> None:
    got = read(
        DL,
        {
            "fee": {"selector": "#fee", "label": "退款金额", "kind": "money"},
            "iv": {"selector": "#iv", "label": "平台介入", "true": ["是"], "false": ["否"]},
            # one row off: the 无 of 赠品 where 平台介入 was meant
            "off": {"selector": "#gift", "label": "平台介入", "true": ["是"], "false": ["无"]},
            # a value inside a value cell: the nearest text before it is the × ...
            "qty_near": {"selector": "#qty", "label": "退款商品"},
            # ... so the page's labels are named: dt
            "qty": {"selector": "#qty", "label": "退款商品", "kind": "int"},
            "sid": {"selector": "#sid", "label": "退货物流"},
            "found": {"label": "平台介入"},  # no selector: the element after the label
            "missing": {"label": "价保"},
        },
        label_selector=None,
    )
    assert got["fee"] == 128 and got["iv"] == "否"
    assert isinstance(got["off"], UnreadableField)
    assert (
        "旁边的标签是“赠品”，应为“平台介入”" in str(got["off"]) and got["off"].label == "平台介入"
    )
    assert isinstance(got["qty_near"], UnreadableField) and "TS-1" in str(got["qty_near"])
    assert isinstance(got["qty"], UnreadableField)  # without label_selector: the same
    assert isinstance(got["sid"], UnreadableField) and "圆通速递" in str(got["sid"])
    assert got["found"] == "否"
    assert isinstance(got["missing"], UnreadableField) and "找不到标签“价保”" in str(got["missing"])

    named = read(
        DL,
        {
            "qty": {"selector": "#qty", "label": "退款商品", "kind": "int"},
            "sid": {"selector": "#sid", "label": "退货物流"},
            "fee": {"label": "退款金额", "kind": "money"},
            "rid": {"selector": "#rid", "label": "退款详情"},  # no dt before it at all
        },
        label_selector="dt",
    )
    assert named["qty"] == 2 and named["sid"] == "YT123" and named["fee"] == 128
    assert isinstance(named["rid"], UnreadableField) and "旁边没有标签" in str(named["rid"])


@pytest.mark.browser
def test_key_value_spans_description_rows_and_column_headers() -> None:
    kv = read(
        KV,
        {
            "cs": {"selector": "#cs", "label": "平台客服"},
            "gift": {"selector": "#gift", "label": "赠品"},  # 赠品： with its colon
            "wb": {"selector": ".wb", "label": "仓库入库"},
            "wb_inline": {"selector": ".wb", "label": "运单"},  # nearest text: the inline label
        },
        label_selector=".k",
    )
    assert kv["cs"] == "客服介入：未介入" and kv["gift"] == "无" and kv["wb"] == "SF1"
    assert isinstance(kv["wb_inline"], UnreadableField)  # .k names the labels: 仓库入库
    assert read(KV, {"wb": {"selector": ".wb", "label": "运单"}})["wb"] == "SF1"

    nth = ".desc-item:nth-child({}) .desc-value"
    rows = read(
        ROWS,
        {
            "right": {"selector": nth.format(2), "label": "平台介入"},
            "before": {"selector": nth.format(1), "label": "平台介入"},
            "after": {"selector": nth.format(3), "label": "平台介入"},
            "by_label": {"label": "平台介入", "label_selector": ".desc-label"},
        },
    )
    assert rows["right"] == "无" and rows["by_label"] == "无"
    assert isinstance(rows["before"], UnreadableField) and "退款原因" in str(rows["before"])
    assert isinstance(rows["after"], UnreadableField) and "赠品" in str(rows["after"])

    vertical = read(
        VERTICAL,
        {
            "a": {"selector": "#a", "label": "平台介入"},
            "b_as_a": {"selector": "#b", "label": "平台介入"},
        },
        label_selector="th",
    )
    assert vertical["a"] == "否" and isinstance(vertical["b_as_a"], UnreadableField)


@pytest.mark.browser
def test_a_label_shown_twice_is_no_answer() -> None:
    twice = DL + "<dl><dt>平台介入</dt><dd>是</dd></dl>"
    got = read(twice, {"iv": {"label": "平台介入", "label_selector": "dt"}})
    assert isinstance(got["iv"], UnreadableField) and "出现 2 次" in str(got["iv"])


@pytest.mark.browser
def test_list_rows_read_their_labels_from_the_column_headers() -> None:
    reader = FieldReader(
        {
            "status": FieldSpec(selector="td:nth-child(2)", label="状态"),
            "wrong": FieldSpec(selector="td:nth-child(1)", label="状态"),
        },
        {},
        CLOCK,
        label_selector="th",
    )

    async def go() -> list[dict[str, Any]]:
        async with blank_page(5000) as page:
            await page.set_content(LIST)
            rows: list[dict[str, Any]] = await page.evaluate(ROWS_JS, ["tr.row", reader.js_specs])
        return rows

    rows = asyncio.run(go())
    assert [reader.read(r, ["status"])["status"] for r in rows] == ["待处理", "已完成"]
    with pytest.raises(UnreadableField, match="旁边的标签是“编号”"):
        reader.read(rows[0], ["wrong"])
