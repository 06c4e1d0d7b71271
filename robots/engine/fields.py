"""Reading a page through typed, fail-closed field specs.

A scenario says where each value is (``selector``, ``attribute`` or the text, ``all`` for
every match), how to cut it out (``regex``, a named group ``value`` or the first group), what
the shop's words mean (``map``, e.g. 待商家处理 → WAIT_SELLER_AGREE) and what it is (``type``:
text, int, money, bool with explicit ``true``/``false`` words, datetime with ``formats`` in
the shop's zone). A robot declares each field's default type and whether it is required.

A field may name its ``label``, the words a person reads beside the value (平台介入): with a
``selector`` the value must stand beside that label (an off-by-one positional selector reads
a neighbouring row, whose label differs); without one the value is found by its label. Which
elements are labels can be narrowed with ``label_selector`` (``dt``, ``th``, ``.label``):
the nearest one before the value, walking up from it, or the column header of its table
cell. Without ``label_selector`` the label is the nearest text before the value.

Fail closed: a required element that is not there, a label that is missing or differs, text
outside its ``map`` or its bool words, or text that does not parse as its type raises
``UnreadableField``, naming the field, the selector, the label and what the page showed. The
item goes to a person (a business exception): a value the robot cannot read never leads to an
action, and no default ever stands in for it. ``field_problems`` finds, before any page is
opened, the scenario mistakes that would otherwise show only on some pages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from robots.config import datetime_format_problem
from robots.config import display_key as _key
from robots.engine.health import READ, UNREADABLE
from robots.errors import BusinessException
from robots.runtime.clock import ShopClock

TRUE_WORDS = ("1", "true", "yes", "y", "是", "有")
FALSE_WORDS = ("0", "false", "no", "n", "否", "无")
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H:%M",
)
SHOWN = 60  # how much of what the page showed an error repeats

LABELS = "@label:"  # raw[LABELS + name]: the label found beside each match (READ_JS says so)

# the fields read under ``root`` (the document, or a list row): (root, {name: [selector|null,
# attribute|null, all, label|null, label_selector|null]}) -> {name: [text, ...], LABELS +
# name: [label, ...]}. With a label (any string, "" to only show it) the label beside each
# match is returned with it; with no selector the value is found by its label: the element
# after each element whose text is the label (the innermost such element, or one matching
# label_selector).
FIELDS_JS = r"""
(() => {
  const MEANING = /[\p{L}\p{N}]/u;
  const SKIP = new Set(["SCRIPT", "STYLE", "TEMPLATE", "OPTION", "TITLE", "NOSCRIPT", "HEAD"]);
  const key = (t) => (t ?? "").normalize("NFKC").replace(/\s+/g, "").toLowerCase()
    .replace(/[:：]+$/u, "");
  const stop = (node, root) => !node || node === root || node.tagName === "BODY"
    || node.nodeType !== 1;
  const header = (el, ls) => {
    const cell = el.closest("td, th");
    const table = cell && cell.closest("table");
    if (!table) return null;
    let col = 0;
    for (const c of cell.parentElement.cells) {
      if (c === cell) break;
      col += c.colSpan || 1;
    }
    const rows = Array.from(table.rows);
    for (let i = rows.indexOf(cell.parentElement) - 1; i >= 0; i--) {
      let at = 0;
      for (const c of rows[i].cells) {
        if (at === col && c.matches(ls) && MEANING.test(c.textContent)) return c.textContent;
        at += c.colSpan || 1;
        if (at > col) break;
      }
    }
    return null;
  };
  const labelOf = (el, ls, root) => {
    for (let node = el, depth = 0; !stop(node, root) && depth < 6;
         node = node.parentElement, depth++) {
      for (let sib = node.previousSibling; sib; sib = sib.previousSibling) {
        if (sib.nodeType === 1) {
          if (SKIP.has(sib.tagName) || !MEANING.test(sib.textContent)) continue;
          if (!ls || sib.matches(ls)) return sib.textContent;
        } else if (sib.nodeType === 3 && !ls && MEANING.test(sib.textContent)) {
          return sib.textContent;
        }
      }
    }
    return ls ? header(el, ls) : null;
  };
  const byLabel = (root, label, ls) => {
    const want = key(label);
    const hits = [];
    for (const el of root.querySelectorAll(ls || "*")) {
      const text = el.textContent ?? "";
      if (SKIP.has(el.tagName) || text.length > label.length + 40 || key(text) !== want) continue;
      if (!ls && Array.from(el.children).some((c) => key(c.textContent) === want)) continue;
      let value = null;
      for (let node = el, depth = 0; !stop(node, root) && depth < 4;
           node = node.parentElement, depth++) {
        let next = node.nextElementSibling;
        while (next && SKIP.has(next.tagName)) next = next.nextElementSibling;
        if (next) { value = next; break; }
      }
      hits.push([value, text]);
    }
    return hits;
  };
  const one = (root, [selector, attribute, all, label, ls]) => {
    const read = (el) => (el === null ? "" : (attribute ? el.getAttribute(attribute)
      : el.textContent) ?? "");
    if (selector == null) {
      const hits = byLabel(root, label, ls);
      return [hits.map(([el]) => read(el)), hits.map(([, text]) => text)];
    }
    const els = selector === ":scope" && root.nodeType === 1 ? [root]
      : all ? Array.from(root.querySelectorAll(selector))
      : [root.querySelector(selector)].filter((e) => e !== null);
    return [els.map(read), label == null ? null : els.map((el) => labelOf(el, ls, root))];
  };
  return (root, specs) => {
    const out = {};
    for (const [name, spec] of Object.entries(specs)) {
      const [texts, labels] = one(root, spec);
      out[name] = texts;
      if (labels !== null) out["@label:" + name] = labels;
    }
    return out;
  };
})()
"""
# every field of a page in one round trip: {name: [text, ...], LABELS + name: [label, ...]}
READ_JS = "(specs) => (" + FIELDS_JS.strip() + ")(document, specs)"


class UnreadableField(BusinessException):
    """A value the robot cannot read, does not recognise or cannot parse: a person looks.
    ``others``: the page's other fields that could not be read either."""

    def __init__(
        self, field: str, selector: str, shown: str, problem: str, label: str = ""
    ) -> None:
        self.field, self.selector, self.shown, self.label = field, selector, shown, label
        self.problem = problem  # what is wrong, without the field and selector
        self.others: list[UnreadableField] = []
        # the page's fields that did read (a hand-over still shows its amount and deadline)
        self.values: dict[str, Any] = {}
        super().__init__(
            "UNREADABLE_FIELD",
            f"页面字段无法读取：{field}（选择器 {selector}）{problem}；页面显示 {shown!r}",
        )


