"""A flow file (``scenarios/<shop>/flows/<name>.toml``): a job declared in TOML that the engine
runs like a robot (``robots run flow``).

- ``title``: the job as ops read it (物流异常);
- ``[shop]``, ``[login]``: as in every scenario;
- ``[source]``: where the items come from, a list page in the robots' list vocabulary (rows,
  fields inside each row, pager, empty marker) or a workbook / CSV a person prepared
  (``FileSource``), and ``key``, the item key template from its row fields (``{today}``:
  the shop's day, for a daily check);
- ``[page]``: each item's page (``path`` filled from its row) and the fields read on it, each
  typed (``type``: text, int, money, bool, datetime) and read fail-closed;
- ``[[rules]]``: the decision in CEL (``robots.flow.rules``);
- ``[actions.<name>]``: what an ``act`` rule does, exactly once (``FlowAction``).

A field's ``map`` names every value it may read: a word the map does not know is unreadable,
never a value a rule could take for another. ``problems()`` is what `robots config check`
says about the file, all at once.
"""

from __future__ import annotations

import string
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from robots import config
from robots.engine.fields import FieldKind, field_problems
from robots.flow.rules import HIT, Condition, Rules, RuleSpec

Problems = list[tuple[str, str]]
# the workbook's columns beside the fields
RESERVED = ("rule", "outcome", "note", "word_class", "word", "word_text")
# what a key template may name besides the row's fields: the shop's day, the run (every run
# its own items: a flow that reads the same things each time, comparing with `last`)
KEY_VALUES = ("today", "run")
# what a list's path may name besides its for_each values: the shop's day and the one before
# (``/cs/log?since={yesterday}``: a log read from yesterday on, nothing missed at midnight)
LIST_VALUES = ("today", "yesterday")


def list_days(today: date) -> dict[str, str]:
    """The values of ``LIST_VALUES`` on the shop's ``today``."""
    return {"today": today.isoformat(), "yesterday": (today - timedelta(days=1)).isoformat()}


class FlowSource(config.ListSpec):
    """The list the items come from, and each item's key. ``for_each``: values the list's
    path names, one list read per value (``path = "/refunds?status={status}"``, ``for_each
    = { status = ["WAIT_SELLER_AGREE", "WAIT_SELLER_CONFIRM_GOODS"] }``), as a person filters
    the back office's list; each row carries the value it was listed under."""

    key: str = Field(min_length=1)  # "{order_id}@{today}"
    for_each: dict[str, list[Annotated[str, Field(min_length=1)]]] = Field(default_factory=dict)

    def listings(self) -> list[dict[str, str]]:
        """The values of each list to read: one dict per combination of ``for_each``."""
        combos: list[dict[str, str]] = [{}]
        for name, values in self.for_each.items():
            combos = [{**c, name: v} for c in combos for v in dict.fromkeys(values)]
        return combos


class FileColumn(config.Strict):
    """One column of a source file: its ``header`` (as the file's first row shows it), read
    as a field is (``type``, ``map``, ``none``, ``regex``, ``formats``, ``required``, …)."""

    header: str = Field(min_length=1)
    type: Literal["text", "int", "money", "bool", "datetime"] | None = None
    map: dict[str, str] | None = None
    none: list[str] | None = None
    regex: config.Regex | None = None
    formats: list[str] | None = None
    required: bool | None = None
    default: str | None = None
    true: list[str] | None = None
    false: list[str] | None = None

    def field_spec(self) -> config.FieldSpec:
        given = self.model_dump(exclude={"header"}, exclude_none=True)
        return config.FieldSpec(selector=":scope", **given)


class FileSource(config.Strict):
    """Items from a workbook (.xlsx) or CSV a person prepared (``robots.flow.source``):
    ``file`` (from the flow file's folder; `--source-file` overrides it), ``sheet`` (default:
    the first), each of ``columns`` found by its header, and each row's key."""

    file: Path
    sheet: str | None = Field(default=None, min_length=1)
    key: str = Field(min_length=1)
    columns: dict[str, FileColumn] = Field(min_length=1)

    @property
    def fields(self) -> dict[str, config.FieldSpec]:
        return {name: c.field_spec() for name, c in self.columns.items()}

    @property
    def headers(self) -> dict[str, str]:
        return {name: c.header for name, c in self.columns.items()}


def _source_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "file" if "file" in value else "list"
    return "file" if isinstance(value, FileSource) else "list"


Source = Annotated[
    Annotated[FlowSource, Tag("list")] | Annotated[FileSource, Tag("file")],
    Discriminator(_source_kind),
]


