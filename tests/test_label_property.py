"""A property of the refunds scenario on both back offices, in a real Chromium on the
sandbox's own pages: pointing any one field's selector at a neighbouring row (one, two or
three levels up, before or after) or at any other field's element can only turn approvals
into hand-overs. Every such slip is tried on every pending refund's page, and each decision
is checked against the ground truth: the slip approves nothing the robot would not approve
with the right selector, and that is exactly what the ground truth approves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PASSWORD, SKINS, USERNAME, Sandbox, start_sandbox, stop_sandbox

from robots.config import FieldSpec
from robots.engine.fields import LABELS, READ_JS, UnreadableField
from robots.errors import PageError
from robots.refunds.backoffice import RefundBackOffice
from robots.refunds.policy import Approve, decide
from robots.refunds.scenario import load_refund_scenario
from robots.runtime.browser import browser_session, goto
from robots.runtime.clock import ShopClock
from robots.runtime.credentials import Credential

pytestmark = pytest.mark.browser

# for each field: the element its selector finds, the same place in the rows before and after
# it (at its own level and one or two up: a dd's neighbour dd, a .kv row's neighbour row) and
# every other field's element, each as a positional CSS path, as a slip would write it
SLIPS_JS = """
(specs) => {
  const path = (el) => {
    const parts = [];
    for (let n = el; n && n.nodeType === 1 && n.tagName !== "HTML"; n = n.parentElement) {
      let i = 1;
      for (let s = n.previousElementSibling; s; s = s.previousElementSibling) {
        if (s.tagName === n.tagName) i++;
      }
      parts.unshift(`${n.tagName.toLowerCase()}:nth-of-type(${i})`);
    }
    return parts.join(" > ");
  };
  const under = (a, v) => {
    const idx = [];
    for (let n = v; n !== a; n = n.parentElement) {
      idx.unshift(Array.from(n.parentElement.children).indexOf(n));
    }
    return idx;
  };
  const follow = (a, idx) => idx.reduce((n, i) => (n ? n.children[i] : null), a);
  const found = {};
  for (const [name, [selector]] of Object.entries(specs)) {
    found[name] = selector ? document.querySelector(selector) : null;
  }
  const out = {};
  for (const [name, v] of Object.entries(found)) {
    const slips = new Set();
    for (let a = v, d = 0; a && d < 3 && a.tagName !== "BODY"; a = a.parentElement, d++) {
      const idx = under(a, v);
      for (const dir of ["previousElementSibling", "nextElementSibling"]) {
        let s = a[dir];
        while (s && !(s.tagName === a.tagName && s.className === a.className)) s = s[dir];
        const t = s ? follow(s, idx) : null;
        if (t && t !== v) slips.add(path(t));
      }
    }
    for (const [other, el] of Object.entries(found)) {
      if (other !== name && el && el !== v) slips.add(path(el));
    }
    out[name] = Array.from(slips);
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = start_sandbox(tmp_path_factory.mktemp("property") / "shop", refunds=60, seed=23)
    yield sb
    stop_sandbox(sb)


def pages_and_slips(
    bo: RefundBackOffice, ids: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]], dict[tuple[str, str, str], Any]]:
    """Each refund page's raw read; every slip of each field (over all pages); and each
    page's read of each slipped field, by (refund, field, selector)."""

    async def go() -> Any:
        async with browser_session(
            executable=None, headless=True, timeout_ms=15_000, trace=False
        ) as session:
            await session.login(bo.login_form, Credential("shop", USERNAME, PASSWORD))
            context = await session.new_context()
            page = await context.new_page()
            specs = bo.reader.js_specs
            raws, slips = {}, {name: set[str]() for name in specs}
            for rid in ids:
                await goto(page, bo.detail_url(rid), login_path=bo.s.login.path)
                raws[rid] = await page.evaluate(READ_JS, specs)
                for name, found in (await page.evaluate(SLIPS_JS, specs)).items():
                    slips[name].update(found)
            slipped: dict[tuple[str, str, str], Any] = {}
            for rid in ids:
                await goto(page, bo.detail_url(rid), login_path=bo.s.login.path)
                keyed = {
                    f"{name}\u0001{sel}": [sel, *specs[name][1:]]
                    for name, sels in slips.items()
                    for sel in sels
                }
                read = await page.evaluate(READ_JS, keyed)
                for key in keyed:
                    name, sel = key.split("\u0001")
                    slipped[(rid, name, sel)] = (read.get(key), read.get(LABELS + key))
            return raws, {n: sorted(s) for n, s in slips.items()}, slipped

    return asyncio.run(go())


def decision(bo: RefundBackOffice, raw: dict[str, Any], rid: str, clock: ShopClock) -> Any:
    """What the robot decides on a page read as ``raw``: an Approve, or "person" (a field it
    cannot read) or "wrong page" (another refund's number: retried, never acted on)."""
    try:
        bo._check_identity(raw, "page", rid)
        return decide(bo.parse(raw), bo.s.policy, clock.now())
    except UnreadableField:
        return "person"
    except PageError:
        return "wrong page"


@pytest.mark.parametrize("skin", SKINS)
def test_any_slip_of_any_field_only_turns_approvals_into_hand_overs(
    shop: Sandbox, skin: str
) -> None:
    scenario = load_refund_scenario(SKINS[skin], base_url=shop.url)
    bo = RefundBackOffice(scenario)
    clock = ShopClock(scenario.shop.timezone)
    truth = shop.truth()
    ids = sorted(r for r, t in truth.items() if t["expected"] in ("approve", "person"))
    raws, slips, slipped = pages_and_slips(bo, ids)

    base = {rid: decision(bo, raws[rid], rid, clock) for rid in ids}
    for rid in ids:  # the scenario as it is decides as the ground truth does
        approved = isinstance(base[rid], Approve)
        assert approved == (truth[rid]["expected"] == "approve"), (rid, base[rid])
        if approved:
            assert base[rid].action == truth[rid]["action"], rid
    assert sum(isinstance(d, Approve) for d in base.values()) >= 20

    tried = turned = 0
    for name, selectors in slips.items():
        assert selectors, f"no slip found for {name}"
        for sel in selectors:
            for rid in ids:
                texts, labels = slipped[(rid, name, sel)]
                raw = {**raws[rid], name: texts}
                raw.pop(LABELS + name, None)
                if labels is not None:
                    raw[LABELS + name] = labels
                after = decision(bo, raw, rid, clock)
                tried += 1
                if isinstance(after, Approve):
                    assert after == base[rid], (name, sel, rid, after, base[rid])
                    assert truth[rid]["expected"] == "approve", (name, sel, rid)
                elif isinstance(base[rid], Approve):
                    turned += 1
    # the property was tried widely, and the slips did turn approvals into hand-overs
    assert tried >= 30 * len(ids) and turned > 0
    print(f"{skin}: {tried} slipped reads, {turned} approvals turned into hand-overs")


def test_positional_field_specs_refuse_labels() -> None:
    """Where a robot reads a field by its selector alone (the parcel page, product pages),
    a label would be ignored: refused when the scenario loads."""
    from pydantic import TypeAdapter, ValidationError

    from robots.config import PositionalFieldSpec

    adapter = TypeAdapter(PositionalFieldSpec)
    adapter.validate_python(FieldSpec(selector="#x"))
    with pytest.raises(ValidationError, match="no label"):
        adapter.validate_python(FieldSpec(selector="#x", label="关联状态"))