@dataclass(frozen=True)
class FieldKind:
    """What a robot expects of one field when the scenario does not say otherwise, and what
    the field reference (`robots scenario fields`) says of it."""

    type: str = "text"
    required: bool = True
    # the only values the robot knows (after the scenario's ``map``); anything else is
    # unreadable, so a status nobody mapped is never taken for "handled elsewhere"
    choices: tuple[str, ...] = ()
    means: str = ""  # exactly what the value is: what counts, which one, what is included
    # the rules (reason codes) that read it: a bool these depend on must name its words or
    # its label (the default words 是/否/有/无 would read a neighbouring row's 无 as "no")
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    """One field as the scenario describes it (see ``robots.config.FieldSpec``)."""

    name: str
    selector: str | None
    attribute: str | None = None
    all: bool = False
    regex: str | None = None
    map: Mapping[str, str] | None = None
    type: str = "text"
    true: tuple[str, ...] = TRUE_WORDS
    false: tuple[str, ...] = FALSE_WORDS
    formats: tuple[str, ...] = DATETIME_FORMATS
    required: bool = True
    default: str | None = None
    choices: tuple[str, ...] = ()
    none: frozenset[str] = frozenset()
    label: str | None = None
    label_selector: str | None = None

    @classmethod
    def of(
        cls, name: str, spec: Any, kind: FieldKind, *, label_selector: str | None = None
    ) -> Field:
        """The scenario's spec, with the robot's defaults where the scenario is silent
        (``label_selector``: the page's, for a spec that names a label but not its own)."""
        return cls(
            name=name,
            selector=spec.selector,
            attribute=spec.attribute,
            all=spec.all,
            regex=spec.regex,
            map={_key(k): v for k, v in spec.map.items()} if spec.map else None,
            type=spec.type or kind.type,
            true=tuple(spec.true) if spec.true is not None else TRUE_WORDS,
            false=tuple(spec.false) if spec.false is not None else FALSE_WORDS,
            formats=tuple(spec.formats) if spec.formats else DATETIME_FORMATS,
            required=kind.required if spec.required is None else spec.required,
            default=spec.default,
            choices=kind.choices,
            none=frozenset(_key(w) for w in spec.none or ()),
            label=spec.label,
            label_selector=spec.label_selector or (label_selector if spec.label else None),
        )

    @property
    def where(self) -> str:
        """Where the value is looked for, as messages name it."""
        if self.selector is None:
            within = f"（{self.label_selector}）" if self.label_selector else ""
            return f"标签“{self.label}”旁{within}"
        return self.selector

    @property
    def js_spec(self) -> list[Any]:
        return [self.selector, self.attribute, self.all, self.label, self.label_selector]

    # -- reading ------------------------------------------------------------------------------
    def unreadable(self, shown: str, problem: str) -> UnreadableField:
        return UnreadableField(self.name, self.where, shown[:SHOWN], problem, self.label or "")

    def value(
        self, found: list[str] | None, clock: ShopClock, labels: list[str | None] | None = None
    ) -> Any:
        """The typed value from what the page showed (``found``: the texts of the matches;
        ``labels``: the label found beside each, when the field names one)."""
        texts = [_clean(t or "") for t in (found or [])]
        if self.label:
            self._check_labels(texts, labels)
        texts = ["" if _key(t) in self.none else t for t in texts]
        if self.all:
            return [self._one(t, clock) for t in texts if t]
        text = texts[0] if texts else ""
        if not text:
            if self.default is not None:
                text = self.default
            elif self.required:
                problem = "该元素为空" if texts else "页面上找不到该元素"
                if not texts and self.selector is None:
                    problem = f"页面上找不到标签“{self.label}”"
                raise self.unreadable("", problem)
            else:
                return None
        return self._one(text, clock)

    def _check_labels(self, texts: list[str], labels: list[str | None] | None) -> None:
        """Each value must stand beside the field's label; found by its label, the label
        must be there once (twice on a page is no answer, unless ``all``)."""
        assert self.label is not None
        if self.selector is None and len(texts) > 1 and not self.all:
            problem = f"标签“{self.label}”在页面上出现 {len(texts)} 次，无法确定取哪一个"
            raise self.unreadable(" | ".join(texts), problem)
        if labels is None or len(labels) != len(texts):
            raise self.unreadable(" | ".join(texts), "没有读到值旁边的标签")
        want = label_key(self.label)
        for text, found in zip(texts, labels, strict=True):
            if found is None or not _clean(found):
                raise self.unreadable(text, f"旁边没有标签（应为“{self.label}”）")
            if label_key(found) != want:
                raise self.unreadable(
                    text, f"旁边的标签是“{_clean(found)[:SHOWN]}”，应为“{self.label}”"
                )

    def _one(self, text: str, clock: ShopClock) -> Any:
        shown = text
        if self.regex is not None:
            match = re.search(self.regex, text)
            if match is None:
                raise self.unreadable(shown, f"不符合正则 {self.regex}")
            groups = match.groupdict()
            text = _clean(
                groups.get("value") or (match.group(1) if match.groups() else match.group(0))
            )
        if self.map is not None:
            mapped = self.map.get(_key(text))
            if mapped is None:
                raise self.unreadable(shown, "不在映射表中（未知的显示值）")
            text = mapped
        try:
            value = _PARSERS[self.type](self, text, clock)
        except ValueError as exc:
            raise self.unreadable(shown, str(exc)) from None
        if self.choices and value not in self.choices:
            known = "、".join(self.choices)
            raise self.unreadable(shown, f"不是已知的取值（{known}），请在 map 中映射")
        return value

    def target_problem(self, target: str) -> str | None:
        """Why a ``map`` target cannot be this field's value, or None."""
        try:
            value = _PARSERS[self.type](self, target, ShopClock())
        except ValueError as exc:
            return f"not a {self.type} value ({exc})"
        if self.choices and value not in self.choices:
            return f"not a code the robot knows (one of {', '.join(self.choices)})"
        return None


