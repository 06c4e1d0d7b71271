"""`robots flow record`: a flow written from what a person does in a visible browser.

The recorder opens the list page (logged in as a target's scenario logs in) in a Chromium
the person sees, with a bar on top (● 录制中 … 完成录制), and keeps what they do:

- the list the page shows becomes the flow's ``[source]`` (as `robots flow new` finds it);
- the row they open: its page's address, with the row's values in it, becomes ``[page]
  path`` (``/admin/skus/{sku}``);
- Alt+click on a value there: a page field (its locator, the label beside it, its type
  from what it shows: ``¥12.50`` money, ``12`` int, else text);
- clicks, typed text and choices: the action's steps. Typed text equal to one of the row's
  or the page's values is written as that value (``{sku}``); text equal to the login's
  username or password is never written: the recording stops with an error (a flow types
  no secret);
- Alt+click after the steps: on a field, its new value is how the action shows it took
  (``landed``); on anything else (a 已添加 notice), the action's success sign.

Locators are what stays when a page changes: an id (not a generated one), a test or data
attribute, a form field's name, classes that name one element; positions only when nothing
else does, and then a field keeps its label check. The flow written decides with three
rules: the value the action leaves → skip (done already); the value the page showed when
recorded → act; anything else → a person. It passes `robots config check` and runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from robots.errors import ConfigError
from robots.flow.scaffold import field_name, q

# installed in every page of the recording: the bar, and every click, Alt+click, typed text
# and choice sent to the recorder (``__robotsRecord``) with the locator of its element
RECORDER_JS = r"""
(() => {
  if (window.__robotsRecorder) return;
  window.__robotsRecorder = true;
  const send = (e) => window.__robotsRecord && window.__robotsRecord(e);
  const esc = (s) => (window.CSS && CSS.escape) ? CSS.escape(s) : s;
  const unique = (sel) => { try { return document.querySelectorAll(sel).length === 1; }
                            catch (_) { return false; } };
  const generated = (s) => /\d{4,}|[0-9a-f]{8,}|^(ember|react|ng|mui|css)-?\d/i.test(s);
  const classes = (el) => [...el.classList]
    .filter((c) => /^[A-Za-z_][\w-]*$/.test(c) && !generated(c));
  const ours = (el) => el.closest && el.closest("#robots-recorder-bar");
  // a CSS selector for el that stays when the page changes: id, test/data attribute,
  // name, classes; the position under its nearest identified ancestor only as a last resort
  const locate = (el) => {
    const tag = el.tagName.toLowerCase();
    const id = el.id ? `#${esc(el.id)}` : "";
    if (id && !generated(el.id) && unique(id)) return [id, false];
    for (const a of ["data-testid", "data-test", "data-qa", "data-action", "data-field"]) {
      const v = el.getAttribute(a);
      if (v && unique(`[${a}="${v}"]`)) return [`[${a}="${v}"]`, false];
    }
    const name = el.getAttribute("name");
    if (name && unique(`${tag}[name="${name}"]`)) return [`${tag}[name="${name}"]`, false];
    const cls = classes(el);
    for (let n = 1; n <= Math.min(cls.length, 3); n++) {
      const sel = `${tag}.${cls.slice(0, n).map(esc).join(".")}`;
      if (unique(sel)) return [sel, false];
    }
    const path = [];
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      if (node !== el && node.id && !generated(node.id)) {
        path.unshift(`#${esc(node.id)}`);
        break;
      }
      const t = node.tagName.toLowerCase();
      const same = node.parentElement
        ? [...node.parentElement.children].filter((c) => c.tagName === node.tagName)
        : [node];
      path.unshift(same.length > 1 ? `${t}:nth-of-type(${same.indexOf(node) + 1})` : t);
    }
    return [path.join(" > "), true];
  };
  // the label a person reads beside a value: the term of a dl, the header of a table
  // column, a form label, or the nearest labelled sibling before it
  const labelOf = (el) => {
    const cell = el.closest("td");
    if (cell) {
      const table = cell.closest("table");
      const i = [...cell.parentElement.children].indexOf(cell);
      const th = table && table.querySelectorAll("thead th, tr:first-child th")[i];
      if (th) return [th.textContent.trim(), "th"];
    }
    for (let node = el, d = 0; node && node !== document.body && d < 4;
         node = node.parentElement, d++) {
      for (let sib = node.previousElementSibling; sib; sib = sib.previousElementSibling) {
        const text = sib.textContent.trim();
        if (!text || text.length > 20) continue;
        const tag = sib.tagName.toLowerCase();
        if (["dt", "th", "label"].includes(tag)) return [text, tag];
        return [text, ""];
      }
    }
    return ["", ""];
  };
  const rowOf = (el) => {
    const row = el.closest("tr, li, [data-id]");
    if (!row) return null;
    const cells = [...row.children].map((c) => c.textContent.trim());
    const data = Object.fromEntries([...row.attributes]
      .filter((a) => a.name.startsWith("data-")).map((a) => [a.name, a.value]));
    return { cells, data };
  };
  const base = (el, kind) => {
    const [selector, positional] = locate(el);
    const text = (el.innerText || el.value || "").trim().slice(0, 200);
    const tag = el.tagName.toLowerCase();
    const all = classes(el).length ? `${tag}.${classes(el).map(esc).join(".")}` : selector;
    return { kind, selector, positional, url: location.href, text, all };
  };
  document.addEventListener("click", (ev) => {
    const el = ev.target;
    if (!(el instanceof Element)) return;
    if (ours(el)) {
      if (el.id === "robots-recorder-done") {
        ev.preventDefault();
        send({ kind: "done", url: location.href });
      }
      return;
    }
    if (ev.altKey) {
      ev.preventDefault(); ev.stopPropagation();
      const [label, labelTag] = labelOf(el);
      send({ ...base(el, "point"), label, labelTag });
      el.style.outline = "2px solid #e4393c";
      return;
    }
    const target =
      el.closest("a, button, input, select, textarea, label, [role=button], [onclick]") || el;
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)
      && !["submit", "checkbox", "button"].includes(target.type);
    if (typing) return;  // its change is the step
    const e = base(target, target.type === "checkbox" ? "check" : "click");
    e.row = rowOf(target);
    e.href = target.closest("a") ? target.closest("a").href : "";
    send(e);
  }, true);
  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (!(el instanceof Element) || ours(el)) return;
    if (el.tagName === "SELECT") {
      const option = el.options[el.selectedIndex];
      send({ ...base(el, "choose"), value: option ? option.text.trim() : el.value });
    } else if (["INPUT", "TEXTAREA"].includes(el.tagName)
               && !["checkbox", "radio", "submit", "button"].includes(el.type)) {
      send({ ...base(el, "fill"), value: el.value, secret: el.type === "password" });
    }
  }, true);
  const bar = () => {
    if (document.getElementById("robots-recorder-bar") || !document.body) return;
    const div = document.createElement("div");
    div.id = "robots-recorder-bar";
    div.setAttribute("style", "position:fixed;bottom:0;left:0;right:0;z-index:2147483647;"
      + "background:#222;color:#fff;font:13px sans-serif;padding:6px 10px;"
      + "display:flex;gap:12px;align-items:center");
    div.innerHTML = '<span style="color:#e4393c">● 录制中 recording</span>'
      + "<span>打开一行 → Alt+点击要读取的值 → 操作 → Alt+点击生效后的值</span>"
      + '<button id="robots-recorder-done" style="margin-left:auto">完成录制 done</button>';
    document.body.appendChild(div);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", bar);
  else bar();
})();
"""


class RecordingError(ConfigError):
    """What was recorded cannot make a flow; the first line says what to do instead."""


@dataclass
class Recorded:
    """What the person did, in order, as the recorder's page script sent it."""

    list_url: str
    found: dict[str, Any]  # the list on the first page (``scaffold.FIND_JS``)
    events: list[dict[str, Any]] = field(default_factory=list)
    secrets: tuple[str, ...] = ()  # the login's username and password: never written


