"""A flow's rules: ordered conditions in CEL (Common Expression Language, evaluated by the
``common-expression-language`` package) over what was read of an item, each ending in an
outcome.

A rule's ``when`` sees ``page`` (the fields read on the item's page), ``row`` (its source
row: the list row or the workbook row it came from), ``last`` (a flow that remembers: what
an earlier run read of the item's subject, row and page fields together; empty the first
time), ``now`` (the shop's time, a timestamp), ``today`` (the shop's day,
``"2026-12-06"``) and, in a flow with ``[words]``, ``hits``: the words found in the scanned
text, a list of ``{kind, label, word, text}`` (the class, its Chinese name, the word as the
list has it, the text as written: ``size(hits) > 0``, ``hits.exists(h, h.kind ==
"abuse")``). Typed as the flow declares them: text is a
string, int an int, money a double (yuan), bool a bool, datetime a timestamp.

Besides CEL's own functions a condition may call the ``cel.stdlib`` extensions (strings:
``replace``, ``upperAscii``, ``trim``, ``split`` …; ``math.*``; lists) and two of ours
(``FUNCTIONS``): ``has_word(text, ["破损", "质量"])``, true when one of the keywords occurs in
the text as the robots' keyword lists match (``robots.engine.wording``: full/half width,
case, spaces, brackets and separators do not count; ``*`` for anything; ``re:`` a regular
expression), and ``days_between(a, b)``, the whole days on the shop's calendar from ``a``'s
day to ``b``'s (``days_between(page.signed_at, now) <= 7``). Either one given a value of
another type (a field not read is null) is an error: the rule cannot judge.

The first rule whose ``when`` is true decides: ``act`` (one of the flow's actions),
``hand_over`` (to a person, with a code and a Chinese text), ``record`` (keep what was read)
or ``skip``. Fail closed, whatever the author wrote: a rule that cannot be evaluated (a field
that was not read, a type CEL will not compare, a value that is not true or false) stops the
decision there and hands the item to a person naming the rule and what went wrong; so does no
rule matching. A later rule never decides an item an earlier one could not judge.

``check`` finds what `robots config check` must refuse before a run: a syntax error, a name
the flow does not declare, an action it does not declare, a condition that does not give
true or false or mixes types, evaluated on sample values of the declared types (``samples``:
the binding has no type checker of its own).
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal

import cel
from cel.stdlib import EXTENSIONS, add_stdlib_to_context
from pydantic import BaseModel, ConfigDict, Field, model_validator

from robots.engine.wording import check_entry, first_match

VARIABLES = ("page", "row", "last", "hits", "now", "today")
# the cel.stdlib functions' namespaces (math.abs, sets.contains …): CEL names them as variables
NAMESPACES = sorted({f.split(".")[0] for lib in EXTENSIONS.values() for f in lib if "." in f})
SOURCES = ("page", "row", "last")  # the variables whose members are declared fields
HIT = ("kind", "label", "word", "text")  # what each of ``hits`` holds
Outcome = Literal["act", "hand_over", "record", "skip"]

# a field named in a condition: page.<name> or row.<name>, outside string literals
_MEMBER = re.compile(r"\b(page|row|last)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_STRING = re.compile(r"""(?s)'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\"""")

MAX_SAMPLES = 16  # contexts a condition is tried on by ``check``
# a value of each field type, as CEL sees it, for checking conditions before a run
SAMPLES: Mapping[str, Any] = {
    "text": "示例",
    "int": 1,
    "money": 1.5,
    "bool": False,
    "datetime": datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
}


