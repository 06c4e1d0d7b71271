"""The stalled-shipment check's workbook: its columns, from the ledger (reports.items)."""

from __future__ import annotations

from robots.reports.items import Column, ItemsReport

REPORT = ItemsReport(
    robot="stalled",
    title="物流停滞",
    columns=(
        Column("订单号 order", "order_id", 22),
        Column("物流状态 state", "state", 16, names={"moving": "在途", "delivered": "已签收"}),
        Column("最新轨迹 last moved", "last_at", 18, "time"),
        Column("停滞天数 days", "days", 10),
    ),
    reasons={"STALLED": "物流停滞"},
    unit="单",
)
queue_sheet = REPORT.queue_sheet
write_run = REPORT.write_run
