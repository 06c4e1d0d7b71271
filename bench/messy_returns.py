"""Messier returns than the sandbox makes, with the truth kept, and the robot's search path.

A generator of its own (not ``sandbox/warehouse.py``'s) for the noise kinds issues 14 and 31
name: a buyer's return waybill with a typo, two neighbouring digits swapped on a label, a
label that shows the waybill partly masked, an order returned without a request (issue 31's
mix, ``SHARES_31``), an outbound waybill misread by one digit, waybills typed lower-case
with spaces, "lucky" phone tails that hundreds of buyers share, the second box of
a split return, look-alike orders (an item bought in another shop, the same SKU bought here
20–90 days before), near-identical orders of one buyer signed a few days apart, and parcels
of unknown origin. Every parcel carries its kind and the id it truly belongs to ('' when it
belongs to nothing here).

``SearchSim`` answers searches as the sandbox back office does (sandbox/ordersearch.py: order
or request number, waybill, one character apart when fuzzy, a 4-digit phone tail or a name,
narrowed by SKU and day; newest orders first; pages of 50 rows), in process, so the robot's
own path (``CandidateSearch`` → searches → ``match_candidates``) can be measured at 20,000
parcels × 200,000 orders without a browser. ``evaluate`` runs that path (or one global
index, the comparison) and counts links right and wrong per kind.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rapidfuzz.distance import OSA

from robots.returns.lookup import CandidateSearch, Found, Lookup
from robots.returns.matching import (
    LINK,
    Candidate,
    CandidateIndex,
    MatchRules,
    UnlabelledParcel,
    match_candidates,
    normalise_waybill,
)
from robots.returns.scenario import SearchPage

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕鹏辉建国"
DISTRICTS = [
    f"{p}{c}" for p in ("浙江省", "广东省", "江苏省", "四川省", "山东省") for c in "ABCDEFGH"
]
LUCKY_TAILS = ("6888", "1688", "8888", "6666")
COLOURS = ("BLK", "WHT", "RED", "NAV", "GRY", "KHA")
SIZES = ("S", "M", "L", "XL")
PAGE = 50  # rows a back-office search shows

KINDS = (
    "clean",
    "waybill_typo",
    "transposed",
    "masked",
    "no_request",
    "outbound_misread",
    "spaced_waybill",
    "lucky_tail",
    "split_second_box",
    "look_alike",
    "near_identical",
    "unknown",
)
SHARES = {  # issue 14's mix: most parcels plain, each noise kind a few per cent
    "clean": 0.60,
    "waybill_typo": 0.06,
    "outbound_misread": 0.05,
    "spaced_waybill": 0.03,
    "lucky_tail": 0.05,
    "split_second_box": 0.08,  # pairs: the first box is counted as clean, the second here
    "look_alike": 0.05,
    "near_identical": 0.03,
    "unknown": 0.05,
}
# issue 31's mix: the same, and the kinds real warehouses add (12 % of the parcels)
SHARES_31 = {
    **SHARES,
    "clean": 0.48,
    "transposed": 0.04,  # two neighbouring digits swapped on the label (1234 → 1243)
    "masked": 0.04,  # the label shows the waybill part hidden: SF1234****5678
    "no_request": 0.04,  # sent back without opening a request: the order itself
}


def _second(t: datetime) -> datetime:
    """Times as the back office shows them: to the second."""
    return t.replace(microsecond=0)


@dataclass(frozen=True)
class Buyer:
    nick: str
    name: str
    phone: str
    district: str


@dataclass
class Order:
    order_id: str
    buyer: Buyer
    lines: tuple[tuple[str, int], ...]
    outbound: str
    paid_at: datetime
    signed_at: datetime | None
    refund_id: str = ""
    return_waybill: str = ""
    refund_created_at: datetime | None = None
    linked: bool = False

    def candidate(self) -> Candidate:
        return Candidate(
            order_id=self.order_id,
            refund_id=self.refund_id,
            buyer_name=self.buyer.name,
            buyer_nick=self.buyer.nick,
            phone=self.buyer.phone,
            district=self.buyer.district,
            lines=self.lines,
            return_waybill=self.return_waybill,
            outbound_waybill=self.outbound,
            refund_created_at=self.refund_created_at,
            signed_at=self.signed_at,
            linked=self.linked,
        )


@dataclass(frozen=True)
class Truth:
    parcel: UnlabelledParcel
    kind: str
    target: str  # the request or order it belongs to; '' for none here


COURIER_OF = {"SF": "顺丰速运", "YT": "圆通速递", "ZT": "中通快递", "JD": "京东物流"}


def courier_of(waybill: str) -> str:
    """The courier a label names, from its waybill's prefix ('' for one not known)."""
    return COURIER_OF.get(normalise_waybill(waybill)[:2], "")