class Strict(BaseModel):
    """As the scenarios' tables (``robots.config.Strict``): a key nobody reads is refused.
    Declared here, so the rules import nothing that drives a browser."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HandOver(Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")  # beside the text, as every reason code
    text: str = Field(min_length=1)  # what a person reads: Chinese first


class RuleSpec(Strict):
    """One ``[[rules]]`` entry: a condition and exactly one outcome."""

    when: str = Field(min_length=1)
    act: str | None = Field(default=None, min_length=1)
    hand_over: HandOver | None = None
    record: bool = False
    skip: bool = False
    # a word the workbook shows beside the item (新增, 涨价 …): what this rule says of it
    note: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_outcome(self) -> RuleSpec:
        given = [
            name
            for name, on in (
                ("act", self.act is not None),
                ("hand_over", self.hand_over is not None),
                ("record", self.record),
                ("skip", self.skip),
            )
            if on
        ]
        if len(given) != 1:
            said = ", ".join(given) if given else "none"
            raise ValueError(
                f"a rule ends in exactly one of act, hand_over, record = true or skip = true "
                f"(this one: {said})"
            )
        return self

    @property
    def outcome(self) -> Outcome:
        if self.act is not None:
            return "act"
        if self.hand_over is not None:
            return "hand_over"
        return "record" if self.record else "skip"


@dataclass(frozen=True)
class Decision:
    """What the rules made of one item. ``rule``: the 1-based number of the rule that
    decided, or of the rule that could not be evaluated; 0 when no rule matched."""

    outcome: Outcome
    rule: int
    action: str = ""
    code: str = ""  # a hand-over's reason code
    text: str = ""  # and what a person reads
    note: str = ""  # the rule's note (新增, 涨价 …)

    @property
    def acts(self) -> bool:
        return self.outcome == "act"


NO_RULE = "NO_RULE_MATCHED"
RULE_ERROR = "RULE_ERROR"
REASONS = {
    NO_RULE: "没有规则适用，交人工判断",
    RULE_ERROR: "规则无法判断（字段未读到或类型不符），交人工判断",
}


class Rules:
    """A flow's ``[[rules]]``, compiled once; ``decide`` gives each item its outcome."""

    def __init__(self, specs: list[RuleSpec], zone: tzinfo = UTC) -> None:
        self.specs = specs
        self.cel = environment(zone)  # CEL's functions and ours, variables set per item
        self.programs: list[Any] = []
        self.syntax: dict[int, str] = {}  # rule number → why it does not compile
        for n, spec in enumerate(specs, 1):
            try:
                self.programs.append(cel.compile(spec.when))
            except ValueError as exc:
                self.programs.append(None)
                self.syntax[n] = _first_line(exc)

    def decide(
        self,
        page: Mapping[str, Any],
        row: Mapping[str, Any],
        now: datetime,
        last: Mapping[str, Any] | None = None,
        hits: list[dict[str, str]] | None = None,
    ) -> Decision:
        """The first rule whose condition holds; a rule that cannot be evaluated, or none
        holding, hands the item to a person saying which and why. ``last``: what an earlier
        run read of the item's subject (a flow that remembers), empty if nothing."""
        self.cel.update(_context(page, row, now, last, hits))
        for n, spec in enumerate(self.specs, 1):
            holds = self._judge(n)
            if isinstance(holds, str):
                return _cannot(n, spec, holds)
            if holds:
                return _decided(n, spec)
        return Decision("hand_over", 0, code=NO_RULE, text=REASONS[NO_RULE])

    def results(
        self,
        page: Mapping[str, Any],
        row: Mapping[str, Any],
        now: datetime,
        last: Mapping[str, Any] | None = None,
        hits: list[dict[str, str]] | None = None,
    ) -> list[bool | str]:
        """Every rule's result on one item, in order (the probe shows them all): true, false,
        or why it cannot judge."""
        self.cel.update(_context(page, row, now, last, hits))
        return [self._judge(n) for n in range(1, len(self.specs) + 1)]

    def _judge(self, n: int) -> bool | str:
        """Rule ``n``'s condition on the item set in ``self.cel``, or why it cannot be
        evaluated."""
        program = self.programs[n - 1]
        if program is None:
            return self.syntax[n]
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # the binding prints a function's
                holds = program.execute(self.cel)  # error there too; it is returned below
        except KeyError as exc:
            return f"字段 {exc.args[0]} 没有读到 (field not read)"
        except Exception as exc:  # CEL's own errors: a type it will not compare, …
            return _first_line(exc)
        if not isinstance(holds, bool):
            return f"条件的结果不是 true/false，而是 {holds!r}"
        return holds

    def check(
        self,
        fields: Mapping[str, Mapping[str, str]],
        actions: set[str],
        *,
        key: str = "rules",
    ) -> list[tuple[str, str]]:
        """Every mistake in the rules a run would meet on some items only, or on none,
        all at once: (key, what is wrong). ``fields``: the declared type of each field, by
        source (``{"page": {"state": "text"}, "row": {…}}``); ``actions``: the flow's
        declared actions."""
        problems: list[tuple[str, str]] = []
        for n, (spec, program) in enumerate(zip(self.specs, self.programs, strict=True), 1):
            at = f"{key}.{n}.when"
            if program is None:
                problems.append((at, f"not a CEL expression: {self.syntax[n]}"))
                continue
            variables = set(program.references()["variables"]) - set(NAMESPACES)
            variables -= bound(spec.when)  # hits.exists(h, …): h is the macro's own
            unknown = sorted(variables - set(VARIABLES))
            if unknown:
                problems.append(
                    (at, f"names {', '.join(unknown)}: a condition sees {', '.join(VARIABLES)}")
                )
                continue
            if "hits" in variables and "hits" not in fields:
                problems.append((at, "names hits: the flow declares no [words] to find"))
                continue
            named = members(spec.when)
            if any(source == "last" for source, _ in named) and not fields.get("last"):
                problems.append(
                    (at, 'names last: the flow remembers nothing (declare remember = "{…}")')
                )
                continue
            undeclared = [
                f"{source}.{name}" for source, name in named if name not in fields.get(source, {})
            ]
            if undeclared:
                problems.append(
                    (at, f"names {', '.join(undeclared)}, which the flow does not read")
                )
                continue
            for sample in samples(fields, spec.when):
                self.cel.update(sample)
                try:
                    with contextlib.redirect_stderr(io.StringIO()):
                        holds = program.execute(self.cel)
                except Exception as exc:
                    problems.append(
                        (at, f"cannot be evaluated on the declared types: {_first_line(exc)}")
                    )
                    break
                if not isinstance(holds, bool):
                    problems.append((at, f"gives {type(holds).__name__}, not true or false"))
                    break
            if spec.act is not None and spec.act not in actions:
                known = ", ".join(sorted(actions)) or "none"
                problems.append((f"{key}.{n}.act", f"no action {spec.act!r} (declared: {known})"))
        return problems