TEMPLATED = ("text", "option", "wait_text")  # what a step may fill in from the item's values


def step_names(action: config.PageAction) -> list[str]:
    """The item's values an action's steps fill in (``text = "{price}"``); ValueError for a
    template that does not parse."""
    named: list[str] = []
    for step in action.steps:
        for attr in TEMPLATED:
            text = getattr(step, attr)
            if text:
                named += [n for _, n, _, _ in string.Formatter().parse(text) if n is not None]
    return list(dict.fromkeys(named))


def filled(action: FlowAction, values: dict[str, Any]) -> FlowAction:
    """``action`` with its steps' ``{name}`` filled from the item's ``values`` (``{{`` and
    ``}}`` for a brace itself)."""
    texts = {k: _text(v) for k, v in values.items()}
    steps = [
        step.model_copy(
            update={a: getattr(step, a).format(**texts) for a in TEMPLATED if getattr(step, a)}
        )
        for step in action.steps
    ]
    return action.model_copy(update={"steps": steps})


class FlowAction(config.PageAction):
    """One of the flow's ``[actions.<name>]``: the steps a person takes on the item's page
    and how success shows (as every scenario's actions: ``steps``, ``success``, ``error``,
    ``stale_text``), then what keeps it exactly once: ``guard``, the page's fields read again
    right before the press that must still read as they did when the rules decided, and
    ``landed``, a condition in CEL on the page read after the press (or after a kill) that
    is true once the action took. ``money``: a page field (money) the action moves, drawn on
    ``daily_cap`` (yuan) a day."""

    guard: list[str] = Field(default_factory=list)
    landed: str = Field(min_length=1)
    money: str | None = None
    daily_cap: Decimal | None = Field(default=None, gt=0)


class WordClass(config.Strict):
    """One class of words a QC team keeps (违规承诺): its Chinese ``label`` and its ``words``,
    matched as the page scan's banned words are (``robots.engine.words``: full width, case,
    symbols or spaces inside, traditional characters, a character repeated)."""

    label: str = Field(min_length=1)
    words: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class Rise(config.Strict):
    """When a class's hits rise: the last hour's count against the average of the ``hours``
    before it, given at least ``least`` hits an hour on average (enough volume to judge);
    ``warning`` and ``severe`` are the rises that alert (0.5: +50 %)."""

    hours: int = Field(default=6, ge=1, le=72)
    least: float = Field(default=5, gt=0)
    warning: float = Field(default=0.5, gt=0)
    severe: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _severe_above_warning(self) -> Rise:
        if self.severe < self.warning:
            raise ValueError("severe is a larger rise than warning")
        return self


class FlowWords(config.Strict):
    """``[words]``: the words a flow finds in one text field of each item (``text``), by
    class (``classes``), phrases never flagged (``allow``), and, with ``time`` (the item's
    datetime field) and ``rise``, each class's hits counted by the hour in the ledger and an
    alert when the last hour rises."""

    text: str = Field(min_length=1)
    time: str | None = None
    allow: list[str] = Field(default_factory=list)
    classes: dict[str, WordClass] = Field(min_length=1)
    rise: Rise | None = None


class FlowReport(config.Strict):
    """``[report]``: the workbook's field columns (``columns``: which, in order; all by
    default), a column's Chinese header (``headers``; default: the field's label or its
    file column's header), and ``money``, the field the open-exceptions queue shows as an
    item's money (default: the money field of the flow's actions, if one)."""

    columns: list[str] | None = Field(default=None, min_length=1)
    headers: dict[str, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)
    money: str | None = None


