"""`robots.toml` (the workspace), the scenario pieces every robot shares, and loading.

A bad value fails at once with the file, the dotted key and what was expected
(``ConfigError``, exit code 2), never with ``None`` three calls later. Each robot's own
scenario model lives in its package (``robots/<robot>/scenario.py``); this module never
imports a robot package.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
import unicodedata
from collections.abc import Callable, Collection
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from robots.errors import ConfigError
from robots.runtime.credentials import CredentialStore
from robots.runtime.crontab import cron_trigger

WORKSPACE_FILE = "robots.toml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(Strict):
    ledger: Path = Path("state/ledger.sqlite3")
    reports: Path = Path("reports")
    # everything still waiting for a person, every robot, rewritten after every run
    open_exceptions: Path = Path("reports/open-exceptions.xlsx")
    logs: Path = Path("logs")
    credentials_file: Path = Path("~/.config/robots/credentials.toml")
    vault: Path = Path("credentials/vault.json")


class VaultSettings(Strict):
    key_file: Path = Field(
        default=Path("~/.config/robots/vault.key"), description="outside the workspace, 0600"
    )
    keyring: bool = Field(default=True, description="look for the key in the OS keyring first")


def pages(value: Any) -> int | str:
    """How many browser pages side by side: 1 to 32, or "auto"."""
    if value == "auto" or (type(value) is int and 1 <= value <= 32):
        return value
    raise ValueError('expected a number of pages from 1 to 32, or "auto"')


Pages = Annotated[int | str, PlainValidator(pages)]


class BrowserSettings(Strict):
    executable: Path | None = Field(default=None, description="a Chromium binary; else found")
    headless: bool = True
    # pages side by side: a number, or "auto" (chosen as the run goes from how busy the
    # cores are; engine/pace.py); a scenario's [shop] parallel_pages fixes it for its shop
    parallel_pages: Pages = "auto"
    timeout_ms: int = Field(default=15_000, ge=1_000, le=300_000)
    trace_on_failure: bool = True
    # more Chromium switches, after the robots' own (a proxy, a language, a lean setting)
    args: list[Annotated[str, Field(pattern=r"^--[a-z0-9]")]] = []


class EarlyStop(Strict):
    """When a broken scenario stops a run: more than ``unreadable_share`` of the items
    unreadable, or more than ``elsewhere_share`` of them "handled elsewhere" (the list does
    not show what it should), once ``min_items`` have been worked; and when a run that went
    to its end still exits 1: a field unreadable on more than ``field_share`` of its reads."""

    unreadable_share: float = Field(default=0.5, gt=0, le=1)
    elsewhere_share: float = Field(default=0.5, gt=0, le=1)
    field_share: float = Field(default=0.1, ge=0, le=1)
    min_items: int = Field(default=10, ge=1)


class RetrySettings(Strict):
    attempts: int = Field(default=3, ge=1, le=10)
    wait_initial_s: float = Field(default=0.5, ge=0, le=60)
    wait_max_s: float = Field(default=5.0, ge=0, le=600)


class Target(Strict):
    """One robot pointed at one shop through one scenario file."""

    name: str = Field(min_length=1)
    robot: str = Field(min_length=1, description="a registered robot")
    scenario: Path
    base_url: HttpUrl | None = Field(default=None, description="overrides the scenario's")
    enabled: bool = True

    @field_validator("robot")
    @classmethod
    def _registered(cls, robot: str, info: ValidationInfo) -> str:
        """One of the robots the caller knows (``load_workspace(root, robots=…)``): config
        itself knows none."""
        known = (info.context or {}).get("robots")
        if known is not None and robot not in known:
            raise ValueError(f"not a registered robot (one of {', '.join(known)})")
        return robot


def time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
    return name


def _crontab(expr: str) -> str:
    try:
        cron_trigger(expr)
    except ValueError as exc:
        raise ValueError(
            f"not a cron expression ({exc}); five fields: minute hour day month weekday"
        ) from None
    return expr


class Blackout(Strict):
    """A window in which no schedule fires (e.g. a peak-sale night), in the scheduler's zone."""

    name: str = ""
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Blackout:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Schedule(Strict):
    """When a target's robot runs unattended: a cron expression or a fixed interval."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    target: str = Field(min_length=1)
    cron: Annotated[str, AfterValidator(_crontab)] | None = None
    every_seconds: int | None = Field(default=None, ge=1)
    working_days_only: bool = Field(default=False, description="skip holidays and weekends")
    honour_blackouts: bool = True
    args: list[str] = Field(default_factory=list, description="extra `robots run` options")
    enabled: bool = True

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        if (self.cron is None) == (self.every_seconds is None):
            raise ValueError("give exactly one of cron or every_seconds")
        return self


class SchedulerSettings(Strict):
    timezone: Annotated[str, AfterValidator(time_zone)] = "Asia/Shanghai"
    job_store: Path = Path("scheduler/jobs.sqlite3")
    misfire_grace_s: int = Field(default=600, ge=1, description="a late fire still runs")
    run_time_limit_s: int = Field(default=3600, ge=1, description="then the run is stopped")
    stop_grace_s: int = Field(default=120, ge=1, description="SIGTERM to SIGKILL")
    holidays: str = Field(default="CN", description="country whose working days count")
    days_off: list[date] = Field(default_factory=list, description="the company's own")
    blackouts: list[Blackout] = Field(default_factory=list)


class ClusterSettings(Strict):
    """Many machines, one ledger: robots.toml's ``[cluster]``. ``ROBOTS_LEDGER`` and
    ``ROBOTS_BROKER`` in the environment win over the file (their passwords stay out of it)."""

    ledger: str | None = Field(
        default=None,
        pattern=r"^postgresql(\+psycopg)?://",
        description="the shared ledger, postgresql+psycopg://user@host/db",
    )
    broker: str | None = Field(
        default=None,
        pattern=r"^rediss?://",
        description="the Celery broker the workers take items from, redis://host:6379/0",
    )
    visibility_timeout_s: int = Field(
        default=300,
        ge=5,
        description="an item a worker took and never acknowledged (it died) goes back to "
        "the queue after this long; longer than any one item takes",
    )
    resend_after_s: float = Field(
        default=30,
        gt=0,
        description="the coordinator sends an item again when the queue is empty, no worker "
        "holds it and it has not moved for this long",
    )
    outage_wait_s: float = Field(
        default=600,
        gt=0,
        description="a coordinator waits this long for the ledger or the broker to answer "
        "again before it gives up the run (exit 69, the run recorded as failed); its workers "
        "wait for ever",
    )
    outage_alert_s: float = Field(
        default=60,
        gt=0,
        description="after this long without the ledger or the broker, the coordinator "
        "sends a warning to the [alerts] channels (once per outage) and goes on waiting",
    )


# -- [alerts]: the rules and channels (robots.alerts evaluates and delivers) ----------------
class Webhook(Strict):
    url: str = Field(min_length=8, pattern=r"^https?://")
    format: Literal["generic", "dingtalk", "wecom"] = "generic"
    # DingTalk "加签": the signing secret is the password of this credential (vault, env, file)
    sign_credential: str | None = None


class Email(Strict):
    host: str = Field(min_length=1)
    port: int = Field(default=465, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    sender: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)
    credential: str | None = None  # SMTP login, if the server wants one


class AlertSettings(Strict):
    max_system_exceptions: int = Field(default=0, ge=0)
    max_exceptions: int | None = Field(default=None, ge=0)
    spike_warning: float = Field(default=0.5, gt=0)
    spike_critical: float = Field(default=1.0, gt=0)
    spike_window: int = Field(default=7, ge=1, le=100)
    spike_min_runs: int = Field(default=3, ge=1)
    webhooks: list[Webhook] = Field(default_factory=list)
    email: Email | None = None
    # after every real run, one short message (Chinese) to the same channels: counts, what
    # waits for a person, what is overdue, money awaiting review, the workbooks
    run_summary: bool = True


class ConsoleSettings(Strict):
    """``[console]``: where `robots console` listens. Beyond this machine only when
    ``allow_remote`` says so (put it behind TLS: the console's cookies are plain HTTP)."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8470, ge=1, le=65535)
    allow_remote: bool = False
    session_hours: float = Field(default=12, gt=0, le=24 * 30)


class WorkspaceConfig(Strict):
    paths: Paths = Paths()
    console: ConsoleSettings = ConsoleSettings()
    cluster: ClusterSettings | None = None
    browser: BrowserSettings = BrowserSettings()
    retry: RetrySettings = RetrySettings()
    early_stop: EarlyStop = EarlyStop()
    vault: VaultSettings = VaultSettings()
    alerts: AlertSettings = AlertSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    targets: list[Target] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _schedules_name_targets(self) -> WorkspaceConfig:
        names = {t.name for t in self.targets}
        for s in self.schedules:
            if s.target not in names:
                raise ValueError(
                    f"schedule {s.name!r} names target {s.target!r}, which is not in [[targets]]"
                )
        for what, named in (("schedules", self.schedules), ("targets", self.targets)):
            seen: set[str] = set()
            for item in named:
                if item.name in seen:  # the first would win silently everywhere it is named
                    raise ValueError(f"two {what} are named {item.name!r}: names must differ")
                seen.add(item.name)
        return self


class Workspace:
    """A loaded ``robots.toml`` with its folder, so relative paths resolve against it."""

    def __init__(self, root: Path, config: WorkspaceConfig, file: Path) -> None:
        self.root, self.config, self.file = root, config, file

    def path(self, p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def ledger_url(self) -> str:
        """The ledger every command of this workspace opens: the cluster's PostgreSQL when
        ``[cluster] ledger`` (or ``ROBOTS_LEDGER``) names one, else the SQLite file."""
        cluster = self.config.cluster
        url = os.environ.get("ROBOTS_LEDGER") or (cluster.ledger if cluster else None)
        if url:
            return url.replace("postgresql://", "postgresql+psycopg://", 1)
        path = self.path(self.config.paths.ledger)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    @property
    def broker_url(self) -> str | None:
        """The cluster's Celery broker (``[cluster] broker`` or ``ROBOTS_BROKER``), if any."""
        cluster = self.config.cluster
        return os.environ.get("ROBOTS_BROKER") or (cluster.broker if cluster else None)

    @property
    def cluster(self) -> ClusterSettings:
        return self.config.cluster or ClusterSettings()

    @property
    def lock_dir(self) -> Path:
        """Per-robot run locks, beside the ledger they protect."""
        return self.path(self.config.paths.ledger).parent / "locks"

    def credentials(self) -> CredentialStore:
        p = self.config.paths
        return CredentialStore(
            credentials_file=self.path(p.credentials_file),
            vault_file=self.path(p.vault),
            key_file=self.config.vault.key_file.expanduser(),
            workspace=self.root,
            use_keyring=self.config.vault.keyring,
        )

    def target_named(self, name: str) -> Target:
        for t in self.config.targets:
            if t.name == name:
                return t
        raise ConfigError(f"no target named {name!r}", file=str(self.file), key="targets")

    def schedule(self, name: str) -> Schedule:
        for s in self.config.schedules:
            if s.name == name:
                return s
        raise ConfigError(f"no schedule named {name!r}", file=str(self.file), key="schedules")

    def target(self, robot: str, name: str | None = None) -> Target | None:
        for t in self.config.targets:
            if t.robot == robot and t.enabled and (name is None or t.name == name):
                return t
        return None


# -- what every scenario shares: the shop, its login, where a value sits on a page ----------------
Selector = Annotated[str, Field(min_length=1)]


def _compiles(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return v


Regex = Annotated[str, AfterValidator(_compiles)]  # a Python regular expression that compiles


def display_key(text: str) -> str:
    """How a page's display texts are compared: NFKC (full/half width), case and all white
    space folded (the map's keys, bool words, none words and labels alike)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


# what strptime understands; anything else after a % would be taken literally by strftime
# and never match a page (``%Q`` read nothing, and quietly)
DATETIME_DIRECTIVES = set("aAwdbBmyYHIpMSfzZjUWcxXGuV%")
_SAMPLE_TIME = datetime(2026, 11, 20, 14, 3, 9)  # noqa: DTZ001 - a wall time, as pages show


def datetime_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` cannot read a page's times, or None: an unknown directive, or a format
    that loses the date (no year, month or day: 11月20日 would be read as 1900)."""
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i + 1 : i + 3] if fmt[i + 1 : i + 2] == ":" else fmt[i + 1 : i + 2]
            if directive.lstrip(":") not in DATETIME_DIRECTIVES or not directive:
                return f"unknown directive %{directive or ''} (e.g. %Y-%m-%d %H:%M)"
            i += 1 + len(directive)
            continue
        i += 1
    try:
        back = datetime.strptime(_SAMPLE_TIME.strftime(fmt), fmt)  # noqa: DTZ007 - wall time
    except ValueError as exc:
        return f"does not read back what it writes ({exc})"
    if back.date() != _SAMPLE_TIME.date():
        return "loses the date: it needs the year, month and day (%Y or %y, %m or %b, %d)"
    return None


class FieldSpec(Strict):
    """Where a value sits on a page and how to read it (``robots.engine.fields``): a CSS
    selector; the ``label`` a person reads beside the value (with a selector, the value must
    stand beside it; without one, the value is found by it) and ``label_selector``, which
    elements are labels; the attribute to read (else the text); ``all`` for every match; a
    ``regex`` that cuts the value out (group ``value`` or the first); a ``map`` from the
    shop's words to the robot's values; a ``type`` (text, int, money, bool, datetime; else the
    robot's default); the words for ``true`` and ``false``; datetime ``formats``;
    ``required``; a ``default`` for an empty value; ``none``: texts that mean "no value" (—,
    暂无, 未签收), read as empty. ``{ selector = "…", attribute = "…" }`` alone still works."""

    selector: Selector | None = None
    label: str | None = Field(default=None, min_length=1)
    label_selector: Selector | None = None
    attribute: str | None = None
    all: bool = False
    regex: Regex | None = None
    map: dict[str, str] | None = None
    type: Literal["text", "int", "money", "bool", "datetime"] | None = None
    true: list[str] | None = None
    false: list[str] | None = None
    formats: list[str] | None = None
    required: bool | None = None
    default: str | None = None
    none: list[str] | None = None  # texts that mean "no value" (—, 暂无, 未签收)

    @model_validator(mode="after")
    def _found_somewhere(self) -> FieldSpec:
        if self.selector is None and self.label is None:
            raise ValueError("say where the value is: a selector, a label, or both")
        words = {display_key(w): w for w in self.true or ()}
        both = [w for w in self.false or () if display_key(w) in words]
        if both:
            raise ValueError(f"{both[0]!r} is in both true and false")
        return self


def _positional(spec: FieldSpec) -> FieldSpec:
    if spec.selector is None or spec.label is not None or spec.label_selector is not None:
        raise ValueError("read here by its selector only: give a selector and no label")
    return spec


# a field read by a robot's own page code, where labels are not looked for
PositionalFieldSpec = Annotated[FieldSpec, AfterValidator(_positional)]


PAGERS = ("next_page", "next_button", "load_more")


class ListSpec(Strict):
    """Records listed on a page: each ``row``, the ``fields`` read inside it (selectors are
    relative to the row; ``:scope`` is the row itself, e.g. with ``attribute``; a field's
    ``label`` is looked for inside the row, or as its column's header), and how more
    rows are reached: ``next_page`` (a link followed), ``next_button`` (a button that shows the
    next page in place) or ``load_more`` (a button that appends rows), at most one. ``empty``
    is what the page shows when there are no rows at all: without it, or when it is not
    there, a list whose ``row`` matched nothing stops the run (a wrong selector never reads
    as "nothing to do")."""

    # where the list is, from the shop's address (``{name}``: values the robot fills in); a
    # robot whose lists are found otherwise (a crawl's categories) leaves it out
    path: str | None = Field(default=None, min_length=1)
    row: Selector
    empty: Selector | None = None
    fields: dict[str, FieldSpec] = {}
    # which elements are labels (``th`` for a table's column headers) for row fields that
    # name a label but not their own label_selector
    label_selector: Selector | None = None
    next_page: Selector | None = None
    next_button: Selector | None = None
    load_more: Selector | None = None

    @property
    def row_fields(self) -> dict[str, FieldSpec]:
        """What each row is read with: ``fields`` (a robot's list may add short forms)."""
        return dict(self.fields)

    @model_validator(mode="after")
    def _one_pager(self) -> ListSpec:
        given = [k for k in PAGERS if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give one way to the next rows, not {' and '.join(given)}")
        return self


class PageSpec(Strict):
    """One record's page: where it is (``path`` from the shop's address, ``{name}``: values
    the robot fills in, e.g. ``/orders/{order_id}``), the values read off it (``fields``) and
    which elements are labels for fields that name one (``dt``, ``th``, ``.label``)."""

    path: str = Field(min_length=1)
    label_selector: Selector | None = None
    fields: dict[str, FieldSpec] = {}
    # an element the page shows once its values are in (a table JavaScript fills after the
    # page loads): the read waits for it
    ready: Selector | None = None


class Step(Strict):
    """One step of a page action, as a person would do it: ``click`` an element, ``wait``
    for one to show, ``wait_gone`` until it is gone, ``wait_text`` until a text shows,
    ``choose`` an ``option`` (its label or value) in a select, ``check`` a box, ``fill`` a
    field with ``text``. Exactly one verb per step."""

    click: Selector | None = None
    wait: Selector | None = None
    wait_gone: Selector | None = None
    wait_text: str | None = Field(default=None, min_length=1)
    choose: Selector | None = None
    option: str | None = None
    check: Selector | None = None
    fill: Selector | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _one_verb(self) -> Step:
        verbs = [v for v in STEP_VERBS if getattr(self, v) is not None]
        if len(verbs) != 1:
            raise ValueError(f"a step does exactly one of {', '.join(STEP_VERBS)}; got {verbs}")
        if self.choose is not None and self.option is None:
            raise ValueError("a choose step needs the option to pick")
        if self.fill is not None and self.text is None:
            raise ValueError("a fill step needs the text to type")
        return self

    @property
    def verb(self) -> str:
        return next(v for v in STEP_VERBS if getattr(self, v) is not None)

    @property
    def target(self) -> str:
        return str(getattr(self, self.verb))


STEP_VERBS = ("click", "wait", "wait_gone", "wait_text", "choose", "check", "fill")


class PageAction(Strict):
    """An action on a record's page (approve, link, …) as declared ``steps``, and how its
    result shows: ``success`` (a selector) or ``success_text``; ``error`` (a banner or toast)
    whose text, when it holds one of ``stale_text``, means the record changed under us (the
    HTTP status does not matter); ``reread``: open the record's page again to read the
    result (for pages that do not update in place)."""

    steps: list[Step] = Field(min_length=1)
    success: Selector | None = None
    success_text: str | None = Field(default=None, min_length=1)
    error: Selector
    stale_text: list[str] = Field(default=["已被修改", "已变更", "已发生变化"], min_length=1)
    reread: bool = False

    @model_validator(mode="after")
    def _a_success_sign(self) -> PageAction:
        if self.success is None and self.success_text is None:
            raise ValueError("say how success shows: success (a selector) or success_text")
        return self


class LoginPage(Strict):
    path: str = "/login"
    username: Selector = "#username"
    password: Selector = "#password"
    submit: Selector = "button[type=submit]"
    logged_in: Selector = Field(description="present only once logged in")
    error: Selector = "[role=alert]"
    # two-factor login: the one-time-code field the shop shows after the password, if any
    otp: Selector | None = None
    otp_submit: Selector = "button[type=submit]"


def placeholder(*names: str, others: tuple[str, ...] | None = None) -> Callable[[str], str]:
    """A URL path template must name the values the robot fills in; given ``others`` (values
    it may fill in too), it names nothing else: a name the robot never fills would fail only
    when the first page is opened."""

    def check(path: str) -> str:
        for name in names:
            if "{" + name + "}" not in path:
                raise ValueError(f"must contain {{{name}}}")
        if others is not None:
            allowed = (*names, *others)
            used = {n for _, n, _, _ in string.Formatter().parse(path) if n is not None}
            if extra := used - set(allowed):
                raise ValueError(
                    f"unknown placeholder {{{sorted(extra)[0]}}}; use {', '.join(allowed)}"
                )
        return path

    return check


class Shop(Strict):
    name: str = Field(min_length=1)
    base_url: HttpUrl
    credential: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    timezone: Annotated[str, AfterValidator(time_zone)] = Field(
        default="Asia/Shanghai", description="every 'now' and every time on the pages"
    )
    # pages side by side against this shop (e.g. a shop that allows few sessions at once);
    # else robots.toml's browser.parallel_pages
    parallel_pages: int | None = Field(default=None, ge=1, le=32)


# -- loading -----------------------------------------------------------------------------------
M = TypeVar("M", bound=BaseModel)


def read_toml(file: Path) -> dict[str, Any]:
    """A TOML file as a table; every way it can be unreadable is a ``ConfigError``."""
    try:
        with file.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(file)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder", file=str(file), expected="a .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", file=str(file), expected="a UTF-8 .toml file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror})", file=str(file)) from None


def validate(
    model: type[M], data: dict[str, Any], file: Path, context: dict[str, Any] | None = None
) -> M:
    """The model, or a ``ConfigError`` naming every problem: the first on the first line
    (file, key, what was expected), each other one on a line of its own after it. A model
    with a ``problems()`` method (a robot's scenario) is then checked as a whole too."""
    try:
        loaded = model.model_validate(data, context=context)
    except ValidationError as exc:
        raise_problems(file, [_pydantic_problem(e) for e in exc.errors()])
    problems = getattr(loaded, "problems", None)
    if callable(problems):
        raise_problems(file, problems())
    return loaded


def _pydantic_problem(error: Any) -> tuple[str, str]:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    given = error.get("input")
    shown = "" if isinstance(given, dict | list) or given is None else f", got {given!r}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
    return key, f"{message}{shown}"


def raise_problems(file: Path, problems: list[tuple[str, str]]) -> None:
    """Raise one ``ConfigError`` for every (key, message), if there are any."""
    if not problems:
        return
    (key, first), rest = problems[0], problems[1:]
    if rest:
        noun = "problem" if len(rest) == 1 else "problems"
        first += f" (and {len(rest)} more {noun}:)" + "".join(
            f"\n  {file}: {k}: {m}" for k, m in rest
        )
    raise ConfigError(first, file=str(file), key=key)


def _blocked_by_file(path: Path) -> Path | None:
    """The first existing regular file on the way to ``path`` (so a folder cannot be made)."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
    return None


def _check_paths(ws: Workspace) -> None:
    """Where a run will write (ledger, logs, reports) must be usable before any work starts:
    a reports path that is a file would otherwise fail after the work, and lose the run's
    hand-overs with it."""
    p = ws.config.paths
    folders = {"paths.logs": ws.path(p.logs), "paths.reports": ws.path(p.reports)}
    folders["paths.ledger"] = ws.path(p.ledger).parent
    folders["paths.open_exceptions"] = ws.path(p.open_exceptions).parent
    for key, folder in folders.items():
        blocker = _blocked_by_file(folder)
        if blocker is not None:
            raise ConfigError(
                f"{blocker} is a file, so the folder {folder} cannot be made",
                file=str(ws.file),
                key=key,
                expected="a folder path (or one that can be created)",
            )
    if ws.path(p.open_exceptions).is_dir():
        raise ConfigError(
            f"{ws.path(p.open_exceptions)} is a folder",
            file=str(ws.file),
            key="paths.open_exceptions",
            expected="the path of an .xlsx file",
        )
    ledger = ws.path(p.ledger)
    if ledger.is_dir():
        raise ConfigError(
            f"{ledger} is a folder",
            file=str(ws.file),
            key="paths.ledger",
            expected="the path of the ledger's SQLite file",
        )


def load_scenario_file(
    model: type[M], file: Path, *, base_url: str | None = None, **set_: tuple[str, str, Any]
) -> M:
    """Read and check a scenario file; ``base_url`` (from a target or ``--base-url``) wins
    over the file's ``[shop] base_url``."""
    data = read_toml(file)
    if base_url is not None:
        data.setdefault("shop", {})["base_url"] = base_url
    for table, key, value in set_.values():
        data.setdefault(table, {})[key] = value
    return validate(model, data, file)


def requires(required: set[str], what: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A validator for a table that must name every one of ``required`` (selectors, columns)."""

    def check(table: dict[str, Any]) -> dict[str, Any]:
        missing = sorted(required - table.keys())
        if missing:
            raise ValueError(f"missing {what}: {', '.join(missing)}")
        return table

    return check


def load_workspace(root: Path, *, robots: Collection[str]) -> Workspace:
    """``robots.toml`` in ``root``, checked; every target names one of ``robots`` (the
    registry's names: ``robots.registry.workspace`` is how commands load one)."""
    file = root / WORKSPACE_FILE
    config = validate(WorkspaceConfig, read_toml(file), file, {"robots": tuple(robots)})
    ws = Workspace(root.resolve(), config, file)
    _check_paths(ws)
    for i, target in enumerate(config.targets):
        if not ws.path(target.scenario).is_file():
            raise ConfigError(
                f"scenario file {target.scenario} does not exist",
                file=str(file),
                key=f"targets.{i}.scenario",
                expected="a path to a scenario .toml",
            )
    return ws
