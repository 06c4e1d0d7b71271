"""Synthetic storefront catalogue: products, SKUs, the approved price list and the truth.

Products are clean by construction (prices exactly as approved, discounts well inside every
threshold, copy from a vocabulary with no banned word) and a share of them gets one planted
problem: a price-error kind of DOMAIN.md §4, or a banned word of §3 in one field, spelled
with one of the evasions sellers use. Innocent look-alikes (第一次, 唯一的缺点 …) are planted
too. The expected findings are worked out here, by plain arithmetic on the numbers this module
chose, and written to a ground-truth file the robots never read.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

PRODUCTS_TRUTH_NAME = "products_truth.jsonl"
PRICE_LIST_NAME = "price-list.xlsx"
WATCH_LIST_NAME = "watch-skus.csv"  # the SKUs the 数据抓取 flow watches (an ops list)
WATCHED = 40
CENT = Decimal("0.01")

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    product_id       TEXT PRIMARY KEY,
    style            TEXT NOT NULL,
    category         TEXT NOT NULL,
    category_code    TEXT NOT NULL,
    title            TEXT NOT NULL,
    subtitle         TEXT NOT NULL,
    image_alts       TEXT NOT NULL,          -- JSON list
    detail           TEXT NOT NULL,
    promo_name       TEXT NOT NULL DEFAULT '',
    promo_discount   TEXT NOT NULL DEFAULT '1',
    coupon_threshold TEXT,
    coupon_amount    TEXT,
    page_price       TEXT NOT NULL,          -- the headline price, rendered by the server
    position         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS products_category ON products(category_code, position);
CREATE TABLE IF NOT EXISTS skus (
    sku         TEXT PRIMARY KEY,
    product_id  TEXT NOT NULL REFERENCES products(product_id),
    name        TEXT NOT NULL,
    price       TEXT NOT NULL,
    list_price  TEXT NOT NULL,
    position    INTEGER NOT NULL,
    stock       INTEGER NOT NULL DEFAULT 0,  -- 库存, shown beside the price
    cost        TEXT NOT NULL DEFAULT '0',   -- 成本价 (the back office's 商品管理 shows it)
    state       TEXT NOT NULL DEFAULT '在售' -- 在售 | 已下架 (商品管理)
);
CREATE INDEX IF NOT EXISTS skus_product ON skus(product_id, position);
"""

CATEGORIES = {  # code -> (name, nouns, approved price range)
    "TS": ("T恤", ["纯棉圆领短袖T恤", "宽松印花T恤", "冰丝速干T恤", "重磅纯色T恤"], (59, 149)),
    "DR": ("连衣裙", ["碎花雪纺连衣裙", "法式收腰连衣裙", "针织长袖连衣裙"], (129, 299)),
    "JN": ("牛仔裤", ["高腰直筒牛仔裤", "修身小脚牛仔裤", "阔腿拖地牛仔裤"], (99, 259)),
    "CT": ("外套", ["连帽防风夹克", "双面羊绒大衣", "轻薄羽绒服", "休闲西装外套"], (199, 299)),
    "SH": ("鞋", ["复古运动鞋", "帆布休闲鞋", "真皮乐福鞋"], (129, 279)),
    "AC": ("配饰", ["真丝小方巾", "针织毛线帽", "牛皮腰带"], (49, 129)),
}
COLORS = [("BLK", "黑色"), ("WHT", "白色"), ("NAV", "藏青"), ("GRY", "灰色"), ("KHA", "卡其")]
SIZES = ["S", "M", "L", "XL", "XXL"]
BIG_SIZES = {"XL", "XXL"}
SEASONS = ["2026秋冬新款", "2026春夏新款", "经典款", "通勤款", "基础款"]
ADJECTIVES = ["舒适透气", "百搭显瘦", "简约大方", "柔软亲肤", "休闲宽松", "日常通勤", "质感垂顺"]
SUBTITLES = [
    "面料柔软 做工精细 支持七天无理由退换",
    "当季新品 现货速发 顺丰包邮",
    "亲肤面料 四季可穿 多色可选",
    "修身版型 显高显瘦 通勤休闲两相宜",
    "经典配色 百搭不挑人 送礼自穿都合适",
]
DETAIL_SENTENCES = [
    "选用优质棉质面料，手感柔软，穿着舒适透气。",
    "版型经过多次打样调整，上身效果自然大方。",
    "建议手洗或轻柔机洗，不可漂白，低温熨烫。",
    "模特身高168cm，体重50kg，试穿M码。",
    "颜色因显示器不同可能存在轻微色差，请以实物为准。",
    "包装内含吊牌和合格证，请保留吊牌以便退换。",
    "支持七天无理由退换货，退换请保持商品完好。",
    "每一件商品出库前都经过质检，请放心选购。",
    "缝线细密平整，领口袖口不易变形。",
    "面料成分：棉95% 氨纶5%。",
    "尺码表仅供参考，因测量方式不同可能存在1-3cm误差。",
    "Style: easy-going daily wear, 100% cotton.",
]
ALT_SUFFIXES = ["正面图", "背面图", "细节图", "模特上身效果", "面料特写", "尺码表"]

