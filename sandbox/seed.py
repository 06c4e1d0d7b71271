"""Deterministic synthetic shop data, with the expected robot decision for every refund.

Each refund is drawn from one *branch* of the refund policy (``../shared/DOMAIN.md`` §1) and is
built so that it breaks exactly the rules its branch names (none, one, or for a few, two),
so the expected decision is known without running any policy code. The ground truth is
written beside the database for tests and benchmarks; the robots never read it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox import catalog, db, live, logistics, merch, service, warehouse
from sandbox.clock import shop_now

SAFE_REASONS = ["多拍/拍错/不想要", "七天无理由", "不喜欢/不合适", "尺码不合适"]
MERCHANT_FAULT_REASONS = [
    "商品破损",
    "质量问题",
    "漏发/少件",
    "发错商品",
    "与描述不符",
    "物流停滞/签收异常",
]
EXCLUDED_CATEGORIES = ["内衣", "定制"]
CATEGORIES = {
    "T恤": ("TS", ["纯棉圆领短袖T恤", "宽松印花T恤", "冰丝速干T恤"], (39, 129)),
    "连衣裙": ("DR", ["碎花雪纺连衣裙", "法式收腰连衣裙", "针织长袖连衣裙"], (99, 289)),
    "牛仔裤": ("JN", ["高腰直筒牛仔裤", "修身小脚牛仔裤", "阔腿拖地牛仔裤"], (89, 259)),
    "外套": ("CT", ["连帽防风夹克", "双面羊绒大衣", "轻薄羽绒服"], (159, 299)),
    "鞋": ("SH", ["复古运动鞋", "帆布休闲鞋", "真皮乐福鞋"], (99, 279)),
    "配饰": ("AC", ["真丝小方巾", "针织毛线帽", "牛皮腰带"], (29, 99)),
    "内衣": ("UW", ["无痕文胸套装", "莫代尔内裤三条装"], (49, 159)),
    "定制": ("CU", ["定制刺绣卫衣", "定制姓名T恤"], (89, 199)),
}
RETURNABLE = [c for c in CATEGORIES if c not in EXCLUDED_CATEGORIES]
COLORS = [("BLK", "黑色"), ("WHT", "白色"), ("NAV", "藏青"), ("GRY", "灰色"), ("KHA", "卡其")]
SIZES = ["S", "M", "L", "XL"]
COURIERS = {
    "韵达快递": lambda r: "".join(r.choice("0123456789") for _ in range(13)),
    "顺丰速运": lambda r: "SF" + "".join(r.choice("0123456789") for _ in range(12)),
    "中通快递": lambda r: "7" + "".join(r.choice("0123456789") for _ in range(13)),
    "EMS": lambda r: "E" + "".join(r.choice("0123456789") for _ in range(11)) + "CN",
    "德邦快递": lambda r: "".join(r.choice("0123456789") for _ in range(10)),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英华玉兰"
DISTRICTS = [
    "浙江省杭州市西湖区",
    "浙江省杭州市余杭区",
    "上海市浦东新区",
    "上海市徐汇区",
    "北京市朝阳区",
    "广东省深圳市南山区",
    "广东省广州市天河区",
    "江苏省南京市鼓楼区",
    "四川省成都市武侯区",
    "湖北省武汉市洪山区",
    "福建省厦门市思明区",
    "山东省青岛市市南区",
]
PEOPLE = warehouse.People(COURIERS, SURNAMES, GIVEN, DISTRICTS)


@dataclass(frozen=True)
class Branch:
    """One way a refund can turn out: expected decision, the action or the reason code."""

    name: str
    weight: float
    expected: str  # "approve" | "person" | "untouched"
    code: str  # action for approvals, reason code for a person, "" when untouched
    also: tuple[str, ...] = ()  # further rules it breaks (a person sees every one)


# Weights: about 80 % of open refunds are eligible, as in DOMAIN.md's model case (">80 % of
# refund orders handled without a person"); the rest spread over every hand-over reason.
BRANCHES = [
    Branch("eligible_refund_only", 46, "approve", "agree_refund"),
    Branch("eligible_return_request", 18, "approve", "agree_return"),
    Branch("eligible_return_received", 16, "approve", "confirm_refund"),
    Branch("return_not_received", 3, "person", "RETURN_NOT_RECEIVED"),
    Branch("return_mismatch", 0.5, "person", "RETURN_MISMATCH"),
    Branch("over_amount_cap", 3, "person", "OVER_AMOUNT_CAP"),
    # two rules at once: over the cap AND the goods not back (a reviewer may waive the cap,
    # never the missing goods)
    Branch("over_cap_not_received", 1, "person", "OVER_AMOUNT_CAP", ("RETURN_NOT_RECEIVED",)),
    Branch("risky_buyer", 2, "person", "BUYER_RISK"),
    Branch("merchant_fault", 4, "person", "MERCHANT_FAULT"),
    Branch("platform_intervention", 1, "person", "PLATFORM_INTERVENTION"),
    Branch("partial_refund", 1.5, "person", "PARTIAL_REFUND"),
    Branch("outside_return_window", 1, "person", "OUTSIDE_RETURN_WINDOW"),
    Branch("excluded_category", 1, "person", "EXCLUDED_CATEGORY"),
    Branch("refund_only_after_shipping", 1, "person", "REFUND_ONLY_AFTER_SHIPPING"),
    Branch("gift_or_shared_discount", 0.5, "person", "GIFT_OR_SHARED_DISCOUNT"),
    # a price-protection refund pays part of the line: partial as well
    Branch("price_protection", 0.5, "person", "NOT_A_PLAIN_REFUND", ("PARTIAL_REFUND",)),
    Branch("amount_exceeds_paid", 0.25, "person", "AMOUNT_EXCEEDS_PAID"),
    Branch("sku_mismatch", 0.25, "person", "SKU_OR_QUANTITY_MISMATCH"),
    Branch("several_open_refunds", 0.25, "person", "SEVERAL_OPEN_REFUNDS"),
    Branch("history", 9, "untouched", ""),
]
URGENT_SHARE = 0.04  # refunds whose platform deadline falls within the next 12 hours
HISTORY_STATUSES = ["SUCCESS", "CLOSED", "SELLER_REFUSE_BUYER", "WAIT_BUYER_RETURN_GOODS"]


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _money(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.01")))


class _Generator:
    def __init__(self, seed: int, now: datetime) -> None:
        self.r = random.Random(seed)
        self.now = now
        self.refund_seq = 0
        self.order_seq = 0
        self.buyers: dict[str, tuple] = {}

    # -- people ---------------------------------------------------------------------------
    def buyer(self, *, risky: bool = False) -> str:
        r = self.r
        nick = f"tb_{r.randrange(16**8):08x}"
        while nick in self.buyers:  # at 100k buyers a repeat is likely; it would merge profiles
            nick = f"tb_{r.randrange(16**8):08x}"
        name = r.choice(SURNAMES) + "".join(r.choice(GIVEN) for _ in range(r.choice((1, 2))))
        phone = f"1{r.choice('3578')}{r.randrange(10**9):09d}"
        orders = r.randint(3, 30)
        blacklisted = 0
        if risky:
            kind = r.choice(["many_refunds", "high_rate", "blacklist"])
            if kind == "many_refunds":
                orders, refunds = r.randint(12, 40), r.randint(3, 6)
            elif kind == "high_rate":
                orders = r.randint(1, 2)
                refunds = orders  # a 100 % refund rate while staying under the count limit
            else:
                refunds, blacklisted = r.randint(0, 1), 1
        else:
            refunds = r.randint(0, 1)
        self.buyers[nick] = (nick, name, phone, r.choice(DISTRICTS), blacklisted, orders, refunds)
        return nick

    # -- goods ------------------------------------------------------------------------------
    def product(self, categories: list[str]) -> tuple[str, str, str, Decimal]:
        r = self.r
        category = r.choice(categories)
        prefix, titles, (lo, hi) = CATEGORIES[category]
        color, color_name = r.choice(COLORS)
        size = r.choice(SIZES)
        style = r.randrange(len(titles))
        sku = f"{prefix}{2301 + style:04d}-{color}-{size}"
        title = f"{titles[style]} {color_name} {size}"
        price = Decimal(r.randint(lo, hi)) - Decimal("0.10") * r.choice((0, 1, 1))
        return category, sku, title, price

    def next_refund_id(self) -> str:
        self.refund_seq += 1
        return f"RF{20261100000000 + self.refund_seq * 7 + self.r.randrange(7)}"

    def next_order_id(self) -> str:
        self.order_seq += 1
        return f"TB{3900000000000000 + self.order_seq * 13 + self.r.randrange(13)}"


def generate(seed: int, refunds: int, now: datetime) -> Iterator[tuple[str, Any]]:
    """Yield ``(table, row)`` pairs, then ``("truth", dict)`` for each refund."""
    g = _Generator(seed, now)
    r = g.r
    names = [b.name for b in BRANCHES]
    weights = [b.weight for b in BRANCHES]
    by_name = {b.name: b for b in BRANCHES}
    made = 0
    while made < refunds:
        branch = by_name[r.choices(names, weights)[0]]
        if branch.name == "several_open_refunds" and refunds - made < 2:
            branch = by_name["eligible_refund_only"]
        rows, truths = _refund_case(g, branch)
        yield from rows
        for truth in truths:
            yield "truth", truth
        made += len(truths)
    for buyer in g.buyers.values():
        yield "buyers", buyer


def _refund_case(g: _Generator, branch: Branch) -> tuple[list[tuple[str, tuple]], list[dict]]:
    r, now, name = g.r, g.now, branch.name
    returnable = name in {
        "eligible_return_request",
        "eligible_return_received",
        "return_not_received",
        "over_cap_not_received",
        "return_mismatch",
        "outside_return_window",
        "excluded_category",
    }
    categories = EXCLUDED_CATEGORIES if name == "excluded_category" else RETURNABLE
    category, sku, title, unit_price = g.product(categories)
    quantity = 2 if r.random() < 0.12 else 1
    payment = unit_price * quantity
    if name in ("over_amount_cap", "over_cap_not_received"):
        payment = Decimal(r.randint(320, 1299)) - Decimal("0.10") * r.choice((0, 1))
    else:
        # keep every refund that should be eligible under the default ¥300 cap
        while payment > 300:
            quantity = 1
            payment = unit_price = Decimal(r.randint(59, 289)) - Decimal("0.10")
    buyer = g.buyer(risky=name == "risky_buyer")
    order_id = g.next_order_id()
    line_id = f"{order_id}-1"
    paid_at = now - timedelta(days=r.uniform(1, 25))

    # order and logistics state
    signed_at: datetime | None
    shipped_at: datetime | None
    out_company: str | None
    out_sid: str | None
    if returnable or name in {"refund_only_after_shipping", "history"}:
        days_since_signed = (
            r.uniform(10, 25) if name == "outside_return_window" else r.uniform(0.2, 5)
        )
        signed_at = now - timedelta(days=days_since_signed)
        shipped_at = signed_at - timedelta(days=r.uniform(1, 3))
        paid_at = min(paid_at, shipped_at - timedelta(hours=r.uniform(2, 30)))
        order_status = "TRADE_FINISHED" if days_since_signed > 3 else "WAIT_BUYER_CONFIRM_GOODS"
        if name == "refund_only_after_shipping":
            signed_at = None  # shipped, still on its way
            shipped_at = now - timedelta(days=r.uniform(0.5, 3))
            paid_at = shipped_at - timedelta(hours=r.uniform(2, 30))
            order_status = "WAIT_BUYER_CONFIRM_GOODS"
        out_company = r.choice(list(COURIERS))
        out_sid = COURIERS[out_company](r)
    else:
        paid_at = now - timedelta(hours=r.uniform(1, 60))
        signed_at = shipped_at = None
        order_status = "WAIT_SELLER_SEND_GOODS"
        out_company = out_sid = None
    has_gift = shared_discount = 0
    if name == "gift_or_shared_discount":
        if r.random() < 0.5:
            has_gift = 1
        else:
            shared_discount = 1
    line = (
        order_id,
        line_id,
        buyer,
        sku,
        title,
        category,
        quantity,
        _money(payment),
        order_status,
        _fmt(paid_at),
        shipped_at and _fmt(shipped_at),
        signed_at and _fmt(signed_at),
        out_company,
        out_sid,
        has_gift,
        shared_discount,
    )
    rows: list[tuple[str, tuple]] = [("order_lines", line)]

    # the refund itself
    reason = r.choice(SAFE_REASONS)
    if name == "merchant_fault":
        reason = r.choice(MERCHANT_FAULT_REASONS)
    elif not returnable and reason == "七天无理由":
        reason = "多拍/拍错/不想要"
    refund_fee = payment
    if name == "partial_refund":
        refund_fee = (payment * Decimal(r.choice(["0.3", "0.5", "0.8"]))).quantize(Decimal("0.01"))
    elif name == "amount_exceeds_paid":
        refund_fee = payment + Decimal(r.choice(["0.01", "5.00", "10.00"]))
    refund_type = "PRICE_PROTECTION" if name == "price_protection" else "REFUND"
    if refund_type == "PRICE_PROTECTION":
        refund_fee = (payment * Decimal("0.1")).quantize(Decimal("0.01"))
    refund_sku, refund_qty = sku, quantity
    if name == "sku_mismatch":
        size = sku.rsplit("-", 1)[1]
        refund_sku = sku[: -len(size)] + ("L" if size != "L" else "M")
    has_good_return = 1 if returnable else 0
    created_at = now - timedelta(hours=r.uniform(0.5, 40))
    if signed_at is not None and created_at < signed_at:
        created_at = signed_at + timedelta(minutes=r.uniform(5, 60))
        created_at = min(created_at, now - timedelta(minutes=10))
    urgent = r.random() < URGENT_SHARE and name != "history"
    deadline = now + (
        timedelta(hours=r.uniform(1, 11)) if urgent else timedelta(hours=r.uniform(26, 120))
    )
    status, good_status = (
        "WAIT_SELLER_AGREE",
        "BUYER_NOT_RECEIVED" if signed_at is None else "BUYER_RECEIVED",
    )
    return_company = return_sid = return_sent_at = None
    if name in {
        "eligible_return_received",
        "return_not_received",
        "over_cap_not_received",
        "return_mismatch",
    }:
        status, good_status = "WAIT_SELLER_CONFIRM_GOODS", "BUYER_RETURNED_GOODS"
        return_company = r.choice(list(COURIERS))
        return_sid = COURIERS[return_company](r)
        sent = created_at + timedelta(hours=r.uniform(2, 20))
        sent = min(sent, now - timedelta(hours=1))
        return_sent_at = _fmt(sent)
        if name not in ("return_not_received", "over_cap_not_received"):
            received_at = min(
                sent + timedelta(hours=r.uniform(20, 60)), now - timedelta(minutes=20)
            )
            got_sku, got_qty = sku, quantity
            if name == "return_mismatch":
                if quantity > 1:
                    got_qty = quantity - 1
                else:
                    got_sku = (
                        sku.rsplit("-", 2)[0]
                        + "-"
                        + r.choice(["RED", "PNK"])
                        + "-"
                        + sku.rsplit("-", 1)[1]
                    )
            rows.append(
                (
                    "warehouse_receipts",
                    (return_sid, return_company, got_sku, got_qty, _fmt(received_at)),
                )
            )
    if name == "history":
        status = r.choice(HISTORY_STATUSES)
    intervention = 1 if name == "platform_intervention" else 0
    description = r.choice(["", "", "不想要了", "颜色和图片有点差别", "尺码偏小"])
    refund_ids = []
    copies = 2 if name == "several_open_refunds" else 1
    for _ in range(copies):
        refund_id = g.next_refund_id()
        refund_ids.append(refund_id)
        rows.append(
            (
                "refunds",
                (
                    refund_id,
                    line_id,
                    refund_sku,
                    refund_qty,
                    _money(refund_fee),
                    refund_type,
                    has_good_return,
                    good_status,
                    status,
                    reason,
                    description,
                    intervention,
                    return_company,
                    return_sid,
                    return_sent_at,
                    _fmt(created_at),
                    _fmt(deadline),
                    1,
                    None,  # modified_at: not changed since created
                ),
            )
        )
    codes = [branch.code, *branch.also] if branch.expected == "person" else []
    if name == "amount_exceeds_paid" and refund_fee > 300:  # over the default cap as well
        codes.append("OVER_AMOUNT_CAP")
    truths = [
        {
            "refund_id": refund_id,
            "branch": name,
            "expected": branch.expected,
            "action": branch.code if branch.expected == "approve" else "",
            "reason_code": branch.code if branch.expected == "person" else "",
            "reason_codes": codes,
            "amount": _money(refund_fee),
            "urgent": urgent,
            "status": status,
        }
        for refund_id in refund_ids
    ]
    return rows, truths


INSERTS = {  # in foreign-key order
    "buyers": "INSERT INTO buyers VALUES (?,?,?,?,?,?,?)",
    "order_lines": "INSERT INTO order_lines VALUES (" + ",".join("?" * 16) + ")",
    "refunds": "INSERT INTO refunds VALUES (" + ",".join("?" * 19) + ")",
    "warehouse_receipts": (
        "INSERT INTO warehouse_receipts (waybill, courier, sku, quantity, received_at)"
        " VALUES (?,?,?,?,?)"
    ),
}


def seed_shop(
    data_dir: Path,
    *,
    refunds: int,
    seed: int,
    username: str,
    password: str,
    now: datetime | None = None,
    products: int = 0,
    parcels: int = 0,
    orders: int = 0,
    shipments: int = 0,
    live_products: int = 0,
    live_capacity: int = 50,
    conversations: int = 0,
    totp_secret: str | None = None,
) -> dict[str, int]:
    """Create a fresh shop in ``data_dir``; returns how many refunds each branch got.

    With ``products`` the storefront gets that many products, the approved price list
    (``price-list.xlsx``) and their ground truth (``products_truth.jsonl``). With ``parcels``
    the warehouse gets that many unlabelled parcels among at least ``orders`` orders, and
    their ground truth (``parcels_truth.jsonl``). With ``shipments`` the back office shows
    that many open shipments and their tracking (``shipments_truth.jsonl``). With
    ``live_products`` the live console offers that many SKUs to a session of
    ``live_capacity`` (``live_truth.jsonl``). With ``conversations`` the service console
    logs that many customer-service conversations of the last hours
    (``service_truth.jsonl``). With ``totp_secret`` the login asks for a
    one-time code after the password.
    """
    if not 1 <= refunds <= 100_000:
        raise ValueError("refunds must be between 1 and 100000")
    data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (data_dir / (db.DB_NAME + suffix)).unlink(missing_ok=True)
    now = (now or shop_now()).replace(microsecond=0)
    conn = db.connect(data_dir)
    db.create_schema(conn)
    conn.executescript(catalog.SCHEMA)
    conn.executescript(warehouse.SCHEMA)
    conn.executescript(logistics.SCHEMA)
    conn.executescript(live.SCHEMA)
    conn.executescript(merch.SCHEMA)
    conn.executescript(service.SCHEMA)
    counts: dict[str, int] = {}
    batches: dict[str, list[tuple]] = {table: [] for table in INSERTS}
    with (data_dir / db.GROUND_TRUTH_NAME).open("w", encoding="utf-8") as truth_file:
        conn.execute("BEGIN")
        db.add_user(conn, username, password, "退款机器人", totp_secret=totp_secret)
        for table, row in generate(seed, refunds, now):
            if table == "truth":
                assert isinstance(row, dict)
                truth_file.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts[row["branch"]] = counts.get(row["branch"], 0) + 1
                continue
            batches[table].append(row)
        for table, sql in INSERTS.items():
            conn.executemany(sql, batches[table])
        catalog.seed_catalog(conn, data_dir, products=products, seed=seed)
        merch.write_review(conn, data_dir / merch.REVIEW_NAME)
        if parcels:
            warehouse.seed_parcels(
                conn,
                data_dir,
                parcels=parcels,
                orders=orders,
                seed=seed,
                now=now,
                people=PEOPLE,
            )
        if shipments:
            logistics.seed_shipments(
                conn, data_dir, shipments=shipments, seed=seed, now=now, couriers=COURIERS
            )
        if live_products:
            live.seed_live(
                conn, data_dir, products=live_products, capacity=live_capacity, seed=seed
            )
        if conversations:
            service.seed_service(conn, data_dir, conversations=conversations, seed=seed, now=now)
        conn.execute("COMMIT")
    conn.close()
    return counts


def load_ground_truth(data_dir: Path) -> dict[str, dict]:
    """The expected decision per refund id (for tests and benchmarks only)."""
    with (data_dir / db.GROUND_TRUTH_NAME).open(encoding="utf-8") as f:
        return {row["refund_id"]: row for row in map(json.loads, f)}
