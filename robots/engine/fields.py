"""Reading a page through typed, fail-closed field specs.

A scenario says where each value is (``selector``, ``attribute`` or the text, ``all`` for
every match), how to cut it out (``regex``, a named group ``value`` or the first group), what
the shop's words mean (``map``, e.g. 待商家处理 → WAIT_SELLER_AGREE) and what it is (``type``:
text, int, money, bool with explicit ``true``/``false`` words, datetime with ``formats`` in
the shop's zone). A robot declares each field's default type and whether it is required.

Fail closed: a required element that is not there, text outside its ``map`` or its bool
words, or text that does not parse as its type raises ``UnreadableField``, naming the field,
the selector and what the page showed. The item goes to a person (a business exception): a
value the robot cannot read never leads to an action, and no default ever stands in for it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from robots.engine.clock import ShopClock
from robots.errors import BusinessException

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

# one round trip reads every field: name -> [selector, attribute|null, all] -> list of strings
# (text or attribute of each match; [] when nothing matched)
READ_JS = """
(specs) => {
  const out = {};
  for (const [name, [selector, attribute, all]] of Object.entries(specs)) {
    const els = all ? Array.from(document.querySelectorAll(selector))
                    : [document.querySelector(selector)].filter((e) => e !== null);
    out[name] = els.map((el) => (attribute ? el.getAttribute(attribute) : el.textContent) ?? "");
  }
  return out;
}
"""


class UnreadableField(BusinessException):
    """A value the robot cannot read, does not recognise or cannot parse: a person looks."""

    def __init__(self, field: str, selector: str, shown: str, problem: str) -> None:
        self.field, self.selector, self.shown = field, selector, shown
        super().__init__(
            "UNREADABLE_FIELD",
            f"页面字段无法读取：{field}（选择器 {selector}）{problem}；页面显示 {shown!r}",
        )


@dataclass(frozen=True)
class FieldKind:
    """What a robot expects of one field when the scenario does not say otherwise."""

    type: str = "text"
    required: bool = True
    # the only values the robot knows (after the scenario's ``map``); anything else is
    # unreadable, so a status nobody mapped is never taken for "handled elsewhere"
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    """One field as the scenario describes it (see ``robots.config.FieldSpec``)."""

    name: str
    selector: str
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

    @classmethod
    def of(cls, name: str, spec: Any, kind: FieldKind) -> Field:
        """The scenario's spec, with the robot's defaults where the scenario is silent."""
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
        )

    # -- reading ------------------------------------------------------------------------------
    def unreadable(self, shown: str, problem: str) -> UnreadableField:
        return UnreadableField(self.name, self.selector, shown[:SHOWN], problem)

    def value(self, found: list[str] | None, clock: ShopClock) -> Any:
        """The typed value from what the page showed (``found``: the texts of the matches)."""
        texts = [_clean(t) for t in (found or [])]
        texts = ["" if _key(t) in self.none else t for t in texts]
        if self.all:
            return [self._one(t, clock) for t in texts if t]
        text = texts[0] if texts else ""
        if not text:
            if self.default is not None:
                text = self.default
            elif self.required:
                problem = "页面上找不到该元素" if not texts else "该元素为空"
                raise self.unreadable("", problem)
            else:
                return None
        return self._one(text, clock)

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


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _key(text: str) -> str:
    """How display texts are compared: NFKC (full/half width), case and spaces folded."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


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
    """Every field of one page, read in one round trip and typed, failing closed."""

    def __init__(self, specs: Mapping[str, Any], kinds: Mapping[str, FieldKind], clock: ShopClock):
        self.fields = {
            name: Field.of(name, spec, kinds.get(name, FieldKind())) for name, spec in specs.items()
        }
        self.clock = clock

    @property
    def js_specs(self) -> dict[str, list[Any]]:
        return {n: [f.selector, f.attribute, f.all] for n, f in self.fields.items()}

    def read(
        self, raw: Mapping[str, list[str] | None], names: list[str] | None = None
    ) -> dict[str, Any]:
        """The typed values of ``names`` (default: every field); the first unreadable one
        raises ``UnreadableField``."""
        chosen = names if names is not None else list(self.fields)
        return {n: self.fields[n].value(raw.get(n), self.clock) for n in chosen}