# Innocent phrases that look like banned words to a naive filter.
LOOKALIKES = [
    ("detail", "最近很多顾客回购，好评不断。"),
    ("detail", "第一次购买的朋友可以先看尺码表。"),
    ("subtitle", "最后一件 售完即止"),
    ("detail", "唯一的缺点是容易起球，请翻面洗涤。"),
    ("detail", "第一步：选择颜色；第二步：选择尺码。"),
    ("subtitle", "下单后第一时间发货"),
    ("detail", "色号No.12为本季新色。"),
    ("detail", "Style: outgoing, relaxed fit."),
    ("subtitle", "第一件原价 第二件半价"),
    ("detail", "Model No.15, laptop1 pocket inside."),
]

# Banned words planted, with the traditional spelling where it differs (written by hand so
# the ground truth does not depend on the converter the robot uses).
BANNED = {
    "国家级": "國家級",
    "世界级": "世界級",
    "最高级": "最高級",
    "最佳": None,
    "最大": None,
    "第一": None,
    "唯一": None,
    "首选": "首選",
    "最好": None,
    "顶级": "頂級",
    "最便宜": None,
    "最先进": "最先進",
    "绝对": "絕對",
    "独家": "獨家",
    "第一品牌": None,
    "全网销量第一": "全網銷量第一",
    "全球首发": "全球首發",
    "世界领先": "世界領先",
    "极品": "極品",
    "顶尖": "頂尖",
    "终极": "終極",
    "销量冠军": "銷量冠軍",
    "独一无二": "獨一無二",
    "史无前例": "史無前例",
    "万能": "萬能",
    "永久": None,
    "NO.1": None,
    "Top1": None,
    "特供": None,
    "专供": "專供",
    "高仿": None,
    "A货": "A貨",
    "原单": "原單",
}
PINYIN = {"特供": "TG", "专供": "ZG"}
EVASIONS = [
    "plain",
    "fullwidth",
    "space",
    "symbol",
    "emoji",
    "traditional",
    "mixed_case",
    "pinyin",
    "repeated",
]
SYMBOLS = ["*", "·", "_", "-", "|", "~", "/", "."]
EMOJI = ["😊", "🔥", "👍", "⭐", "❤️", "✨"]
FIELDS = ["title", "subtitle", "image_alt", "detail", "sku_name"]

DECLARED_PROMOTIONS = ["双11狂欢节", "年货节"]
UNDECLARED_PROMOTIONS = ["清仓特惠", "店铺周年庆"]
PRICE_KINDS = [
    "BELOW_COST",
    "BELOW_FLOOR",
    "DEEP_DISCOUNT",
    "DECIMAL_SLIP",
    "PRICE_MISMATCH",
    "VARIANT_SPREAD",
    "PAGE_PRICE_MISMATCH",
]
# The thresholds the expected findings are worked out with (DOMAIN.md §4's defaults; the
# demo scenario uses the same).
MISMATCH = Decimal("0.01")
MAX_OFF_LIST = Decimal("0.70")
SLIP = ((Decimal("0.095"), Decimal("0.105")), (Decimal("9.5"), Decimal("10.5")))
SPREAD = Decimal("0.30")


def money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def stock_of(sku: str) -> int:
    """A SKU's stock, from its code alone (the catalogue's random stream stays as it was):
    most between 5 and 300, one in twelve sold out."""
    r = random.Random(f"stock:{sku}")
    return 0 if r.random() < 1 / 12 else r.randint(5, 300)


@dataclass
class Sku:
    sku: str
    name: str
    approved: Decimal  # in the price list
    cost: Decimal
    floor: Decimal
    list_price: Decimal
    price: Decimal  # shown on the page


