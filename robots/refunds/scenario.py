"""The refunds robot's scenario: where the list, detail page and approve button are, and the
policy's numbers. Loaded and checked at once (file, key, expected)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from robots import config
from robots.engine.fields import field_problems
from robots.refunds.fields import FIELDS, ROW_FIELDS
from robots.refunds.policy import STATUS_BEFORE, RefundRules, ReviewRules

Problems = list[tuple[str, str]]  # (key, what is wrong)
# the statuses the robot acts from: what shop.pending_statuses may name
WORKED_STATUSES = tuple(dict.fromkeys(STATUS_BEFORE.values()))


class ListPage(config.ListSpec):
    """The refund list. With ``{status}`` in ``path`` the robot opens one list per pending
    status; without it, one list, and each row's status is read (``fields.status``, mapped to
    the robot's codes) to keep the pending ones. Row fields: ``refund_id`` (required),
    ``status``, ``version`` (without one, refunds handed to a person are read again each run)."""

    path: str = Field(min_length=1)
    # what ``{status}`` stands for in the path, per pending status, where the shop's list
    # takes its own words or numbers (?tab=1); without it, the status code itself
    status_values: dict[str, str] = Field(default_factory=dict)
    # the short form of earlier scenarios: the id, version and status in the row's attributes
    refund_id_attribute: str | None = None
    version_attribute: str | None = None
    status_attribute: str | None = None

    @property
    def per_status(self) -> bool:
        return "{status}" in self.path

    def lists(self, pending: tuple[str, ...]) -> list[tuple[str | None, tuple[str, ...]]]:
        """The lists a run reads: (what ``{status}`` is, the statuses its rows may show), one
        per distinct value; one list, (None, pending), when the path names no status."""
        if not self.per_status:
            return [(None, pending)]
        grouped: dict[str, list[str]] = {}
        for status in pending:
            grouped.setdefault(self.status_values.get(status, status), []).append(status)
        return [(value, tuple(statuses)) for value, statuses in grouped.items()]

    @property
    def row_fields(self) -> dict[str, config.FieldSpec]:
        fields = dict(self.fields)
        for name in ("refund_id", "version", "status"):
            attribute = getattr(self, f"{name}_attribute")
            if attribute:
                fields[name] = config.FieldSpec(selector=":scope", attribute=attribute)
        return fields

    @model_validator(mode="after")
    def _readable_rows(self) -> ListPage:
        for name in ("refund_id", "version", "status"):
            if getattr(self, f"{name}_attribute") and name in self.fields:
                raise ValueError(f"give fields.{name} or {name}_attribute, not both")
        fields = self.row_fields
        if "refund_id" not in fields:
            raise ValueError("fields.refund_id is required: where a row shows the refund's id")
        if "status" not in fields and not self.per_status:
            raise ValueError("fields.status is required when path has no {status}")
        return self


REQUIRED_FIELDS = set(FIELDS)  # a scenario says where every one of them is


OLD_APPROVE = ("approve_button", "confirm_button", "error_banner", "success_banner")


class DetailPage(config.Strict):
    """A refund's page: every field, and the approve action as steps (``[detail.approve]``)
    or, in the short form of earlier scenarios, ``approve_button`` then ``confirm_button``
    with ``error_banner`` and ``success_banner``."""

    path: Annotated[str, AfterValidator(config.placeholder("refund_id"))]
    # which elements are labels (``dt``, ``th``, ``.label``) for fields that name a label
    # but not their own label_selector
    label_selector: config.Selector | None = None
    fields: dict[str, config.FieldSpec]  # every one of FIELDS (RefundScenario.problems)
    approve: config.PageAction | None = None
    approve_button: config.Selector | None = None
    confirm_button: config.Selector | None = None
    error_banner: config.Selector | None = None
    success_banner: config.Selector | None = None

    @model_validator(mode="after")
    def _one_approve(self) -> DetailPage:
        old = [k for k in OLD_APPROVE if getattr(self, k) is not None]
        if self.approve is not None and old:
            raise ValueError(f"give [detail.approve] or {', '.join(old)}, not both")
        if self.approve is None and len(old) != len(OLD_APPROVE):
            missing = [k for k in OLD_APPROVE if k not in old]
            raise ValueError(f"say how to approve: [detail.approve] steps, or {', '.join(missing)}")
        return self

    @property
    def approve_action(self) -> config.PageAction:
        if self.approve is not None:
            return self.approve
        return config.PageAction(
            steps=[
                config.Step(click=self.approve_button),
                config.Step(click=self.confirm_button),
            ],
            success=self.success_banner,
            error=self.error_banner or "",
        )


class BatchApprove(config.Strict):
    """批量同意, where the shop's list offers it. The robot still reads and decides every
    refund on its own page; the approvals whose action is in ``actions`` are then sent
    ``size`` at a time: ``path`` (with ``{ids}``, joined by ``separator``) lists exactly
    those refunds with the list's own rows (``[list]``: row, fields, which must include the
    version), the robot ticks ``pick`` in each row still showing the version it decided on,
    does ``action``'s steps, and verifies each refund by its row on the page after.
    Without this table every approval is sent from the refund's own page."""

    actions: list[Literal["agree_refund", "agree_return", "confirm_refund"]] = Field(min_length=1)
    path: Annotated[str, AfterValidator(config.placeholder("ids", others=()))]
    separator: str = Field(default=",", min_length=1)
    size: int = Field(default=20, ge=2, le=500)
    pick: config.Selector
    action: config.PageAction