def field_problems(
    specs: Mapping[str, Any],
    kinds: Mapping[str, FieldKind],
    *,
    key: str,
    required: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """Every mistake in a scenario's table of field specs that the pages would show only on
    some items, or never, all at once: a field the robot does not read (a typo) or one of
    ``required`` missing, a type the robot cannot use, a datetime format that does not read
    back the date it writes, two ``map`` keys that are one text to the robot, a ``map`` onto
    a value the robot does not know, a yes/no field a rule depends on that names neither its
    words nor its label. ``key``: where the table is (``detail.fields``)."""
    problems: list[tuple[str, str]] = []
    missing = sorted(set(required) - set(specs))
    if missing:
        problems.append((key, f"missing field selectors: {', '.join(missing)}"))
    for name, spec in specs.items():
        at = f"{key}.{name}"
        kind = kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(kinds))
            problems.append((at, f"the robot reads no field {name!r} (it reads {known})"))
            continue
        if spec.type is not None and spec.type != kind.type:
            problems.append((f"{at}.type", f"{name} is read as {kind.type}, not {spec.type}"))
            continue
        for i, fmt in enumerate(spec.formats or ()):
            problem = datetime_format_problem(fmt)
            if problem:
                problems.append((f"{at}.formats.{i}", f"datetime format {fmt!r}: {problem}"))
        seen: dict[str, str] = {}
        for shown in spec.map or {}:
            folded = _key(shown)
            if folded in seen:
                problems.append(
                    (
                        f"{at}.map",
                        f"keys {seen[folded]!r} and {shown!r} are the same text to the robot "
                        "(width, case and spaces are folded): keep one",
                    )
                )
            seen[folded] = shown
        field = Field.of(name, spec, kind)
        for shown, target in (spec.map or {}).items():
            problem = field.target_problem(target)
            if problem:
                problems.append((f"{at}.map", f"{shown!r} maps onto {target!r}: {problem}"))
        if kind.type == "bool" and kind.rules and spec.label is None:
            missing = [w for w in ("true", "false") if getattr(spec, w) is None]
            if missing:
                problems.append(
                    (
                        at,
                        f"{name} decides {', '.join(kind.rules)}: name its "
                        f'{" and ".join(missing)} words (true = ["是"], false = ["否"]) '
                        'or its label (label = "…"); the default words 是/否/有/无 would read '
                        "a neighbouring row's 无 as no",
                    )
                )
    return problems


