"""The returns robot's scenario: the back office's search and parcel pages, the warehouse
terminal (window titles, keys, where to click), its export, and the matching rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from robots import config
from robots.engine.fields import field_problems
from robots.returns.fields import PARCEL_FIELDS, ROW_FIELDS
from robots.returns.matching import MatchRules


class TerminalSpec(config.Strict):
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
    # an export that wrote no file where it was told is tried again (it changes nothing)
    export_tries: int = Field(default=3, ge=1, le=10)
    credential: str = Field(default="demo-warehouse", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


CANDIDATE_ATTRIBUTES = set(ROW_FIELDS)  # a search row says where every one of them is


class SearchPage(config.Strict):
    """The back office's order / after-sales search: one row per order, each value read by a
    field spec inside the row (``[search.fields]``, as a list's fields), or, the short form,
    every value in an attribute of the row (``[search.attributes]``). ``empty``: what the page
    shows when nothing was found (a search with neither rows nor it stops the run).

    What else the shop's search can do, each optional: ``fuzzy_path`` finds waybills one
    character apart; ``narrow_path`` narrows a phone-tail or name search to orders holding a
    SKU (``{sku}``) paid since a day (``{since}``, ``lookback_days`` before the parcel
    arrived); ``next_page`` is the link to a search's next page, followed up to ``max_pages``.
    Without ``next_page`` a search showing ``page_rows`` rows counts as cut. A parcel whose
    candidates came from a cut search is never linked on softer evidence than its waybill."""

    path: Annotated[str, AfterValidator(config.placeholder("q", others=()))]
    fuzzy_path: Annotated[str, AfterValidator(config.placeholder("q", others=()))] | None = None
    narrow_path: (
        Annotated[str, AfterValidator(config.placeholder("q", "sku", others=("since",)))] | None
    ) = None
    row: config.Selector
    empty: config.Selector | None = None
    next_page: config.Selector | None = None
    max_pages: int = Field(default=20, ge=1, le=500)
    page_rows: int = Field(default=50, ge=1, le=1000)
    lookback_days: int = Field(default=365, ge=1, le=3650)
    fields: dict[str, config.FieldSpec] | None = None
    attributes: dict[str, str] | None = None
    # which elements are labels (``th``: the column headers) for fields naming a label
    label_selector: config.Selector | None = None

    @model_validator(mode="after")
    def _every_value(self) -> SearchPage:
        if (self.fields is None) == (self.attributes is None):
            raise ValueError("give [search.fields] or [search.attributes], one of them")
        missing = CANDIDATE_ATTRIBUTES - set(self.row_fields)
        if missing:
            which = "fields" if self.fields is not None else "attributes"
            raise ValueError(f"{which}: missing {', '.join(sorted(missing))}")
        return self

    @property
    def row_fields(self) -> dict[str, config.FieldSpec]:
        if self.fields is not None:
            return dict(self.fields)
        return {
            name: config.FieldSpec(selector=":scope", attribute=attribute)
            for name, attribute in (self.attributes or {}).items()
        }


class ParcelPage(config.Strict):
    path: Annotated[str, AfterValidator(config.placeholder("parcel_id"))]
    linked_to: config.PositionalFieldSpec


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


class ExportSpec(config.Strict):
    """The terminal's export workbook: its sheet and the header of each column."""

    sheet: str | None = None
    columns: Annotated[dict[str, str], AfterValidator(config.requires(EXPORT_COLUMNS, "columns"))]
    file_name: str = Field(default="parcels.xlsx", pattern=r"^[A-Za-z0-9_.-]+\.xlsx$")


class ReturnsScenario(config.Strict):
    shop: config.Shop
    login: config.LoginPage
    search: SearchPage
    parcel_page: ParcelPage
    terminal: TerminalSpec = TerminalSpec()
    export: ExportSpec
    matching: MatchRules = MatchRules()

    def problems(self) -> list[tuple[str, str]]:
        """Search-row field specs the robot cannot use (``field_problems``), before a run."""
        return field_problems(self.search.row_fields, ROW_FIELDS, key="search.fields")


def load_returns_scenario(file: Path, *, base_url: str | None = None) -> ReturnsScenario:
    return config.load_scenario_file(ReturnsScenario, file, base_url=base_url)


load = load_returns_scenario  # what the spec calls (RobotSpec.load_scenario)
# every value the robot reads, by the scenario table it is in (`robots scenario fields`)
FIELD_TABLES = {"search.fields": ROW_FIELDS, "parcel_page": PARCEL_FIELDS}