class RefundShop(config.Shop):
    """The shop, and the statuses whose refunds the robot works (its codes: a shop's own
    words or tab numbers go in ``map`` and ``list.status_values``)."""

    pending_statuses: tuple[str, ...] = WORKED_STATUSES


class RefundScenario(config.Strict):
    shop: RefundShop
    login: config.LoginPage
    list: ListPage
    detail: DetailPage
    batch_approve: BatchApprove | None = None
    policy: RefundRules = RefundRules()
    review: ReviewRules = ReviewRules()

    def problems(self) -> Problems:
        """Every mistake that would skip work or read a page wrong, found before a run:
        statuses the robot does not work, field specs it cannot use (``field_problems``)."""
        found: Problems = []
        known = ", ".join(WORKED_STATUSES)
        pending = self.shop.pending_statuses
        for i, status in enumerate(pending):
            if status not in WORKED_STATUSES:
                found.append(
                    (
                        f"shop.pending_statuses.{i}",
                        f"{status!r} is not a status the refunds robot works (one of {known}); "
                        "a list path that takes the shop's own values says so in "
                        "list.status_values",
                    )
                )
            elif status in pending[:i]:
                found.append((f"shop.pending_statuses.{i}", f"{status!r} is listed twice"))
        values = self.list.status_values
        for status in values:
            if status not in pending:
                found.append(
                    (
                        f"list.status_values.{status}",
                        f"{status!r} is not one of shop.pending_statuses ({', '.join(pending)})",
                    )
                )
        if values and self.list.per_status:
            for status in pending:
                if status not in values:
                    found.append(
                        (
                            "list.status_values",
                            f"no value for {status}: name what {{status}} is for every pending "
                            "status",
                        )
                    )
        if values and not self.list.per_status:
            found.append(("list.status_values", "the list path has no {status} to fill in"))
        shared = [s for _, s in self.list.lists(pending) if len(s) > 1]
        if shared and "status" not in self.list.row_fields:
            found.append(
                (
                    "list.fields.status",
                    f"{' and '.join(shared[0])} share one list: say where a row shows its status",
                )
            )
        found += field_problems(
            self.detail.fields, FIELDS, key="detail.fields", required=REQUIRED_FIELDS
        )
        found += field_problems(self.list.row_fields, ROW_FIELDS, key="list.fields")
        return found

    @model_validator(mode="after")
    def _batch_rows_show_versions(self) -> RefundScenario:
        missing = [f for f in ("version", "status") if f not in self.list.row_fields]
        if self.batch_approve is not None and missing:
            raise ValueError(
                f"batch_approve needs list.fields.{missing[0]}: a row is ticked only while it "
                "shows the version the robot decided on, and verified by its status after"
            )
        return self


def load_refund_scenario(file: Path, *, base_url: str | None = None) -> RefundScenario:
    return config.load_scenario_file(RefundScenario, file, base_url=base_url)


load = load_refund_scenario  # what the spec calls (RobotSpec.load_scenario)
# every value the robot reads, by the scenario table it is in (`robots scenario fields`)
FIELD_TABLES = {"detail.fields": FIELDS, "list.fields": ROW_FIELDS}