def label_key(text: str) -> str:
    """How labels are compared: as display texts, a trailing colon (：or :) dropped."""
    return _key(text).rstrip(":：")


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _text(field: Field, text: str, clock: ShopClock) -> str:
    return text


def _int(field: Field, text: str, clock: ShopClock) -> int:
    digits = unicodedata.normalize("NFKC", text).replace(",", "")
    if not re.fullmatch(r"-?\d+", digits):
        raise ValueError("不是整数")
    return int(digits)


def _money(field: Field, text: str, clock: ShopClock) -> Decimal:
    plain = unicodedata.normalize("NFKC", text)
    plain = re.sub(r"[¥￥元,\s]|RMB|CNY", "", plain, flags=re.IGNORECASE)
    if not re.fullmatch(r"-?\d+(\.\d+)?", plain):
        raise ValueError("不是金额")
    try:
        amount = Decimal(plain)
    except InvalidOperation:
        raise ValueError("不是金额") from None
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("金额超过两位小数")
    return amount.quantize(Decimal("0.01"))


def _bool(field: Field, text: str, clock: ShopClock) -> bool:
    key = _key(text)
    if key in {_key(w) for w in field.true}:
        return True
    if key in {_key(w) for w in field.false}:
        return False
    raise ValueError(f"既不是“是”的说法（{'/'.join(field.true)}）也不是“否”的说法")