def samples(fields: Mapping[str, Mapping[str, str]], expression: str) -> list[dict[str, Any]]:
    """Contexts to try a condition on before a run: values of the declared types, a text
    field taking in turn each text the condition names (so ``page.state == "运输中" && …``
    is evaluated past its first test), a bool both ways. A branch no sample reaches is not
    checked here; at run time it fails closed like any error."""
    texts = ["示例", *dict.fromkeys(_literal(m.group(0)) for m in _STRING.finditer(expression))]
    tried = []
    for i in range(min(max(len(texts), 2), MAX_SAMPLES)):
        values = {**SAMPLES, "text": texts[i % len(texts)], "bool": i % 2 == 1, "int": i}
        tried.append(
            {
                "page": {k: values[t] for k, t in fields.get("page", {}).items()},
                "row": {k: values[t] for k, t in fields.get("row", {}).items()},
                "last": {k: values[t] for k, t in fields.get("last", {}).items()},
                # none found, then one of a class the condition names
                "hits": [] if i % 2 == 0 else [dict.fromkeys(HIT, values["text"])],
                "now": SAMPLES["datetime"],
                "today": "2026-01-01",
            }
        )
    return tried


def environment(zone: tzinfo = UTC) -> cel.Context:
    """What a condition may call: CEL's functions, the ``cel.stdlib`` extensions and
    ``FUNCTIONS`` (``days_between`` counting days in ``zone``, the shop's)."""
    context = cel.Context()
    add_stdlib_to_context(context)
    context.add_function("has_word", has_word)
    context.add_function("days_between", lambda a, b: days_between(a, b, zone))
    return context


