"""The refunds robot's scenario: where the list, detail page and approve button are, and the
policy's numbers. Loaded and checked at once (file, key, expected)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from robots import config
from robots.refunds.policy import RefundRules


class ListPage(config.Strict):
    path: Annotated[str, AfterValidator(config.placeholder("status"))]
    row: config.Selector
    refund_id_attribute: str
    version_attribute: str
    status_attribute: str
    next_page: config.Selector


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


class DetailPage(config.Strict):
    path: Annotated[str, AfterValidator(config.placeholder("refund_id"))]
    fields: Annotated[
        dict[str, config.FieldSpec],
        AfterValidator(config.requires(REQUIRED_FIELDS, "field selectors")),
    ]
    approve_button: config.Selector
    confirm_button: config.Selector
    error_banner: config.Selector
    success_banner: config.Selector


class RefundScenario(config.Strict):
    shop: config.Shop
    login: config.LoginPage
    list: ListPage
    detail: DetailPage
    policy: RefundRules = RefundRules()


def load_refund_scenario(file: Path, *, base_url: str | None = None) -> RefundScenario:
    return config.load_scenario_file(RefundScenario, file, base_url=base_url)


load = load_refund_scenario  # what the registry calls (robots.engine.spec)
