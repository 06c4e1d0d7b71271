"""What the refunds robot knows about one refund request, as read from the back office."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

ROBOT = "refunds"  # the robot's name in the ledger, the registry and the CLI

# statuses a seller acts on (Taobao-style names)
WAIT_SELLER_AGREE = "WAIT_SELLER_AGREE"
WAIT_SELLER_CONFIRM_GOODS = "WAIT_SELLER_CONFIRM_GOODS"
WAIT_SELLER_SEND_GOODS = "WAIT_SELLER_SEND_GOODS"
# every value the robot knows; a scenario maps its shop's words onto these (``map``), and a
# status, order status or type outside them is unreadable: the refund goes to a person
REFUND_STATUSES = (
    WAIT_SELLER_AGREE,
    "WAIT_BUYER_RETURN_GOODS",
    WAIT_SELLER_CONFIRM_GOODS,
    "SELLER_REFUSE_BUYER",
    "CLOSED",
    "SUCCESS",
)
ORDER_STATUSES = (
    "WAIT_BUYER_PAY",
    WAIT_SELLER_SEND_GOODS,
    "SELLER_CONSIGNED_PART",
    "WAIT_BUYER_CONFIRM_GOODS",
    "TRADE_BUYER_SIGNED",
    "TRADE_FINISHED",
    "TRADE_CLOSED",
    "TRADE_CLOSED_BY_TAOBAO",
)
REFUND_TYPES = ("REFUND", "PRICE_PROTECTION", "PRICE_DIFFERENCE")


@dataclass(frozen=True)
class WarehouseReceipt:
    """The warehouse's record of a returned parcel: what came back, under which waybill."""

    waybill: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class RefundRequest:
    """A refund request (售后单) with its order line, buyer profile and return logistics."""

    refund_id: str
    version: str
    status: str
    order_id: str
    buyer_nick: str
    has_good_return: bool
    refund_type: str
    refund_fee: Decimal
    payment: Decimal
    refund_sku: str
    refund_quantity: int
    line_sku: str
    line_quantity: int
    category: str
    reason: str
    intervention: bool
    open_refunds_on_line: int
    order_status: str
    signed_at: datetime | None
    created_at: datetime
    deadline: datetime
    has_gift: bool
    shared_discount: bool
    buyer_orders_90d: int
    buyer_refunds_90d: int
    buyer_blacklisted: bool
    return_sid: str
    receipt: WarehouseReceipt | None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the back office changes the record."""
        return f"{self.status}/{self.version}"


@dataclass(frozen=True)
class ListedRefund:
    """One row of the back office's refund list; ``problem`` says why the row could not be
    read (its status unknown: the refund goes to a person, naming the field)."""

    refund_id: str
    version: str
    status: str
    problem: Exception | None = None  # an UnreadableField (kept free of imports: pure model)
    one_by_one: bool = False  # a batch did not settle it: approved from its own page

    @property
    def fingerprint(self) -> str:
        return f"{self.status}/{self.version}"