@dataclass
class Product:
    product_id: str
    style: str
    category: str
    category_code: str
    title: str
    subtitle: str
    image_alts: list[str]
    detail: str
    skus: list[Sku]
    size_premium: bool
    promo_name: str = ""
    promo_discount: Decimal = Decimal("1")
    coupon: tuple[Decimal, Decimal] | None = None  # (threshold, amount)
    page_price: Decimal | None = None  # None: the cheapest SKU's price
    planted_price: str = ""
    planted_words: list[dict[str, str]] = field(default_factory=list)
    lookalikes: list[str] = field(default_factory=list)

    def final_price(self, price: Decimal) -> Decimal:
        return final_price(price, self.promo_discount, self.coupon)

    def headline(self) -> Decimal:
        return self.page_price if self.page_price is not None else min(s.price for s in self.skus)


def final_price(
    price: Decimal, discount: Decimal, coupon: tuple[Decimal, Decimal] | None
) -> Decimal:
    """What the shopper pays: the store discount, then the coupon if its threshold is met."""
    p = money(price * discount)
    if coupon and p >= coupon[0]:
        p -= coupon[1]
    return max(p, CENT)


# -- evasions ---------------------------------------------------------------------------------
def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def _insert(r: random.Random, word: str, pieces: list[str]) -> str:
    i = r.randrange(1, len(word))
    return word[:i] + r.choice(pieces) + word[i:]


def applicable(word: str, kind: str) -> bool:
    has_ascii = any(c.isascii() and c.isalpha() for c in word)
    return {
        "plain": True,
        "fullwidth": any(c.isascii() for c in word),
        "space": len(word) > 1,
        "symbol": len(word) > 1 and not has_ascii,
        "emoji": len(word) > 1,
        "traditional": BANNED.get(word) is not None,
        "mixed_case": has_ascii,
        "pinyin": word in PINYIN,
        "repeated": not word[0].isascii(),
    }[kind]


def spell(r: random.Random, word: str, kind: str) -> str:
    if kind == "plain":
        return word
    if kind == "fullwidth":
        return _fullwidth(word)
    if kind == "space":
        return _insert(r, word, [" ", "\u3000", "  "])
    if kind == "symbol":
        return _insert(r, word, SYMBOLS)
    if kind == "emoji":
        return _insert(r, word, EMOJI)
    if kind == "traditional":
        return str(BANNED[word])
    if kind == "mixed_case":
        flipped = word.swapcase() if word.swapcase() != word.upper() else word.lower()
        return flipped if flipped != word else word.lower()
    if kind == "pinyin":
        return r.choice([PINYIN[word], PINYIN[word].lower()])
    if kind == "repeated":
        return word[0] * r.randint(2, 3) + word[1:]
    raise ValueError(kind)


def _plant(r: random.Random, p: Product, where: str, spelled: str) -> None:
    """Put a spelled word into one field, between sentence breaks so that it cannot join its
    neighbours into another banned word (终极 + 品质 would also read 极品)."""
    if where == "title":
        p.title = f"{spelled}！{p.title}"
    elif where == "subtitle":
        p.subtitle = f"{p.subtitle}，{spelled}！"
    elif where == "image_alt":
        i = r.randrange(len(p.image_alts))
        p.image_alts[i] = f"{spelled}，{p.image_alts[i]}"
    elif where == "detail":
        sentences = p.detail.split("\n")
        sentences.insert(r.randrange(len(sentences) + 1), f"本店承诺，{spelled}！放心选购。")
        p.detail = "\n".join(sentences)
    else:
        s = r.choice(p.skus)
        s.name = f"{s.name}（{spelled}）"


# -- prices -------------------------------------------------------------------------------------
def _nine(x: float) -> Decimal:
    """A shop-like price: a whole number ending in 9."""
    return Decimal(max(9, round(x / 10.0) * 10 - 1))


def _plant_price(r: random.Random, p: Product, kind: str) -> None:
    p.planted_price = kind
    p.coupon = None
    if kind == "BELOW_COST":
        p.promo_name, p.promo_discount = r.choice(DECLARED_PROMOTIONS), Decimal("0.25")
    elif kind == "BELOW_FLOOR":
        p.promo_name, p.promo_discount = r.choice(DECLARED_PROMOTIONS), Decimal("0.45")
    elif kind == "DEEP_DISCOUNT":
        p.promo_name, p.promo_discount = r.choice(UNDECLARED_PROMOTIONS), Decimal("0.6")
        for s in p.skus:
            s.list_price = _nine(float(s.approved) * 2.6)
    elif kind == "DECIMAL_SLIP":
        s = r.choice(p.skus)
        s.price = money(s.approved / 10) if r.random() < 0.75 else s.approved * 10
    elif kind == "PRICE_MISMATCH":
        s = r.choice(p.skus)
        delta = Decimal(str(r.uniform(0.03, 0.15))) * r.choice((1, -1))
        s.price = money(s.approved * (1 + delta))
    elif kind == "VARIANT_SPREAD":
        s = r.choice(p.skus)
        s.price = _nine(float(s.approved) * 1.5)
        if r.random() < 0.5:  # the price list carries the same mistake: only the spread shows
            s.approved = s.price
    elif kind == "PAGE_PRICE_MISMATCH":
        cheapest = min(x.price for x in p.skus)
        p.page_price = cheapest - r.choice((Decimal("10"), Decimal("20"), money(cheapest / 10)))


