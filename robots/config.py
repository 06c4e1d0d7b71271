"""`robots.toml` (the workspace) and scenario files, validated when they are loaded.

A bad value fails at once with the file, the dotted key and what was expected
(``ConfigError``, exit code 2), never with ``None`` three calls later.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from robots.alerts import AlertSettings
from robots.errors import ConfigError
from robots.pagescan.prices import PriceRules
from robots.refunds.policy import RefundRules
from robots.returns.matching import MatchRules
from robots.runtime.credentials import CredentialStore

WORKSPACE_FILE = "robots.toml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(Strict):
    ledger: Path = Path("state/ledger.sqlite3")
    reports: Path = Path("reports")
    logs: Path = Path("logs")
    credentials_file: Path = Path("~/.config/robots/credentials.toml")
    vault: Path = Path("credentials/vault.json")


class VaultSettings(Strict):
    key_file: Path = Field(
        default=Path("~/.config/robots/vault.key"), description="outside the workspace, 0600"
    )
    keyring: bool = Field(default=True, description="look for the key in the OS keyring first")


class BrowserSettings(Strict):
    executable: Path | None = Field(default=None, description="a Chromium binary; else found")
    headless: bool = True
    parallel_pages: int = Field(default=1, ge=1, le=16)
    timeout_ms: int = Field(default=15_000, ge=1_000, le=300_000)
    trace_on_failure: bool = True


class RetrySettings(Strict):
    attempts: int = Field(default=3, ge=1, le=10)
    wait_initial_s: float = Field(default=0.5, ge=0, le=60)
    wait_max_s: float = Field(default=5.0, ge=0, le=600)


class Target(Strict):
    """One robot pointed at one shop through one scenario file."""

    name: str = Field(min_length=1)
    robot: str = Field(pattern=r"^(refunds|pagescan|returns)$")
    scenario: Path
    base_url: HttpUrl | None = Field(default=None, description="overrides the scenario's")
    enabled: bool = True


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
    return name


CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """Crontab weekdays (0 or 7 = Sunday, 1 = Monday) as day names: APScheduler 3 counts
    0 = Monday, so "1-5" would otherwise mean Tuesday to Saturday."""
    if not any(ch.isdigit() for ch in field):
        return field  # *, or names: the same in both
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            low, high = int(a), int(b)
        else:
            low = high = int(span)
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high):
            raise ValueError(f"weekday {part!r} out of 0-7")
        days.update(d % 7 for d in range(low, high + 1, int(step) if step else 1))
    return ",".join(CRON_DAYS[d] for d in sorted(days))


def cron_trigger(expr: str, tz: ZoneInfo | None = None) -> Any:
    """An APScheduler CronTrigger that means what the same line means in a crontab."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"got {len(fields)} fields")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_cron_weekdays(weekday),
        timezone=tz,
    )


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
    timezone: Annotated[str, AfterValidator(_time_zone)] = "Asia/Shanghai"
    job_store: Path = Path("scheduler/jobs.sqlite3")
    misfire_grace_s: int = Field(default=600, ge=1, description="a late fire still runs")
    run_time_limit_s: int = Field(default=3600, ge=1, description="then the run is stopped")
    stop_grace_s: int = Field(default=120, ge=1, description="SIGTERM to SIGKILL")
    holidays: str = Field(default="CN", description="country whose working days count")
    days_off: list[date] = Field(default_factory=list, description="the company's own")
    blackouts: list[Blackout] = Field(default_factory=list)


class WorkspaceConfig(Strict):
    paths: Paths = Paths()
    browser: BrowserSettings = BrowserSettings()
    retry: RetrySettings = RetrySettings()
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
        seen = [s.name for s in self.schedules]
        if len(seen) != len(set(seen)):
            raise ValueError("two schedules share a name")
        return self