class Messy:
    """The generated shop: orders (with their requests) and parcels with their truth."""

    def __init__(
        self,
        seed: int,
        parcels: int,
        orders: int,
        now: datetime,
        shares: dict[str, float] = SHARES,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.orders: list[Order] = []
        self.parcels: list[Truth] = []
        self._n = 0
        skus = [
            f"{a}{n:04d}-{c}-{s}"
            for a, n in ((self.rng.choice("TJDCS") + "X", i) for i in range(600))
            for c in self.rng.sample(COLOURS, 2)
            for s in SIZES
        ]
        self.skus = skus
        buyers = [self._buyer(i) for i in range(max(10, orders // 4))]
        self.buyers = buyers
        for _ in range(orders - 1 if orders > 1 else orders):
            self._order(self.rng.choice(buyers))
        counts = {k: int(parcels * share) for k, share in shares.items()}
        counts["clean"] += parcels - sum(counts.values())
        makers: dict[str, Callable[[], None]] = {
            "clean": self._clean,
            "waybill_typo": self._waybill_typo,
            "transposed": self._transposed,
            "masked": self._masked,
            "no_request": self._no_request,
            "outbound_misread": self._outbound_misread,
            "spaced_waybill": self._spaced_waybill,
            "lucky_tail": self._lucky_tail,
            "split_second_box": self._split,
            "look_alike": self._look_alike,
            "near_identical": self._near_identical,
            "unknown": self._unknown,
        }
        for kind, n in counts.items():
            for _ in range(n if kind != "split_second_box" else n // 2):
                makers[kind]()
        self.rng.shuffle(self.parcels)

    # -- the shop's data ----------------------------------------------------------------------
    def _buyer(self, i: int) -> Buyer:
        rng = self.rng
        tail = rng.choice(LUCKY_TAILS) if rng.random() < 0.03 else f"{rng.randrange(10000):04d}"
        phone = f"1{rng.choice('3578')}{rng.randrange(10)}{rng.randrange(10000):04d}{tail}"
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2))))
        return Buyer(f"tb_{i:06d}{rng.choice('abcxyz')}", name, phone, rng.choice(DISTRICTS))

    def _waybill(self) -> str:
        rng = self.rng
        return rng.choice(("SF", "YT", "ZT", "JD")) + f"{rng.randrange(10**11, 10**12)}"

    def _order(
        self,
        buyer: Buyer,
        *,
        lines: tuple[tuple[str, int], ...] | None = None,
        signed_days_ago: float | None = None,
    ) -> Order:
        rng = self.rng
        self._n += 1
        days = signed_days_ago if signed_days_ago is not None else rng.uniform(1, 120)
        signed = _second(self.now - timedelta(days=days))
        if lines is None:
            lines = tuple(
                (sku, rng.choice((1, 1, 1, 2)))
                for sku in rng.sample(self.skus, rng.choice((1, 1, 1, 2, 3)))
            )
        order = Order(
            f"TO{self._n:09d}",
            buyer,
            lines,
            self._waybill(),
            _second(signed - timedelta(days=rng.uniform(1, 4))),
            signed,
        )
        self.orders.append(order)
        return order

    def _request(self, order: Order, days_ago: float | None = None) -> None:
        self._n += 1
        order.refund_id = f"TR{self._n:09d}"
        order.return_waybill = self._waybill()
        order.refund_created_at = _second(
            self.now - timedelta(days=days_ago if days_ago is not None else self.rng.uniform(1, 8))
        )

    # -- parcels --------------------------------------------------------------------------------
    def _parcel(
        self,
        kind: str,
        target: str,
        buyer: Buyer | None,
        items: tuple[tuple[str, int], ...],
        waybill: str,
        *,
        sender_known: bool = True,
    ) -> None:
        rng = self.rng
        if buyer is not None and sender_known:
            name = rng.choice(
                (buyer.name, buyer.name[0] + "*", buyer.name[0] + "先生", buyer.nick, "")
            )
            head, tail = buyer.phone[:3], buyer.phone[-4:]
            phone = rng.choice((f"{head}****{tail}", f"{head}****{tail}", f"*******{tail}", ""))
            district = buyer.district
        else:
            name, phone, district = "", "", rng.choice(DISTRICTS)
        p = UnlabelledParcel(
            parcel_id=f"PX{len(self.parcels) + 1:07d}",
            waybill=waybill,
            courier=courier_of(waybill),
            sender_name=name,
            sender_phone=phone,
            district=district,
            items=items,
            received_at=_second(self.now - timedelta(hours=rng.uniform(1, 48))),
        )
        self.parcels.append(Truth(p, kind, target))

    def _returned(self, signed_days_ago: float | None = None) -> Order:
        """An order of a random buyer with an open return request."""
        order = self._order(self.rng.choice(self.buyers), signed_days_ago=signed_days_ago)
        self._request(order)
        return order

    def _items(self, order: Order) -> tuple[tuple[str, int], ...]:
        return (self.rng.choice(order.lines),)

    def _clean(self) -> None:
        o = self._returned(self.rng.uniform(3, 25))
        self._parcel("clean", o.refund_id, o.buyer, self._items(o), o.return_waybill)

    def _waybill_typo(self) -> None:
        o = self._returned(self.rng.uniform(3, 25))
        w = list(o.return_waybill)
        i = self.rng.randrange(2, len(w))
        w[i] = self.rng.choice([d for d in "0123456789" if d != w[i]])
        self._parcel("waybill_typo", o.refund_id, o.buyer, self._items(o), "".join(w))

    def _transposed(self) -> None:
        o = self._returned(self.rng.uniform(3, 25))
        w = list(o.return_waybill)
        i = self.rng.choice([i for i in range(2, len(w) - 1) if w[i] != w[i + 1]])
        w[i], w[i + 1] = w[i + 1], w[i]
        self._parcel("transposed", o.refund_id, o.buyer, self._items(o), "".join(w))

    def _masked(self) -> None:
        o = self._returned(self.rng.uniform(3, 25))
        w = o.return_waybill
        self._parcel("masked", o.refund_id, o.buyer, self._items(o), w[:6] + "****" + w[-4:])

    def _no_request(self) -> None:
        """Returned inside the return window with no request opened: the label is the
        buyer's own (a waybill the shop never heard of); only the buyer and the SKUs say
        which order."""
        o = self._order(self.rng.choice(self.buyers), signed_days_ago=self.rng.uniform(2, 12))
        self._parcel("no_request", o.order_id, o.buyer, o.lines, self._waybill())

    def _outbound_misread(self) -> None:
        o = self._order(self.rng.choice(self.buyers), signed_days_ago=0)
        o.signed_at = None  # refused: never signed, back under the outbound waybill
        w = list(o.outbound)
        i = self.rng.randrange(2, len(w))
        w[i] = self.rng.choice([d for d in "0123456789" if d != w[i]])
        self._parcel("outbound_misread", o.order_id, o.buyer, o.lines, "".join(w))

    def _spaced_waybill(self) -> None:
        o = self._returned(self.rng.uniform(3, 25))
        w = o.return_waybill.lower()
        spaced = " ".join(w[i : i + 4] for i in range(0, len(w), 4))
        self._parcel("spaced_waybill", o.refund_id, o.buyer, self._items(o), spaced)

    def _lucky_tail(self) -> None:
        lucky = [b for b in self.buyers if b.phone[-4:] in LUCKY_TAILS]
        buyer = self.rng.choice(lucky)
        o = self._order(buyer, signed_days_ago=self.rng.uniform(3, 20))
        self._request(o)
        # the same buyer bought it again later (a re-purchase, no request)
        self._order(buyer, lines=o.lines, signed_days_ago=self.rng.uniform(1, 3))
        self._parcel("lucky_tail", o.refund_id, buyer, self._items(o), "")

    def _split(self) -> None:
        buyer = self.rng.choice(self.buyers)
        a, b = self.rng.sample(self.skus, 2)
        o = self._order(buyer, lines=((a, 1), (b, 1)), signed_days_ago=self.rng.uniform(3, 20))
        self._request(o)
        self._order(buyer, lines=((b, 1),), signed_days_ago=self.rng.uniform(20, 60))
        self._parcel("clean", o.refund_id, buyer, ((a, 1),), o.return_waybill)
        self._parcel("split_second_box", o.refund_id, buyer, ((b, 1),), "")

    def _look_alike(self) -> None:
        buyer = self.rng.choice(self.buyers)
        o = self._order(buyer, signed_days_ago=self.rng.uniform(20, 90))
        # bought in another shop, sent here by mistake: a waybill nobody here knows
        self._parcel("look_alike", "", buyer, self._items(o), self._waybill())

    def _near_identical(self) -> None:
        buyer = self.rng.choice(self.buyers)
        sku = self.rng.choice(self.skus)
        recent = self._order(buyer, lines=((sku, 1),), signed_days_ago=self.rng.uniform(24, 29))
        self._order(buyer, lines=((sku, 1),), signed_days_ago=self.rng.uniform(31, 36))
        self._parcel("near_identical", recent.order_id, buyer, ((sku, 1),), "")

    def _unknown(self) -> None:
        self._parcel(
            "unknown",
            "",
            None,
            ((self.rng.choice(self.skus), 1),),
            self._waybill(),
            sender_known=False,
        )


def _deletion_keys(waybill: str) -> set[str]:
    """The waybill and it with each character deleted once: two waybills one edit apart share
    one of these keys, and so do two with neighbours swapped (checked with OSA after, as the
    sandbox checks its hits)."""
    return {waybill} | {waybill[:i] + waybill[i + 1 :] for i in range(len(waybill))}


class SearchSim:
    """The sandbox back office's search (``sandbox/ordersearch.py``), in process: exact keys
    (order, request, waybill as carriers print it), waybills one character apart when fuzzy,
    then a 4-digit phone tail or a name, newest order first; narrowed by SKU and first day;
    pages of 50 rows, of which the robot reads ``spec.max_pages``."""

    def __init__(self, orders: Iterable[Order], spec: SearchPage) -> None:
        self.spec = spec
        self.orders = {o.order_id: o for o in orders}
        self.by_key: dict[str, list[str]] = defaultdict(list)
        self.by_deletion: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.by_tail: dict[str, list[str]] = defaultdict(list)
        self.by_name: dict[str, list[str]] = defaultdict(list)
        newest_first = sorted(self.orders.values(), key=lambda o: o.paid_at, reverse=True)
        for o in newest_first:
            for key in (o.order_id, o.refund_id, o.outbound, o.return_waybill):
                if key:
                    self.by_key[key].append(o.order_id)
            for waybill in {o.outbound, o.return_waybill} - {""}:
                for d in _deletion_keys(waybill):
                    self.by_deletion[d].append((waybill, o.order_id))
            self.by_tail[o.buyer.phone[-4:]].append(o.order_id)
            self.by_name[o.buyer.name].append(o.order_id)
            self.by_name[o.buyer.nick].append(o.order_id)
        self.searches = 0  # pages read

    def _hits(self, lookup: Lookup) -> list[str]:
        q = lookup.q.strip()
        waybill = normalise_waybill(q)
        found = list(self.by_key.get(q, ())) + list(self.by_key.get(waybill, ()))
        if lookup.fuzzy and len(waybill) >= 8:
            near = {hit for d in _deletion_keys(waybill) for hit in self.by_deletion.get(d, ())}
            found += [o for w, o in sorted(near) if OSA.distance(waybill, w) <= 1]
        more = self.by_tail if (len(q) == 4 and q.isdigit()) else self.by_name
        found += more.get(q, ())
        out = list(dict.fromkeys(found))
        if lookup.sku:
            out = [o for o in out if any(s == lookup.sku for s, _ in self.orders[o].lines)]
        if lookup.since:
            since = datetime.fromisoformat(lookup.since)
            out = [o for o in out if self.orders[o].paid_at >= since]
        return out

    def search(self, lookup: Lookup) -> Found:
        """What the robot reads of one search: every page up to ``max_pages``."""
        hits = self._hits(lookup)
        shown = PAGE * self.spec.max_pages
        self.searches += max(1, min(self.spec.max_pages, -(-len(hits) // PAGE)))
        return Found([self.orders[o].candidate() for o in hits[:shown]], cut=len(hits) > shown)


def robot_path(sim: SearchSim) -> Callable[[UnlabelledParcel], CandidateSearch]:
    """The robot's own lookups for a parcel, answered by the simulated back office."""

    def candidates(parcel: UnlabelledParcel) -> CandidateSearch:
        search = CandidateSearch(parcel, sim.spec)
        for lookup in search.lookups():
            search.add(lookup, sim.search(lookup))
        return search

    return candidates


@dataclass
class Tally:
    """One kind's parcels and what became of them."""

    parcels: int = 0
    matchable: int = 0  # those with a true order or request here
    # linked (right or wrong), or suggested to a person
    linked: int = 0
    right: int = 0
    wrong: int = 0
    suggested: int = 0
    # matchable, and its true target not among the candidates the matcher saw
    true_not_seen: int = 0
    # linked wrongly while its true target was not among the examined candidates
    wrong_true_unseen: int = 0
    cut: int = 0  # parcels with a search read only in part

    @property
    def precision(self) -> float:
        return self.right / self.linked if self.linked else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.matchable if self.matchable else 1.0


def evaluate(
    data: Messy,
    rules: MatchRules,
    spec: SearchPage,
    path: str = "robot",
    links: dict[str, str] | None = None,
) -> dict[str, Tally]:
    """Every parcel through the robot's path (``robot``: its lookups, answered as the back
    office answers them) or one global index (``global``), in the order they arrive; a link
    marks its order linked, as the back office does. ``links`` collects parcel → target."""
    by_target: dict[str, Order] = {}
    for o in data.orders:
        by_target[o.order_id] = o
        if o.refund_id:
            by_target[o.refund_id] = o
        o.linked = False
    see = robot_path(SearchSim(data.orders, spec))
    index = CandidateIndex(o.candidate() for o in data.orders) if path == "global" else None
    tallies: dict[str, Tally] = defaultdict(Tally)
    for t in sorted(data.parcels, key=lambda t: t.parcel.received_at):
        if index is not None:
            blocked, cut = index.block(t.parcel, rules.max_candidates)
            cands = [replace(c, linked=by_target[c.order_id].linked) for c in blocked]
            complete = not cut
        else:
            search = see(t.parcel)
            cands, complete = list(search.candidates.values()), search.complete
        decision = match_candidates(t.parcel, cands, rules, complete=complete)
        seen = any(c.target == t.target or c.order_id == t.target for c in cands)
        for tally in (tallies[t.kind], tallies["all"]):
            tally.parcels += 1
            tally.cut += not complete
            if t.target:
                tally.matchable += 1
                tally.true_not_seen += not seen
            if decision.outcome == LINK:
                tally.linked += 1
                if decision.target == t.target:
                    tally.right += 1
                else:
                    tally.wrong += 1
                    tally.wrong_true_unseen += bool(t.target) and not seen
            elif decision.outcome != "leave":
                tally.suggested += 1
        if decision.outcome == LINK:
            by_target[decision.target].linked = True
            if links is not None:
                links[t.parcel.parcel_id] = decision.target
    return dict(tallies)


def table(tallies: dict[str, Tally]) -> str:
    rows = [
        f"{'kind':<18}{'parcels':>8}{'matchable':>10}{'linked':>8}{'wrong':>7}"
        f"{'suggest':>8}{'unseen':>8}{'cut':>6}{'precision':>10}{'recall':>8}"
    ]
    for kind in (*KINDS, "all"):
        t = tallies.get(kind)
        if t is None:
            continue
        rows.append(
            f"{kind:<18}{t.parcels:>8}{t.matchable:>10}{t.linked:>8}{t.wrong:>7}"
            f"{t.suggested:>8}{t.true_not_seen:>8}{t.cut:>6}{t.precision:>10.4f}{t.recall:>8.3f}"
        )
    return "\n".join(rows)


def kinds_made(data: Messy) -> Counter[str]:
    return Counter(t.kind for t in data.parcels)


# -- the same data in a sandbox shop, for the browser end-to-end test --------------------------


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def load_into_sandbox(conn: sqlite3.Connection, data: Messy) -> None:
    """Insert the generated orders, requests and parcels into a sandbox shop's tables (ids
    that the sandbox's own seed never makes: TO…, TR…, PX…, buyers tb_000001a…)."""
    buyers = {o.buyer.nick: o.buyer for o in data.orders}
    conn.executemany(
        "INSERT INTO buyers VALUES (?,?,?,?,?,?,?)",
        [(b.nick, b.name, b.phone, b.district, 0, 3, 0) for b in buyers.values()],
    )
    lines, refunds = [], []
    for o in data.orders:
        courier = COURIER_OF.get(o.outbound[:2], "韵达快递")
        for i, (sku, qty) in enumerate(o.lines, start=1):
            lines.append(
                (o.order_id, f"{o.order_id}-{i}", o.buyer.nick, sku, f"商品 {sku}", "服装", qty,
                 f"{99 * qty}.00", "TRADE_FINISHED" if o.signed_at else "WAIT_BUYER_CONFIRM_GOODS",
                 _fmt(o.paid_at), _fmt(o.paid_at + timedelta(hours=20)),
                 o.signed_at and _fmt(o.signed_at), courier, o.outbound, 0, 0)
            )  # fmt: skip
        if o.refund_id:
            assert o.refund_created_at is not None
            sku, qty = o.lines[0]
            refunds.append(
                (o.refund_id, f"{o.order_id}-1", sku, qty, f"{99 * qty}.00", "REFUND", 1,
                 "BUYER_RETURNED_GOODS", "WAIT_SELLER_CONFIRM_GOODS", "七天无理由", "", 0,
                 COURIER_OF.get(o.return_waybill[:2], "韵达快递"), o.return_waybill,
                 _fmt(o.refund_created_at + timedelta(hours=6)), _fmt(o.refund_created_at),
                 _fmt(o.refund_created_at + timedelta(days=10)), 1, None)
            )  # fmt: skip
    conn.executemany(f"INSERT INTO order_lines VALUES ({','.join('?' * 16)})", lines)
    conn.executemany(f"INSERT INTO refunds VALUES ({','.join('?' * 19)})", refunds)
    conn.executemany(
        f"INSERT INTO parcels VALUES ({','.join('?' * 13)})",
        [
            (p.parcel_id, p.waybill, p.courier,
             p.sender_name, p.sender_phone, p.district, json.dumps(p.items), "0.80",
             _fmt(p.received_at), "", None, None, None)
            for p in (t.parcel for t in data.parcels)
        ],
    )  # fmt: skip