def expected_price_findings(p: Product, declared: list[str]) -> list[dict[str, str]]:
    """The findings DOMAIN.md §4 asks for on this product, worked out from its numbers."""
    out: list[dict[str, str]] = []
    is_declared = p.promo_name in declared
    for s in p.skus:
        final = p.final_price(s.price)
        if final < s.cost:
            out.append({"rule": "BELOW_COST", "sku": s.sku})
        elif final < s.floor:
            out.append({"rule": "BELOW_FLOOR", "sku": s.sku})
        ratio = s.price / s.approved
        if any(lo <= ratio <= hi for lo, hi in SLIP):
            out.append({"rule": "DECIMAL_SLIP", "sku": s.sku})
        elif abs(ratio - 1) > MISMATCH:
            out.append({"rule": "PRICE_MISMATCH", "sku": s.sku})
        if not is_declared and final < s.list_price * (1 - MAX_OFF_LIST):
            out.append({"rule": "DEEP_DISCOUNT", "sku": s.sku})
    prices = [s.price for s in p.skus]
    if not p.size_premium and max(prices) / min(prices) - 1 > SPREAD:
        out.append({"rule": "VARIANT_SPREAD", "sku": ""})
    if p.headline() != min(prices):
        out.append({"rule": "PAGE_PRICE_MISMATCH", "sku": ""})
    return out


# -- products --------------------------------------------------------------------------------------
def make_product(r: random.Random, n: int) -> Product:
    code = r.choice(list(CATEGORIES))
    category, nouns, (lo, hi) = CATEGORIES[code]
    noun = r.choice(nouns)
    style = f"{code}{3000 + n:05d}"
    base = _nine(r.uniform(lo, hi))
    premium = code != "AC" and r.random() < 0.2
    colors = r.sample(COLORS, r.randint(1, 2))
    sizes = ["F"] if code == "AC" else r.sample(SIZES, r.randint(2, 4))
    if code == "AC":
        colors = r.sample(COLORS, 3)
    sizes.sort(key=lambda x: SIZES.index(x) if x in SIZES else 0)
    list_ratio = r.uniform(1.3, 1.8)
    skus = []
    for c_code, c_name in colors:
        for size in sizes:
            approved = base
            if premium and size in BIG_SIZES:
                approved = _nine(float(base) * 1.35)  # a size premium beyond the 30 % spread
            skus.append(
                Sku(
                    sku=f"{style}-{c_code}-{size}",
                    name=f"{c_name} / {size}" if size != "F" else f"{c_name} / 均码",
                    approved=approved,
                    cost=money(approved * Decimal(str(r.uniform(0.30, 0.40)))),
                    floor=money(approved * Decimal("0.55")),
                    list_price=_nine(float(approved) * list_ratio),
                    price=approved,
                )
            )
    title = f"{r.choice(SEASONS)}{noun} {r.choice(ADJECTIVES)}"
    p = Product(
        product_id=f"P{100000 + n * 7 + r.randrange(7)}",
        style=style,
        category=category,
        category_code=code,
        title=title,
        subtitle=r.choice(SUBTITLES),
        image_alts=[f"{noun}{s}" for s in r.sample(ALT_SUFFIXES, 3)],
        detail="\n".join(r.sample(DETAIL_SENTENCES, r.randint(3, 6))),
        skus=skus,
        size_premium=premium,
    )
    roll = r.random()
    if roll < 0.25:
        p.promo_name, p.promo_discount = (
            r.choice(DECLARED_PROMOTIONS),
            r.choice((Decimal("0.8"), Decimal("0.85"))),
        )
    elif roll < 0.40:
        p.promo_name, p.promo_discount = (
            r.choice(UNDECLARED_PROMOTIONS),
            r.choice((Decimal("0.9"), Decimal("0.95"))),
        )
    if r.random() < 0.3:
        p.coupon = r.choice(((Decimal("199"), Decimal("20")), (Decimal("299"), Decimal("30"))))
    return p