@dataclass
class _Field:
    name: str
    selector: str
    label: str
    label_tag: str
    type: str
    shown: str  # what it showed when pointed at
    positional: bool


def flow_from_recording(
    rec: Recorded, *, title: str, shop: str, login: str, description: str = ""
) -> str:
    """The flow file text for what was recorded (``shop``, ``login``: the TOML of those
    tables from the scenario the browser logged in with)."""
    events = [e for e in rec.events if e["kind"] != "done"]
    for e in events:
        typed = e.get("value", "")
        if e["kind"] == "fill" and (e.get("secret") or (typed and typed in rec.secrets)):
            raise RecordingError(
                f"the recording typed the login's secret into {e['selector']!r}: a flow "
                "never types a password; record without it (the flow logs in by [login])",
                file="robots flow record",
            )
    opened = next((e for e in events if e["kind"] == "click" and e.get("row")), None)
    if opened is None:
        raise RecordingError(
            "no row was opened: click a row of the list (its link) so its page is recorded",
            file="robots flow record",
        )
    source_fields, row_values = _source_fields(rec.found, opened["row"])
    item_events = events[events.index(opened) + 1 :]
    item_url = opened.get("href") or (item_events[0]["url"] if item_events else "")
    if not item_url:
        raise RecordingError(
            "the row opened no page: click the row's link", file="robots flow record"
        )
    path = _path_template(item_url, row_values)
    fields: list[_Field] = []
    steps: list[dict[str, str]] = []
    success: str | None = None
    landed: tuple[_Field, str] | None = None
    taken = set(source_fields)
    for e in item_events:
        if e["kind"] == "point":
            known = next((f for f in fields if f.selector == e["selector"]), None)
            if not steps:
                if known is None:
                    fields.append(_field(e, taken))
            elif known is not None:
                landed = (known, e["text"])
            else:  # a notice: all its classes (.flash.ok, not .flash, which errors share)
                success = e.get("all") or e["selector"]
        elif e["kind"] in ("click", "check"):
            if e["url"].split("#")[0] != item_url.split("#")[0] and not steps:
                continue  # still on the list
            steps.append({e["kind"]: e["selector"]})
        elif e["kind"] == "fill":
            steps.append({"fill": e["selector"], "text": _as_value(e["value"], row_values, fields)})
        elif e["kind"] == "choose":
            steps.append(
                {"choose": e["selector"], "option": _as_value(e["value"], row_values, fields)}
            )
    if not fields:
        raise RecordingError(
            "no value was pointed at on the item's page: Alt+click the values the flow reads "
            "before acting",
            file="robots flow record",
        )
    if steps and landed is None:
        raise RecordingError(
            "after the action, Alt+click the value that shows it took (a state that changed), "
            "so the flow can check each press landed",
            file="robots flow record",
        )
    return _text(
        title=title,
        description=description,
        rec=rec,
        shop=shop,
        login=login,
        source_fields=source_fields,
        path=path,
        fields=fields,
        steps=steps,
        success=success,
        landed=landed,
    )