def _datetime(field: Field, text: str, clock: ShopClock) -> datetime:
    plain = unicodedata.normalize("NFKC", text)
    for fmt in field.formats:
        try:
            return clock.read(datetime.strptime(plain, fmt))  # noqa: DTZ007 - shop wall time
        except ValueError:
            continue
    try:
        return clock.read(datetime.fromisoformat(plain))
    except ValueError:
        raise ValueError(f"不是日期时间（格式 {' / '.join(field.formats[:3])} …）") from None


_PARSERS = {"text": _text, "int": _int, "money": _money, "bool": _bool, "datetime": _datetime}


class FieldReader:
    """Every field of one page, read in one round trip and typed, failing closed.

    ``tally`` (the run's ``count``) is told of every whole read and every field that could
    not be read in it, as ``field:read:<name>`` and ``field:unreadable:<name>.<field>``: a
    field that breaks on some pages only still shows in the run's counts (``health``)."""

    def __init__(
        self,
        specs: Mapping[str, Any],
        kinds: Mapping[str, FieldKind],
        clock: ShopClock,
        *,
        label_selector: str | None = None,
        name: str = "",
        tally: Callable[[str], None] | None = None,
    ):
        self.fields = {
            name: Field.of(name, spec, kinds.get(name, FieldKind()), label_selector=label_selector)
            for name, spec in specs.items()
        }
        self.clock, self.name, self.tally = clock, name, tally

    @classmethod
    def of(
        cls,
        table: Any,
        kinds: Mapping[str, FieldKind],
        clock: ShopClock,
        *,
        name: str,
        tally: Callable[[str], None] | None = None,
    ) -> FieldReader:
        """The reader of a scenario table with ``fields`` and ``label_selector`` (a
        ``ListSpec``'s rows, a ``PageSpec``), counted under ``name``."""
        return cls(
            table.fields, kinds, clock, label_selector=table.label_selector, name=name, tally=tally
        )

    @property
    def js_specs(self) -> dict[str, list[Any]]:
        return {n: f.js_spec for n, f in self.fields.items()}

    def probe_specs(self) -> dict[str, list[Any]]:
        """As ``js_specs``, with the label beside every value read too (the probe shows it)."""
        return {
            n: [f.selector, f.attribute, f.all, f.label if f.label else "", f.label_selector]
            for n, f in self.fields.items()
        }

    def read(
        self, raw: Mapping[str, list[str] | None], names: list[str] | None = None
    ) -> dict[str, Any]:
        """The typed values of ``names`` (default: every field). Every field is read; the
        first unreadable one raises ``UnreadableField`` (the rest in its ``others``)."""
        chosen = names if names is not None else list(self.fields)
        values: dict[str, Any] = {}
        problems: list[UnreadableField] = []
        for n in chosen:
            try:
                values[n] = self.fields[n].value(raw.get(n), self.clock, raw.get(LABELS + n))  # type: ignore[arg-type]
            except UnreadableField as exc:
                problems.append(exc)
        if self.tally is not None and names is None:
            self.tally(f"{READ}{self.name}")
            for problem in problems:
                self.tally(f"{UNREADABLE}{self.name}.{problem.field}")
        if problems:
            problems[0].others = problems[1:]
            problems[0].values = values
            raise problems[0]
        return values

    def unreadable(
        self, name: str, shown: str, problem: str, values: dict[str, Any] | None = None
    ) -> UnreadableField:
        """Field ``name`` found unreadable after its read (a rule across fields: a receipt's
        details required once the page says there is one), counted as ``read`` counts;
        ``values``: what the read gave."""
        if self.tally is not None:
            self.tally(f"{UNREADABLE}{self.name}.{name}")
        exc = self.fields[name].unreadable(shown, problem)
        exc.values = dict(values or {})
        return exc