def has_word(text: Any, words: Any) -> bool:
    """``has_word(text, [keywords])``: one of ``words`` occurs in ``text`` as the robots'
    keyword lists match (``robots.engine.wording``)."""
    if not isinstance(text, str):
        raise TypeError(f"has_word takes a text first, not {_cel_type(text)}")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise TypeError('has_word takes a list of texts second: has_word(page.reason, ["破损"])')
    return first_match(_entries(tuple(words)), text) is not None


def _entries(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(check_entry(w) for w in words)  # a bad re: entry raises, naming it


def days_between(a: Any, b: Any, zone: tzinfo = UTC) -> int:
    """``days_between(a, b)``: days on the shop's calendar from ``a``'s day to ``b``'s (0 on
    the same day, negative when ``b`` is earlier)."""
    for value in (a, b):
        if not isinstance(value, datetime):
            raise TypeError(f"days_between takes two timestamps, not {_cel_type(value)}")
    return (b.astimezone(zone).date() - a.astimezone(zone).date()).days


def _cel_type(value: Any) -> str:
    return "null (a field not read)" if value is None else type(value).__name__


FUNCTIONS = ("has_word", "days_between")


def _literal(quoted: str) -> str:
    """A CEL string literal's text (quotes off; escapes kept as written)."""
    quote = 3 if quoted[:3] in ("'''", '"""') else 1
    return quoted[quote:-quote]


_MACRO = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def bound(expression: str) -> set[str]:
    """The names a condition's macros bind (``hits.exists(h, h.kind == "abuse")``: h)."""
    return {m.group(1) for m in _MACRO.finditer(_STRING.sub('""', expression))}


def members(expression: str) -> list[tuple[str, str]]:
    """The ``page.<name>`` and ``row.<name>`` a condition names, string literals left out."""
    code = _STRING.sub('""', expression)
    return list(dict.fromkeys((m.group(1), m.group(2)) for m in _MEMBER.finditer(code)))


def _context(
    page: Mapping[str, Any],
    row: Mapping[str, Any],
    now: datetime,
    last: Mapping[str, Any] | None = None,
    hits: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "hits": list(hits or []),
        "page": {k: _cel_value(v) for k, v in page.items()},
        "row": {k: _cel_value(v) for k, v in row.items()},
        "last": {k: _cel_value(v) for k, v in (last or {}).items()},
        "now": _cel_value(now),
        "today": now.date().isoformat(),
    }


def _decided(n: int, spec: RuleSpec) -> Decision:
    if spec.hand_over is not None:
        return Decision("hand_over", n, code=spec.hand_over.code, text=spec.hand_over.text)
    return Decision(spec.outcome, n, action=spec.act or "", note=spec.note or "")


def _cannot(n: int, spec: RuleSpec, why: str) -> Decision:
    text = f"规则 {n} 无法判断：{why}（条件 {spec.when}）"
    return Decision("hand_over", n, code=RULE_ERROR, text=text)


def _cel_value(value: Any) -> Any:
    """A read value as CEL takes it: money (Decimal) as a double, a time zone-aware moment
    in UTC (the binding converts no other zone), a day as its ISO text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    called = _FUNCTION_ERROR.search(text)  # one of FUNCTIONS refused its values: its words
    return called.group(1) if called else text.splitlines()[0]


_FUNCTION_ERROR = re.compile(r"Python function call failed: \w+: (.*?)\. Check function arguments")


class Condition:
    """One CEL condition outside the rules, seeing what they see (an action's ``landed``)."""

    def __init__(self, when: str, zone: tzinfo = UTC) -> None:
        self.when = when
        self._rules = Rules([RuleSpec(when=when, skip=True)], zone)

    def holds(self, page: Mapping[str, Any], row: Mapping[str, Any], now: datetime) -> bool | str:
        """True or false on this read, or why it cannot judge."""
        return self._rules.results(page, row, now)[0]

    def check(self, fields: Mapping[str, Mapping[str, str]], *, key: str) -> list[tuple[str, str]]:
        return [(key, why) for _, why in self._rules.check(fields, set())]