class FlowFile(config.Strict):
    title: str = Field(min_length=1)
    # what the job does, Chinese first then English (`robots flow list`, the catalogue)
    description: str = ""
    shop: config.Shop
    login: config.LoginPage | None = None
    source: Source
    page: config.PageSpec | None = None
    rules: list[RuleSpec] = Field(min_length=1)
    actions: dict[str, FlowAction] = Field(default_factory=dict)
    report: FlowReport = Field(default_factory=FlowReport)
    words: FlowWords | None = None
    # what the flow remembers each item's reads by, from one run to the next ("{sku}"): the
    # rules see the last run's as ``last``
    remember: str | None = Field(default=None, min_length=1)
    # pages opened a second, at most (a shop that is not ours; per process on the cluster)
    requests_per_second: float | None = Field(default=None, gt=0, le=1000)

    @property
    def money_field(self) -> str | None:
        """The field an item's money is: ``[report] money``, else the actions' own."""
        if self.report.money is not None:
            return self.report.money
        moved = {a.money for a in self.actions.values() if a.money is not None}
        return moved.pop() if len(moved) == 1 else None

    @property
    def row_kinds(self) -> dict[str, FieldKind]:
        return kinds_of(self.source.fields)

    @property
    def page_kinds(self) -> dict[str, FieldKind]:
        return kinds_of(self.page.fields) if self.page is not None else {}

    def problems(self) -> Problems:
        found = field_problems(self.source.fields, self.row_kinds, key="source.fields")
        if self.page is not None:
            found += field_problems(self.page.fields, self.page_kinds, key="page.fields")
        found += self._key_problems()
        if isinstance(self.source, FlowSource):
            found += self._list_problems(self.source)
        if self.page is not None:
            try:
                unknown = sorted(set(path_names(self.page.path)) - set(self.row_names))
            except ValueError as exc:
                return [*found, ("page.path", f"not a path template: {exc}")]
            if unknown:
                found.append(
                    ("page.path", f"names {', '.join(unknown)}, which the source rows do not have")
                )
        types = {
            "page": {n: k.type for n, k in self.page_kinds.items()},
            "row": {n: k.type for n, k in self.row_kinds.items()},
        }
        if self.remember is not None:
            types["last"] = {**types["row"], **types["page"]}
            found += self._remember_problems()
        if self.words is not None:
            types["hits"] = dict.fromkeys(HIT, "text")
            found += self._words_problems({**types["row"], **types["page"]})
        found += Rules(self.rules).check(types, set(self.actions))
        for name, action in self.actions.items():
            found += self._action_problems(name, action, types)
        return found + self._report_problems(types)

    def _words_problems(self, fields: dict[str, str]) -> Problems:
        from robots.engine.words import BannedWord, WordMatcher

        words = self.words  # each class's words, as the run's matcher will take them
        assert words is not None
        found: Problems = []
        if fields.get(words.text) != "text":
            found.append(("words.text", f"no text field {words.text!r} to find words in"))
        if words.time is not None and fields.get(words.time) != "datetime":
            found.append(("words.time", f"no datetime field {words.time!r} to count hits at"))
        if words.rise is not None and words.time is None:
            found.append(("words.rise", "a rise is counted by the hour: give words.time"))
        for name, kind in words.classes.items():
            if not name.isidentifier():
                found.append((f"words.classes.{name}", "a class's name is letters, digits, _"))
            try:
                WordMatcher(BannedWord(w, name, "high") for w in kind.words)
            except ValueError as exc:
                found.append((f"words.classes.{name}.words", str(exc)))
        return found

    def _report_problems(self, types: dict[str, dict[str, str]]) -> Problems:
        fields = {**types["row"], **types["page"]}
        found = [
            (f"{where}.{n}", f"{n!r} is the workbook's own column: name the field otherwise")
            for where, table in (("source.fields", types["row"]), ("page.fields", types["page"]))
            for n in table
            if n in RESERVED
        ]
        report = self.report
        named = [("report.columns", n) for n in report.columns or ()]
        named += [(f"report.headers.{n}", n) for n in report.headers]
        found += [
            (key, f"no field {name!r} (the flow reads {', '.join(fields)})")
            for key, name in named
            if name not in fields
        ]
        if report.money is not None and fields.get(report.money) != "money":
            found.append(("report.money", f"{report.money!r} is not a money field of the flow"))
        return found

    def _action_problems(
        self, name: str, action: FlowAction, types: dict[str, dict[str, str]]
    ) -> Problems:
        at = f"actions.{name}"
        if self.page is None:
            return [(at, "an action is taken on the item's page: declare [page]")]
        page = types["page"]
        found = [
            (f"{at}.guard", f"no page field {f!r} to guard (the page reads {', '.join(page)})")
            for f in action.guard
            if f not in page
        ]
        found += Condition(action.landed).check(types, key=f"{at}.landed")
        try:
            named = step_names(action)
        except ValueError as exc:
            found.append((f"{at}.steps", f"a step's text is not a template: {exc}"))
            named = []
        known = {*self.row_names, *page}
        for name in named:
            if name not in known:
                found.append((f"{at}.steps", f"fills in {{{name}}}, which the flow does not read"))
        if action.money is not None and page.get(action.money) != "money":
            found.append((f"{at}.money", f"{action.money!r} is not a money field of the page"))
        if (action.money is None) != (action.daily_cap is None):
            found.append((at, "money and daily_cap go together: the cap is on that field"))
        return found

    @property
    def row_names(self) -> list[str]:
        """What each source row holds: its fields, and the ``for_each`` values it was
        listed under."""
        listed = self.source.for_each if isinstance(self.source, FlowSource) else {}
        return [*self.source.fields, *(n for n in listed if n not in self.source.fields)]

    @staticmethod
    def _list_problems(source: FlowSource) -> Problems:
        if source.path is None:
            return [("source", "say where the items come from: a list page's path, or a file")]
        try:
            named = set(path_names(source.path))
        except ValueError as exc:
            return [("source.path", f"not a path template: {exc}")]
        found = []
        if named - set(source.for_each) - set(LIST_VALUES):
            missing = ", ".join(sorted(named - set(source.for_each) - set(LIST_VALUES)))
            found.append(("source.path", f"names {missing}: give its values in source.for_each"))
        for name in sorted(set(source.for_each) - named):
            said = f"the path names no {{{name}}}: one list would be read twice"
            found.append((f"source.for_each.{name}", said))
        for name, values in source.for_each.items():
            if not values:
                found.append((f"source.for_each.{name}", "no values: no list would be read"))
        return found

    def _remember_problems(self) -> Problems:
        assert self.remember is not None
        try:
            named = [n for _, n, _, _ in string.Formatter().parse(self.remember) if n]
        except ValueError as exc:
            return [("remember", f"not a template: {exc}")]
        if not named:
            return [("remember", "names no field: every item would share one memory")]
        unknown = sorted(set(named) - set(self.row_names))
        if unknown:
            say = ", ".join(self.row_names)
            return [("remember", f"names {', '.join(unknown)}; it may name the rows' {say}")]
        return []

    def subject(self, row: dict[str, Any]) -> str | None:
        """What an item's reads are remembered by (``remember`` filled from its row)."""
        if self.remember is None:
            return None
        return self.remember.format(**{k: _text(v) for k, v in row.items()})

    def _key_problems(self) -> Problems:
        known = set(self.row_names) | set(KEY_VALUES)
        try:
            named = [n for _, n, _, _ in string.Formatter().parse(self.source.key) if n]
        except ValueError as exc:
            return [("source.key", f"not a key template: {exc}")]
        if not named:
            return [("source.key", "names no field: two items would share one key")]
        unknown = sorted(set(named) - known)
        if unknown:
            say = ", ".join(sorted(known))
            return [("source.key", f"names {', '.join(unknown)}; it may name {say}")]
        return []