def _source_fields(
    found: dict[str, Any], row: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The list's fields (name → TOML spec) and the opened row's value of each."""
    taken: set[str] = set()
    specs, values = {}, {}
    for attr in found["data"]:
        name = field_name(attr, taken)
        specs[name] = f'{{ selector = ":scope", attribute = {q(attr)} }}'
        values[name] = str(row.get("data", {}).get(attr, ""))
    cells = row.get("cells", [])
    for i, header in enumerate(found["headers"], 1):
        if not header:
            continue
        name = field_name(header if re.search(r"[A-Za-z]", header) else f"col_{i}", taken)
        specs[name] = f'{{ selector = ":scope > :nth-child({i})", label = {q(header)} }}'
        values[name] = cells[i - 1] if i <= len(cells) else ""
    return specs, values


def _path_template(url: str, values: dict[str, str]) -> str:
    """The item page's address with the opened row's values as ``{name}``."""
    parts = urlsplit(url)
    by_value: dict[str, str] = {}
    for name, value in values.items():  # the first field that holds a value names it
        if value:
            by_value.setdefault(value, name)
    segments = [
        "{" + by_value[unquote(s)] + "}" if unquote(s) in by_value else s
        for s in parts.path.split("/")
    ]
    query = [
        (k, "{" + by_value[v] + "}" if v in by_value else v) for k, v in parse_qsl(parts.query)
    ]
    path = "/".join(segments)
    if query:
        path += "?" + urlencode(query, safe="{}")
    if "{" not in path:
        raise RecordingError(
            f"the page the row opened ({url}) does not carry any value of its row in its "
            "address: the flow could not open each item's page",
            file="robots flow record",
        )
    return path


MONEY = re.compile(r"^[¥￥]\s*-?[\d,]+(\.\d+)?$")
INT = re.compile(r"^-?\d+$")


def _field(e: dict[str, Any], taken: set[str]) -> _Field:
    cls = re.findall(r"\.([A-Za-z_][\w-]*)", e["selector"])
    base = cls[-1] if cls and not e["positional"] else e["selector"].lstrip("#")
    if e["selector"].startswith("#"):
        base = e["selector"][1:]
    name = field_name(base if re.search(r"[A-Za-z]", base) else "field", taken)
    text = e["text"]
    kind = "money" if MONEY.match(text) else "int" if INT.match(text) else "text"
    return _Field(
        name, e["selector"], e.get("label", ""), e.get("labelTag", ""), kind, text, e["positional"]
    )


def _as_value(typed: str, row: dict[str, str], fields: list[_Field]) -> str:
    """Typed text as the item's own value when it is one (``{sku}``), else as typed."""
    for name, value in row.items():
        if value and typed == value:
            return "{" + name + "}"
    for f in fields:
        if f.shown and typed == f.shown:
            return "{" + f.name + "}"
    return typed.replace("{", "{{").replace("}", "}}")


def _text(
    *,
    title: str,
    description: str,
    rec: Recorded,
    shop: str,
    login: str,
    source_fields: dict[str, str],
    path: str,
    fields: list[_Field],
    steps: list[dict[str, str]],
    success: str | None,
    landed: tuple[_Field, str] | None,
) -> str:
    found = rec.found
    parts = urlsplit(rec.list_url)
    list_path = parts.path + (f"?{parts.query}" if parts.query else "")
    key = next(iter(source_fields))
    lines = [
        f"# {title}: recorded by `robots flow record` from {rec.list_url}.",
        "# Check the rules, then: robots config check; robots run flow --dry-run.",
        "# docs/flows.md explains each part.",
        "",
        f"title = {q(title)}",
    ]
    if description:
        lines.append(f"description = {q(description)}")
    lines += ["", shop.rstrip(), ""]
    if login:
        lines += [login.rstrip(), ""]
    lines += ["[source]", f"path = {q(list_path)}", f"row = {q(found['row'])}"]
    if found.get("next"):
        lines.append(f"next_page = {q(found['next'])}")
    if found.get("labelSelector"):
        lines.append(f"label_selector = {q(found['labelSelector'])}")
    lines.append(f'key = "{{{key}}}"')
    lines += [f"fields.{n} = {spec}" for n, spec in source_fields.items()]
    lines += ["", "[page]", f"path = {q(path)}"]
    tags = {f.label_tag for f in fields if f.label}
    if len(tags) == 1 and "" not in tags:
        lines.append(f"label_selector = {q(tags.pop())}")
    lines += ["", "[page.fields]"]
    for f in fields:
        spec = [f"selector = {q(f.selector)}"]
        if f.label:
            spec.append(f"label = {q(f.label)}")
        if f.type != "text":
            spec.append(f"type = {q(f.type)}")
        note = "   # by position: the label checks it" if f.positional else ""
        lines.append(f"{f.name} = {{ {', '.join(spec)} }}{note}")
    lines.append("")
    if not steps or landed is None:
        lines += ["[[rules]]", 'when = "true"', "record = true", ""]
        return "\n".join(lines)
    sign, after = landed
    before = sign.shown
    lines += [
        "# the value the action leaves: done already; the value shown when recorded: act;",
        "# anything else: a person",
        "[[rules]]",
        f"when = {lit(_equals(sign, after))}",
        "skip = true",
        "",
    ]
    if before != after:
        lines += ["[[rules]]", f"when = {lit(_equals(sign, before))}", 'act = "recorded"', ""]
    else:
        lines += ["[[rules]]", 'when = "true"', 'act = "recorded"', ""]
    lines += [
        "[[rules]]",
        'when = "true"',
        'hand_over = { code = "NOT_AS_RECORDED", text = "页面与录制时的状态不同，请人工处理" }',
        "",
        "[actions.recorded]",
        "steps = [",
        *(f"  {{ {', '.join(f'{k} = {q(v)}' for k, v in s.items())} }}," for s in steps),
        "]",
        f"success = {q(success or '[role=status]')}",
        'error = "[role=alert], .error"     # how a refusal shows: check it on your shop',
        f"guard = [{', '.join(q(f.name) for f in fields)}]",
        f"landed = {lit(_equals(sign, after))}",
        "",
    ]
    return "\n".join(lines)


def lit(text: str) -> str:
    """A TOML literal string where it can be one (a CEL condition reads as written)."""
    return f"'{text}'" if "'" not in text and "\n" not in text else q(text)


def _equals(f: _Field, shown: str) -> str:
    """A CEL condition: the field reads as ``shown`` did (typed as the field is)."""
    if f.type == "money":
        number = re.sub(r"[¥￥,\s]", "", shown)
        return f"page.{f.name} == {float(number)!r}"
    if f.type == "int":
        return f"page.{f.name} == {int(shown)}"
    return f"page.{f.name} == {json.dumps(shown, ensure_ascii=False)}"


async def record(
    *,
    executable: Any,
    timeout_ms: int,
    list_url: str,
    cookies: list[dict[str, Any]],
    debug_port: int | None = None,
) -> Recorded:
    """Open ``list_url`` in a visible Chromium (a profile of its own, the login's
    ``cookies`` in it) and keep what the person does until they press 完成录制 or close the
    browser. ``debug_port``: Chrome's remote debugging, for a test to drive the page."""
    import asyncio
    import tempfile

    from playwright.async_api import async_playwright

    from robots.flow.scaffold import FIND_JS
    from robots.runtime.browser import CHROMIUM_FLAGS, find_chromium

    events: list[dict[str, Any]] = []
    finished = asyncio.Event()

    def sent(_source: Any, event: Any) -> None:
        if isinstance(event, dict) and isinstance(event.get("kind"), str):
            events.append(event)
            if event["kind"] == "done":
                finished.set()

    args = [*CHROMIUM_FLAGS]
    if debug_port is not None:
        args.append(f"--remote-debugging-port={debug_port}")
    with tempfile.TemporaryDirectory(prefix="robots-record-") as profile:
        async with async_playwright() as pw:
            path = find_chromium(executable, pw.chromium.executable_path, headless=False)
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=path,
                headless=False,
                args=args,
                locale="zh-CN",
                no_viewport=True,
            )
            context.set_default_timeout(timeout_ms)
            context.on("close", lambda _: finished.set())
            await context.add_cookies(cookies)  # type: ignore[arg-type]
            await context.expose_binding("__robotsRecord", sent)
            await context.add_init_script(RECORDER_JS)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("close", lambda _: finished.set() if not context.pages else None)
            await page.goto(list_url)
            found = await page.evaluate(FIND_JS)
            if found is None:
                await context.close()
                raise RecordingError(
                    f"no list on {list_url}: no table with rows, nor a repeated element with "
                    "data attributes",
                    file="robots flow record",
                    key="URL",
                )
            await finished.wait()
            if context.pages:
                await context.close()
    return Recorded(list_url=list_url, found=found, events=events)