class Workspace:
    """A loaded ``robots.toml`` with its folder, so relative paths resolve against it."""

    def __init__(self, root: Path, config: WorkspaceConfig, file: Path) -> None:
        self.root, self.config, self.file = root, config, file

    def path(self, p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else self.root / p

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


# -- the refunds scenario -------------------------------------------------------------------
Selector = Annotated[str, Field(min_length=1)]


class FieldSpec(Strict):
    """Where a value sits on a page: a CSS selector, and the attribute to read (else text)."""

    selector: Selector
    attribute: str | None = None


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


def _placeholder(name: str) -> Callable[[str], str]:
    """A URL path template must name the value the robot fills in."""

    def check(path: str) -> str:
        if "{" + name + "}" not in path:
            raise ValueError(f"must contain {{{name}}}")
        return path

    return check


class ListPage(Strict):
    path: Annotated[str, AfterValidator(_placeholder("status"))]
    row: Selector
    refund_id_attribute: str
    version_attribute: str
    status_attribute: str
    next_page: Selector


REQUIRED_FIELDS = {
    "refund_id",
    "version",
    "status",
    "order_id",
    "buyer_nick",
    "has_good_return",
    "refund_type",
    "refund_fee",
    "payment",
    "refund_sku",
    "refund_quantity",
    "line_sku",
    "line_quantity",
    "category",
    "reason",
    "intervention",
    "open_refunds_on_line",
    "order_status",
    "signed_at",
    "created_at",
    "deadline",
    "has_gift",
    "shared_discount",
    "buyer_orders_90d",
    "buyer_refunds_90d",
    "buyer_blacklisted",
    "return_sid",
    "receipt",
    "receipt_waybill",
    "receipt_sku",
    "receipt_quantity",
}


class DetailPage(Strict):
    path: Annotated[str, AfterValidator(_placeholder("refund_id"))]
    fields: dict[str, FieldSpec]
    approve_button: Selector
    confirm_button: Selector
    error_banner: Selector
    success_banner: Selector

    @field_validator("fields")
    @classmethod
    def _all_fields(cls, v: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        missing = sorted(REQUIRED_FIELDS - v.keys())
        if missing:
            raise ValueError(f"missing field selectors: {', '.join(missing)}")
        return v


class Shop(Strict):
    name: str = Field(min_length=1)
    base_url: HttpUrl
    credential: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    pending_statuses: tuple[str, ...] = ("WAIT_SELLER_AGREE", "WAIT_SELLER_CONFIRM_GOODS")


class RefundScenario(Strict):
    shop: Shop
    login: LoginPage
    list: ListPage
    detail: DetailPage
    policy: RefundRules = RefundRules()


# -- the page-scan scenario -----------------------------------------------------------------
class Storefront(Strict):
    name: str = Field(min_length=1)
    base_url: HttpUrl


class Crawl(Strict):
    """How to walk the storefront like a shopper: categories, their pages, the products."""

    start_path: str = "/"
    category_link: Selector
    product_link: Selector
    next_page: Selector
    requests_per_second: float = Field(default=5.0, gt=0, le=1000)
    block_resources: tuple[str, ...] = ("image", "font", "media")
    parallel_pages: int | None = Field(default=None, ge=1, le=16, description="else robots.toml")


class ProductFields(Strict):
    """Where each part of a product page is. SKU fields are relative to ``sku_row``
    (``:scope`` is the row itself)."""

    ready: Selector = Field(description="present once the JavaScript-rendered part has loaded")
    product_id: FieldSpec
    title: FieldSpec
    subtitle: FieldSpec | None = None
    image_alts: FieldSpec | None = Field(default=None, description="every match is read")
    detail: FieldSpec | None = None
    promotion: FieldSpec | None = None
    page_price: FieldSpec | None = None
    sku_row: Selector
    sku_code: FieldSpec
    sku_name: FieldSpec
    sku_price: FieldSpec
    sku_final_price: FieldSpec
    sku_list_price: FieldSpec | None = None


class PriceListColumns(Strict):
    """Header names of the price-list columns; the optional ones may be absent."""

    sku: str = "SKU"
    style: str = "款号"
    approved: str = "核准价"
    cost: str = "成本价"
    floor: str | None = "最低价"
    list_price: str | None = "吊牌价"
    size_premium: str | None = "尺码加价"


class PriceListSpec(Strict):
    file: Path = Field(description="relative to the scenario file")
    sheet: str | None = Field(default=None, description="default: the first sheet")
    header_row: int = Field(default=1, ge=1)
    columns: PriceListColumns = PriceListColumns()


class WordFiles(Strict):
    banned: Path = Field(default=Path("banned-words.txt"), description="relative to the scenario")
    allowlist: Path | None = Path("allowlist.txt")
    fields: tuple[str, ...] = ("title", "subtitle", "image_alt", "detail", "sku_name")
    context_chars: int = Field(default=12, ge=0, le=200)

    @field_validator("fields")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(v) - {"title", "subtitle", "image_alt", "detail", "sku_name"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        return v


class PageScanScenario(Strict):
    shop: Storefront
    crawl: Crawl
    product: ProductFields
    price_list: PriceListSpec
    words: WordFiles = WordFiles()
    price_rules: PriceRules = PriceRules()


# -- the returns scenario (the warehouse terminal part) ---------------------------------------
class TerminalSpec(Strict):
    """How the warehouse's desktop client looks: window titles, where to click, which keys."""

    window: str = Field(default="仓库管理终端", min_length=1, description="in every main title")
    login_window: str = "登录"
    main_window: str = "无名件"
    username_at: tuple[int, int] = (190, 30)  # a click into the user field, window-relative
    export_menu: tuple[str, ...] = ("f10", "enter")  # keys that open the export dialog
    export_dialog: str = "导出无名件"
    link_menu: tuple[str, ...] = ("ctrl+l",)
    link_dialog: str = "关联包裹"
    link_parcel_at: tuple[int, int] = (230, 22)  # a click into the parcel field
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    credential: str = Field(default="demo-warehouse", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


CANDIDATE_ATTRIBUTES = {
    "order_id",
    "refund_id",
    "buyer_name",
    "buyer_nick",
    "phone",
    "district",
    "lines",
    "refunded",
    "outbound_waybill",
    "return_waybill",
    "refund_created_at",
    "signed_at",
    "linked",
}


class SearchPage(Strict):
    """The back office's order / after-sales search: one row per order, values in attributes."""

    path: Annotated[str, AfterValidator(_placeholder("q"))]
    row: Selector
    attributes: dict[str, str]

    @field_validator("attributes")
    @classmethod
    def _all(cls, v: dict[str, str]) -> dict[str, str]:
        missing = sorted(CANDIDATE_ATTRIBUTES - v.keys())
        if missing:
            raise ValueError(f"missing attributes: {', '.join(missing)}")
        return v


class ParcelPage(Strict):
    path: Annotated[str, AfterValidator(_placeholder("parcel_id"))]
    linked_to: FieldSpec


EXPORT_COLUMNS = {
    "parcel_id",
    "waybill",
    "courier",
    "sender_name",
    "sender_phone",
    "district",
    "items",
    "received_at",
}


class ExportSpec(Strict):
    """The terminal's export workbook: its sheet and the header of each column."""

    sheet: str | None = None
    columns: dict[str, str]
    file_name: str = Field(default="parcels.xlsx", pattern=r"^[A-Za-z0-9_.-]+\.xlsx$")

    @field_validator("columns")
    @classmethod
    def _all(cls, v: dict[str, str]) -> dict[str, str]:
        missing = sorted(EXPORT_COLUMNS - v.keys())
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
        return v


class ReturnsScenario(Strict):
    shop: Shop
    login: LoginPage
    search: SearchPage
    parcel_page: ParcelPage
    terminal: TerminalSpec = TerminalSpec()
    export: ExportSpec
    matching: MatchRules = MatchRules()


# -- loading -----------------------------------------------------------------------------------
M = TypeVar("M", bound=BaseModel)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None


def _validate(model: type[M], data: dict[str, Any], file: Path) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        given = first.get("input")
        shown = "" if isinstance(given, dict | list) or given is None else f", got {given!r}"
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        raise ConfigError(f"{message}{shown}{more}", file=str(file), key=key) from None


def load_workspace(root: Path) -> Workspace:
    file = root / WORKSPACE_FILE
    config = _validate(WorkspaceConfig, _read_toml(file), file)
    ws = Workspace(root.resolve(), config, file)
    for i, target in enumerate(config.targets):
        if not ws.path(target.scenario).is_file():
            raise ConfigError(
                f"scenario file {target.scenario} does not exist",
                file=str(file),
                key=f"targets.{i}.scenario",
                expected="a path to a scenario .toml",
            )
    return ws


def load_pagescan_scenario(
    file: Path, *, base_url: str | None = None, price_list: Path | None = None
) -> PageScanScenario:
    """Load a page-scan scenario; its file paths resolve against the scenario's folder."""
    data = _read_toml(file)
    if base_url is not None:
        data.setdefault("shop", {})["base_url"] = base_url
    if price_list is not None:
        data.setdefault("price_list", {})["file"] = str(price_list.resolve())
    scenario = _validate(PageScanScenario, data, file)
    here = file.resolve().parent
    words = scenario.words
    return scenario.model_copy(
        update={
            "price_list": scenario.price_list.model_copy(
                update={"file": here / scenario.price_list.file.expanduser()}
            ),
            "words": words.model_copy(
                update={
                    "banned": here / words.banned.expanduser(),
                    "allowlist": here / words.allowlist.expanduser() if words.allowlist else None,
                }
            ),
        }
    )


def load_returns_scenario(file: Path, *, base_url: str | None = None) -> ReturnsScenario:
    data = _read_toml(file)
    if base_url is not None:
        data.setdefault("shop", {})["base_url"] = base_url
    return _validate(ReturnsScenario, data, file)


def load_scenario(robot: str, file: Path) -> BaseModel:
    """Whichever scenario kind ``robot`` uses (for `robots config check`)."""
    if robot == "pagescan":
        return load_pagescan_scenario(file)
    if robot == "returns":
        return load_returns_scenario(file)
    return load_refund_scenario(file)


def load_refund_scenario(file: Path, *, base_url: str | None = None) -> RefundScenario:
    data = _read_toml(file)
    if base_url is not None:
        data.setdefault("shop", {})["base_url"] = base_url
    return _validate(RefundScenario, data, file)