def kinds_of(specs: dict[str, config.FieldSpec]) -> dict[str, FieldKind]:
    """What the flow declares of each field: its type, whether it must be read, and (from
    its ``map``) the only values it may read."""
    return {
        name: FieldKind(
            type=spec.type or "text",
            required=True if spec.required is None else spec.required,
            choices=tuple(dict.fromkeys(spec.map.values())) if spec.map else (),
        )
        for name, spec in specs.items()
    }


def path_names(path: str) -> list[str]:
    """The ``{name}`` a page path fills in from an item's row."""
    return [n for _, n, _, _ in string.Formatter().parse(path) if n]


def item_key(flow: FlowFile, name: str, row: dict[str, Any], today: str, run: str = "") -> str:
    """The ledger key of a row's item: the flow's name, then its key template filled in."""
    values = {k: _text(v) for k, v in row.items()}
    return f"{name}:{flow.source.key.format(**values, today=today, run=run)}"


def _text(value: Any) -> str:
    if value is None:  # an optional value not given: empty in a key or a memory
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def load(file: Path, *, base_url: str | None = None, source_file: Path | None = None) -> FlowFile:
    """Load a flow file; its source file resolves against the flow's folder, or is
    ``source_file`` (`robots run flow --source-file`)."""
    flow = config.load_scenario_file(FlowFile, file, base_url=base_url)
    source = flow.source
    if source_file is not None and not isinstance(source, FileSource):
        raise config.ConfigError(
            "--source-file is for a flow whose [source] is a file; this one reads a list page",
            file=str(file),
            key="source",
        )
    if isinstance(source, FileSource):
        chosen = source_file.resolve() if source_file else file.resolve().parent / source.file
        flow = flow.model_copy(update={"source": source.model_copy(update={"file": chosen})})
    return flow


def check(flow: FlowFile) -> None:
    """Open the file a flow reads its items from, if it does (`robots config check`): read
    whole, as a run reads it."""
    from robots.flow.source import read_rows
    from robots.runtime.clock import ShopClock

    source = flow.source
    if isinstance(source, FileSource):
        clock = ShopClock(flow.shop.timezone)
        read_rows(source.file, source.sheet, source.fields, source.headers, flow.row_kinds, clock)


FIELD_TABLES: dict[str, dict[str, FieldKind]] = {}  # a flow declares its own fields