def build_catalog(seed: int, count: int) -> list[Product]:
    """``count`` products, about 14 % with a price error and 20 % with a banned word."""
    r = random.Random(seed * 7919 + 17)
    products = [make_product(r, n) for n in range(count)]
    kinds = iter(PRICE_KINDS * (count // len(PRICE_KINDS) + 1))
    evasions = iter(EVASIONS * (count // len(EVASIONS) + 2))
    fields = iter(FIELDS * (count // len(FIELDS) + 2))
    for p in products:
        roll = r.random()
        if roll < 0.14:
            kind = next(kinds)
            if kind == "VARIANT_SPREAD" and p.size_premium:
                kind = "PRICE_MISMATCH"  # a size premium makes a spread legitimate
            _plant_price(r, p, kind)
        if r.random() < 0.20:
            for _ in range(r.choice((1, 1, 1, 2))):
                kind = next(evasions)
                word = r.choice([w for w in BANNED if applicable(w, kind)])
                where = next(fields)
                if any(w["field"] == where for w in p.planted_words):
                    continue  # one planted word per field keeps the truth unambiguous
                spelled = spell(r, word, kind)
                _plant(r, p, where, spelled)
                p.planted_words.append(
                    {"field": where, "word": word, "evasion": kind, "spelling": spelled}
                )
        if r.random() < 0.15:
            where, phrase = r.choice(LOOKALIKES)
            if where == "detail":
                p.detail = f"{p.detail}\n{phrase}"
            else:
                p.subtitle = f"{p.subtitle} {phrase}"
            p.lookalikes.append(phrase)
    return products


# -- storage ------------------------------------------------------------------------------------
def store_catalog(conn: sqlite3.Connection, products: list[Product]) -> None:
    """Insert the products (inside the caller's transaction; the tables exist already)."""
    conn.executemany(
        "INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                p.product_id,
                p.style,
                p.category,
                p.category_code,
                p.title,
                p.subtitle,
                json.dumps(p.image_alts, ensure_ascii=False),
                p.detail,
                p.promo_name,
                str(p.promo_discount),
                str(p.coupon[0]) if p.coupon else None,
                str(p.coupon[1]) if p.coupon else None,
                str(p.headline()),
                i,
            )
            for i, p in enumerate(products)
        ],
    )
    conn.executemany(
        "INSERT INTO skus VALUES (?,?,?,?,?,?,?,?,'在售')",
        [
            (
                s.sku,
                p.product_id,
                s.name,
                str(s.price),
                str(s.list_price),
                i,
                stock_of(s.sku),
                str(s.cost),
            )
            for p in products
            for i, s in enumerate(p.skus)
        ],
    )


def write_price_list(path: Path, products: list[Product]) -> None:
    """The approved price list, as ops keep it in Excel."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "价格表"
    ws.append(["SKU", "款号", "品名", "核准价", "成本价", "最低价", "吊牌价", "尺码加价"])
    for p in products:
        for s in p.skus:
            ws.append(
                [
                    s.sku,
                    p.style,
                    p.title,
                    float(s.approved),
                    float(s.cost),
                    float(s.floor),
                    float(s.list_price),
                    "是" if p.size_premium else "否",
                ]
            )
    ws.freeze_panes = "A2"
    wb.save(path)


def truth_rows(products: list[Product]) -> list[dict[str, Any]]:
    return [
        {
            "product_id": p.product_id,
            "planted_price": p.planted_price,
            "prices": expected_price_findings(p, DECLARED_PROMOTIONS),
            "words": p.planted_words,
            "lookalikes": p.lookalikes,
            "skus": {s.sku: str(s.price) for s in p.skus},
        }
        for p in products
    ]


def write_watch_list(path: Path, products: list[Product]) -> None:
    """An ops person's list of SKUs to watch (商品ID, SKU编码): the first ``WATCHED``."""
    rows = [(p.product_id, s.sku) for p in products for s in p.skus][:WATCHED]
    lines = ["商品ID,SKU编码", *(f"{pid},{sku}" for pid, sku in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed_catalog(conn: sqlite3.Connection, data_dir: Path, *, products: int, seed: int) -> int:
    """Store ``products`` products; write the price list and the ground truth beside the DB."""
    catalog = build_catalog(seed, products)
    store_catalog(conn, catalog)
    write_price_list(data_dir / PRICE_LIST_NAME, catalog)
    write_watch_list(data_dir / WATCH_LIST_NAME, catalog)
    with (data_dir / PRODUCTS_TRUTH_NAME).open("w", encoding="utf-8") as f:
        for row in truth_rows(catalog):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(catalog)
