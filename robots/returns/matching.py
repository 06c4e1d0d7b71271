"""Match unlabelled warehouse parcels (无名件) to the orders they came from (DOMAIN.md §2).

Pure logic: no desktop, no browser, no clock. ``CandidateIndex`` is built once over the open
orders and after-sales requests with blocking indexes (the exact waybill, or its one-edit
spellings when it does not hit; phone tail + SKU; surname + SKU as the last resort), so a
parcel is scored only against the handful of candidates that share something with it, never
against every order. Each decision carries the signals that fired and the runner-up's score.
A wrong link refunds the wrong buyer, so the thresholds favour precision.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from robots.engine.words import to_simplified

LINK, SUGGEST, LEAVE = "link", "suggest", "leave"


class MatchRules(BaseModel):
    """Scores and thresholds; defaults are DOMAIN.md §2's starting point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    return_waybill: int = 100
    outbound_waybill: int = 90
    waybill_one_edit: int = 40  # one character off, or two neighbours swapped
    waybill_masked: int = 30  # a masked waybill whose visible characters fit
    phone_tail: int = 25
    phone_head_bonus: int = 5
    name_exact: int = 20
    surname_only: int = 8
    # the buyer's account name (tb_wxm) written on the label exactly: as telling as a phone
    account_name: int = 25
    same_district: int = 10
    skus_within_order: int = 30
    skus_exact_bonus: int = 10
    open_request: int = 20
    recent_refund: int = 10
    recent_refund_days: int = Field(default=10, ge=0)
    late_after_signing: int = -20
    late_after_signing_days: int = Field(default=30, ge=0)
    # an order without a return request may take a parcel on the buyer's evidence alone
    # when it was signed at most this many days before the parcel came (a return the buyer
    # sent without opening a request: inside the return window and the post's days)
    no_request_days: int = Field(default=15, ge=0)
    link_at: int = 80
    link_lead: int = Field(default=20, ge=0)
    suggest_at: int = 50
    suggestions: int = Field(default=3, ge=1, le=10)
    max_candidates: int = Field(
        default=200, ge=1, description="per parcel from one phone tail, when it has no SKU"
    )
    # each courier's waybills as carriers print them (a regular expression the whole waybill
    # fits, upper case, no spaces): a parcel's courier (the key, or a name holding it: 顺丰 in
    # 顺丰速运) names which; a waybill one edit from the parcel's that its courier could never
    # have printed is not a misreading of it. A courier not listed is not checked.
    couriers: dict[str, str] = Field(default_factory=dict)

    @field_validator("couriers")
    @classmethod
    def _patterns(cls, couriers: dict[str, str]) -> dict[str, str]:
        for name, pattern in couriers.items():
            if not name.strip():
                raise ValueError("a courier needs a name")
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{name}: not a regular expression ({e}): {pattern!r}") from e
        return couriers

    def printable_by(self, courier: str, waybill: str) -> bool:
        """Whether ``courier`` (as the parcel names it) could have printed ``waybill``: yes
        when no listed courier's name is in it (or it in one), else when one's format fits."""
        courier = courier.strip()
        formats = [
            pattern
            for name, pattern in self.couriers.items()
            if courier and (name in courier or courier in name)
        ]
        return not formats or any(_fits(pattern, waybill) for pattern in formats)


@lru_cache(maxsize=64)
def _format(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _fits(pattern: str, waybill: str) -> bool:
    return _format(pattern).fullmatch(waybill) is not None


@dataclass(frozen=True)
class UnlabelledParcel:
    """What the warehouse knows about a parcel that came back without a reference."""

    parcel_id: str
    waybill: str
    courier: str
    sender_name: str  # often partial: 王*, 王先生, a nickname, or empty
    sender_phone: str  # usually masked: 138****5678
    district: str
    items: tuple[tuple[str, int], ...]  # (sku, quantity)
    received_at: datetime
    shop: str = ""


@dataclass(frozen=True)
class Candidate:
    """An order (and its after-sales request, if any) a parcel may belong to."""

    order_id: str
    refund_id: str  # '' when the buyer opened no after-sales request
    buyer_name: str
    buyer_nick: str
    phone: str  # full phone, as the back office knows it
    district: str
    lines: tuple[tuple[str, int], ...]  # bought (sku, quantity)
    refunded: tuple[tuple[str, int], ...] = ()  # already refunded (sku, quantity)
    return_waybill: str = ""
    outbound_waybill: str = ""
    refund_created_at: datetime | None = None
    signed_at: datetime | None = None
    linked: bool = False  # a parcel is already linked to it
    shop: str = ""

    @property
    def target(self) -> str:
        """What a link points at: the after-sales request, else the order."""
        return self.refund_id or self.order_id


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    score: int
    signals: tuple[str, ...]
    waybill: str = ""  # the waybill evidence: "exact", "one_edit", "masked", "conflict" or ""
    buyer: str = ""  # "match": phone tail or name agree; "conflict": the parcel names another
    # the buyer beyond doubt: the phone tail and the name (whole, or the surname of 王* /
    # 王先生), or the tail, the first three digits and the district, or the buyer's account
    # name exactly, agree and nothing contradicts them
    known_buyer: bool = False
    # and, for an order without a request: the parcel holds exactly the order's SKUs, signed
    # at most no_request_days before
    sure_buyer: bool = False


@dataclass(frozen=True)
class MatchDecision:
    parcel: UnlabelledParcel
    outcome: str  # link | suggest | leave
    best: Scored | None
    runner_up_score: int | None
    top: tuple[Scored, ...] = field(default_factory=tuple)
    complete: bool = True  # every candidate the parcel's evidence points at was examined

    @property
    def target(self) -> str:
        return self.best.candidate.target if self.best else ""


def normalise_waybill(w: str) -> str:
    """A waybill as carriers print it: full-width forms folded (ＳＦ１２３ → SF123), upper case,
    spaces, dashes and other punctuation dropped ("sf 1234-5678 90" → "SF1234567890")."""
    if w.isascii() and w.isalnum():  # the common case, and the index builds over 400k
        return w.upper()
    folded = unicodedata.normalize("NFKC", w).upper()
    return "".join(c for c in folded if c.isascii() and c.isalnum())


MASKS = "*＊"  # what a label printer or a person writes for characters not shown


def is_masked(w: str) -> bool:
    """A waybill with characters hidden (``4600****3886``): never an exact match, never
    searched as the characters that remain."""
    return any(m in w for m in MASKS)


def masked_fits(masked: str, waybill: str) -> bool:
    """Whether ``waybill`` could be ``masked``: the visible characters before and after the
    mask are its own, in place, and it is at least as long as what shows plus one hidden
    character a mask stands for. Both normalised as carriers print them."""
    folded = unicodedata.normalize("NFKC", masked).upper().replace("＊", "*")
    parts = [normalise_waybill(p) for p in re.split(r"\*+", folded)]
    head, tail = parts[0], parts[-1]
    if len(head) + len(tail) < 4:  # too little shows to tell one waybill from another
        return False
    hidden = folded.count("*")
    if len(parts) > 2 or len(waybill) < len(head) + len(tail) + min(hidden, 1):
        return False  # a mask in two places, or too short
    return waybill.startswith(head) and waybill.endswith(tail)


def within_one(a: str, b: str) -> bool:
    """One character apart, or two neighbours swapped (1234 → 1243): how labels and typing
    go wrong (optimal string alignment distance ≤ 1)."""
    return OSA.distance(a, b, score_cutoff=1) <= 1


def _how_near(a: str, b: str) -> str:
    """How two waybills one edit apart differ, as a person says it."""
    if len(a) != len(b) or sorted(a) != sorted(b):
        return "差一位"
    swapped = sum(x != y for x, y in zip(a, b, strict=True)) == 2
    return "相邻两位颠倒" if swapped else "差一位"


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def phone_parts(masked: str) -> tuple[str, str]:
    """'138****5678' -> ('138', '5678'); a full number gives its first 3 and last 4."""
    s = masked.strip()
    if s.isascii() and s.isdigit() and len(s) >= 7:  # a full number (the back office's)
        return s[:3], s[-4:]
    tail = _digits(s[-4:]) if len(s) >= 4 else ""
    head = _digits(s[:3]) if len(s) >= 7 else ""
    return (head if len(head) == 3 else "", tail if len(tail) == 4 else "")


_TITLES = ("先生", "女士", "小姐", "老师")


def name_signal(sender: str, buyer_name: str, buyer_nick: str) -> str:
    """'exact', 'surname' or ''. Masked (王*) and titled (王先生) names count as surname only.
    A name written in traditional characters (張偉) or in pinyin (Zhang Wei, zhangwei) is the
    name, as a person reads it."""
    s = sender.strip().replace(" ", "")
    if not s or not buyer_name:
        return ""
    if s == buyer_name or to_simplified(s) == to_simplified(buyer_name):
        return "exact"
    if in_pinyin(sender, buyer_name):
        return "exact"
    s = to_simplified(s)
    # nicknames are long Latin strings, often retyped with a slip (tb_wxm / tb-wxm)
    if buyer_nick and len(s) >= 5 and fuzz.ratio(s.lower(), buyer_nick.lower()) >= 90:
        return "exact"
    stem = s.rstrip("*＊")
    for title in _TITLES:
        stem = stem.removesuffix(title)
    simplified = to_simplified(buyer_name)
    if stem and len(stem) <= 2 and simplified.startswith(stem) and stem != simplified:
        return "surname"
    return ""


def in_pinyin(sender: str, name: str) -> bool:
    """Whether ``sender`` is ``name`` written in pinyin, any reading of each character
    (曾 zeng or ceng), spaces, case and tone marks aside: Wang Xiaoming, WANGXIAOMING."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", sender).lower() if c.isalpha())
    if len(letters) < 4 or not letters.isascii() or not 2 <= len(name) <= 4:
        return False
    return letters in _spellings(name)


@lru_cache(maxsize=65_536)
def _spellings(name: str) -> frozenset[str]:
    """Every pinyin spelling of ``name`` (each character's readings); none when there are
    too many to be sure (a name of many-reading characters)."""
    from pypinyin import Style, pinyin

    readings = pinyin(to_simplified(name), style=Style.NORMAL, heteronym=True)
    spellings = {""}
    for options in readings:
        spellings = {s + o for s in spellings for o in set(options)}
        if len(spellings) > 64:
            return frozenset()
    return frozenset(spellings)


_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def one_edit_variants(w: str) -> Iterator[str]:
    """Every waybill one character from ``w`` as people misread them: a character replaced by
    another of its kind (digit for digit, letter for letter), one dropped, one added, two
    neighbours swapped."""
    for i in range(len(w) - 1):
        if w[i] != w[i + 1]:
            yield w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    for i, ch in enumerate(w):
        for other in _DIGITS if ch.isdigit() else _LETTERS:
            if other != ch:
                yield w[:i] + other + w[i + 1 :]
        yield w[:i] + w[i + 1 :]
    for i in range(len(w) + 1):
        for extra in _DIGITS + _LETTERS:
            yield w[:i] + extra + w[i:]


class CandidateIndex:
    """Blocking indexes over the candidates, built once for a whole batch of parcels.

    A phone tail or a surname is shared by many buyers ("lucky" tails such as 6888 by
    hundreds), so those blocks are keyed with a SKU too: a candidate must hold every SKU of
    the parcel to be admissible, so keying by the parcel's first SKU loses nothing and keeps
    every block small enough to examine whole."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.candidates: list[Candidate] = list(candidates)
        self.by_waybill: dict[str, list[int]] = defaultdict(list)
        self.by_phone_tail: dict[str, list[int]] = defaultdict(list)
        self.by_tail_sku: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_surname_sku: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_nick: dict[str, list[int]] = defaultdict(list)
        by_waybill, by_tail_sku, by_surname_sku = (
            self.by_waybill,
            self.by_tail_sku,
            self.by_surname_sku,
        )
        for i, c in enumerate(self.candidates):
            rw, ow = normalise_waybill(c.return_waybill), normalise_waybill(c.outbound_waybill)
            if rw:
                by_waybill[rw].append(i)
            if ow and ow != rw:
                by_waybill[ow].append(i)
            _, tail = phone_parts(c.phone)
            skus = {sku for sku, _ in c.lines}
            if tail:
                self.by_phone_tail[tail].append(i)
                for sku in skus:
                    by_tail_sku[(tail, sku)].append(i)
            if c.buyer_nick:
                self.by_nick[c.buyer_nick.strip().lower()].append(i)
            surname = c.buyer_name[:1]
            for sku in skus:
                by_surname_sku[(surname, sku)].append(i)

    def block(self, parcel: UnlabelledParcel, limit: int) -> tuple[list[Candidate], bool]:
        """Candidates sharing the waybill (or, when none does, one edit of it), a phone tail
        (+ the parcel's SKU), the buyer's account name, or surname + SKU; and whether a block
        was cut at ``limit`` (only a phone tail with no SKU to key it is)."""
        found: dict[int, None] = {}
        cut = False
        w = "" if is_masked(parcel.waybill) else normalise_waybill(parcel.waybill)
        exact = self.by_waybill.get(w, ()) if w else ()
        found.update(dict.fromkeys(exact))
        takes = any(admissible(parcel, self.candidates[i]) for i in exact)
        if w and not takes:  # as a person does: near spellings when no order it names can
            for near in one_edit_variants(w):  # take the parcel
                found.update(dict.fromkeys(self.by_waybill.get(near, ())))
        _, tail = phone_parts(parcel.sender_phone)
        sku = parcel.items[0][0] if parcel.items else ""
        if tail and sku:
            found.update(dict.fromkeys(self.by_tail_sku.get((tail, sku), ())))
        elif tail:
            same_tail = self.by_phone_tail.get(tail, ())
            cut = len(same_tail) > limit
            found.update(dict.fromkeys(same_tail[:limit]))
        found.update(dict.fromkeys(self.by_nick.get(parcel.sender_name.strip().lower(), ())))
        if not found and parcel.sender_name and sku:
            surname = parcel.sender_name.strip()[:1]
            found.update(dict.fromkeys(self.by_surname_sku.get((surname, sku), ())))
        return [self.candidates[i] for i in found], cut


def _multiset(pairs: Sequence[tuple[str, int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for sku, qty in pairs:
        out[sku] += qty
    return out


def admissible(parcel: UnlabelledParcel, c: Candidate) -> bool:
    """The hard constraints: same shop, no more back than is refundable. An order a parcel is
    already linked to stays a candidate (it is never auto-linked again, see ``match_parcel``):
    dropping it would hand its second box to a look-alike sibling order instead."""
    if parcel.shop and c.shop and parcel.shop != c.shop:
        return False
    left = _multiset(c.lines) - _multiset(c.refunded)
    return all(left[sku] >= qty for sku, qty in _multiset(parcel.items).items())


def score(parcel: UnlabelledParcel, c: Candidate, rules: MatchRules) -> Scored:
    points, signals = 0, []

    def add(n: int, signal: str) -> None:
        nonlocal points
        points += n
        signals.append(f"{signal} {n:+d}")

    masked = is_masked(parcel.waybill)
    w = normalise_waybill(parcel.waybill)
    rw, ow = normalise_waybill(c.return_waybill), normalise_waybill(c.outbound_waybill)
    evidence = ""
    if masked:  # the visible characters may fit; never more than a hint
        if rw and masked_fits(parcel.waybill, rw):
            add(rules.waybill_masked, "运单号（部分遮挡）与退货运单号相符")
            evidence = "masked"
        elif ow and masked_fits(parcel.waybill, ow):
            add(rules.waybill_masked, "运单号（部分遮挡）与发货运单号相符")
            evidence = "masked"
        elif rw:
            signals.append("运单号（部分遮挡）与退货运单号不符")
            evidence = "conflict"
    elif w and w == rw:
        add(rules.return_waybill, "运单号=退货运单号")
        evidence = "exact"
    elif w and w == ow:
        add(rules.outbound_waybill, "运单号=发货运单号（拒收退回）")
        evidence = "exact"
    elif w and rw and within_one(w, rw) and rules.printable_by(parcel.courier, rw):
        add(rules.waybill_one_edit, f"运单号与退货运单号{_how_near(w, rw)}")
        evidence = "one_edit"
    elif w and ow and within_one(w, ow) and rules.printable_by(parcel.courier, ow):
        add(rules.waybill_one_edit, f"运单号与发货运单号{_how_near(w, ow)}")
        evidence = "one_edit"
    elif w and rw:  # the buyer said which waybill the return went back under: not this one
        signals.append("运单号与退货运单号不符")
        evidence = "conflict"
    head, tail = phone_parts(parcel.sender_phone)
    c_head, c_tail = phone_parts(c.phone)
    buyer = ""
    if tail and tail == c_tail:
        add(rules.phone_tail, "手机尾号一致")
        buyer = "match"
        if head and head == c_head:
            add(rules.phone_head_bonus, "手机前三位一致")
    name = name_signal(parcel.sender_name, c.buyer_name, c.buyer_nick)
    if name == "exact":
        add(rules.name_exact, "姓名一致")
    elif name == "surname":
        add(rules.surname_only, "姓氏一致")
    if name:
        buyer = "match"
    sender = parcel.sender_name.strip().lower()
    nick = bool(sender) and sender == c.buyer_nick.strip().lower()
    if nick:
        add(rules.account_name, "买家账号一致")
    if (tail and c_tail and tail != c_tail) or (
        parcel.sender_name.strip() and c.buyer_name and not name
    ):
        buyer = "conflict"
        signals.append("寄件人与买家不符")
    if parcel.district and parcel.district == c.district:
        add(rules.same_district, "地区一致")
    got, bought = _multiset(parcel.items), _multiset(c.lines)
    if got and all(bought[sku] >= qty for sku, qty in got.items()):
        add(rules.skus_within_order, "商品都在订单内")
        if got == bought:
            add(rules.skus_exact_bonus, "商品与订单完全一致")
    if c.refund_id:
        add(rules.open_request, "有退货申请")
    if c.refund_created_at is not None:
        before = parcel.received_at - c.refund_created_at
        if timedelta(0) <= before <= timedelta(days=rules.recent_refund_days):
            add(rules.recent_refund, "到货前不久申请了售后")
    if c.signed_at is not None and parcel.received_at - c.signed_at > timedelta(
        days=rules.late_after_signing_days
    ):
        add(rules.late_after_signing, "签收很久后才到货")
    if c.linked:
        signals.append("该订单已关联过包裹（需人工确认）")
    recent = c.signed_at is not None and (
        timedelta(0) <= parcel.received_at - c.signed_at <= timedelta(days=rules.no_request_days)
    )
    # who sent it, beyond doubt: the phone tail with the name (or its surname), or with the
    # first three digits and the district (seven of eleven digits and where they live); or
    # the buyer's account name itself written on the label
    who = bool(tail and tail == c_tail) and (
        name in ("exact", "surname")
        or bool(head and head == c_head and parcel.district and parcel.district == c.district)
    )
    known = (who or nick) and buyer == "match"
    sure = known and bool(got) and set(got) == set(bought) and recent
    return Scored(c, points, tuple(signals), evidence, buyer, known, sure)


def same_buyer(a: Candidate, b: Candidate) -> bool:
    """Two orders of one buyer, or of look-alike buyers (the same phone tail and name)."""
    if a.buyer_nick and a.buyer_nick == b.buyer_nick:
        return True
    if a.phone and a.phone == b.phone:
        return True
    return (
        bool(a.buyer_name)
        and a.buyer_name == b.buyer_name
        and phone_parts(a.phone)[1] == phone_parts(b.phone)[1]
    )


def may_link(best: Scored, complete: bool = True, others: Sequence[Scored] = ()) -> bool:
    """Evidence enough to link without a person, beyond the score:
    - the exact waybill links, unless the parcel's sender contradicts the buyer (another
      phone tail, another name): then a person looks;
    - a masked waybill (``4600****3886``) is never more than a hint: it links only as any
      soft evidence does (below), never on the waybill alone;
    - an order with no open after-sales request needs the parcel's waybill to point at it
      (a buyer's old order of the same SKU is not a return);
    - an order already linked to a parcel is linked again only on its exact waybill, or,
      when the buyer opened a request on it, on that buyer beyond doubt
      (``Scored.known_buyer``: the second box of a split return); another second box goes
      to a person;
    - when some candidates were never examined (a search cut short), only the exact waybill
      links: the runner-up that would have stopped it may be among those not seen;
    - without the exact waybill, the buyer must be recognised (phone tail, name or surname)
      and not contradicted (another phone tail, another name): a waybill one digit off a
      neighbour's, or a lucky phone tail, with a popular SKU is not enough;
    - a request whose return waybill the buyer gave is not this parcel's (a parcel with a
      waybill of its own, far from that one) is a person's call: the buyer may have sent
      something bought elsewhere while that return is still on its way;
    - an order without a request and without the waybill links on the buyer alone only when
      nothing is in doubt (``Scored.sure_buyer``: phone tail and name, whole or its surname,
      or phone tail, first three digits and district, or the account name, agree and nothing
      contradicts them, the parcel holds exactly the order's SKUs, signed at most
      ``no_request_days`` before) and no other order of that buyer, or of a look-alike buyer
      (``others``: the other admissible candidates), could take it."""
    c = best.candidate
    if best.waybill == "exact":  # unless the sender is someone else (another phone, name)
        return best.buyer != "conflict"
    unique = not any(same_buyer(c, o.candidate) for o in others)
    on_buyer = not c.refund_id and best.waybill == "" and best.sure_buyer and unique
    return (
        bool(c.refund_id or best.waybill == "one_edit" or on_buyer)
        and best.waybill != "conflict"
        and (not c.linked or bool(c.refund_id and best.known_buyer))
        and complete
        and best.buyer == "match"
    )


def rivals(best: Scored, others: Sequence[Scored]) -> list[Scored]:
    """The runners-up whose score ``best`` must lead by ``link_lead``. When ``best`` is an
    order the buyer opened a return request for, and the parcel is the buyer's (recognised,
    not contradicted, its waybill not another one), that buyer's other orders without a
    request are no rivals: the parcel is the return the buyer announced, as a person reads
    it (a second box of a split return, or an item bought again since). Orders of other
    buyers, and the same buyer's other requests, still are."""
    c = best.candidate
    if not c.refund_id or best.buyer != "match" or best.waybill == "conflict":
        return list(others)
    return [o for o in others if o.candidate.refund_id or not same_buyer(c, o.candidate)]


def match_candidates(
    parcel: UnlabelledParcel,
    candidates: Iterable[Candidate],
    rules: MatchRules,
    *,
    complete: bool = True,
) -> MatchDecision:
    """Score every admissible candidate, rank them all, then decide. ``complete``: the
    candidates are every one the parcel's evidence points at (no search was cut)."""
    scored = sorted(
        (score(parcel, c, rules) for c in candidates if admissible(parcel, c)),
        key=lambda s: (-s.score, s.candidate.target),
    )
    best = scored[0] if scored else None
    runner = scored[1].score if len(scored) > 1 else None
    top = tuple(scored[: rules.suggestions])
    if best is None or best.score < rules.suggest_at:
        return MatchDecision(parcel, LEAVE, best, runner, top, complete)
    rival = max((s.score for s in rivals(best, scored[1:])), default=None)
    if (
        best.score >= rules.link_at
        and (rival is None or best.score - rival >= rules.link_lead)
        and may_link(best, complete, scored[1:])
    ):
        return MatchDecision(parcel, LINK, best, runner, top, complete)
    return MatchDecision(parcel, SUGGEST, best, runner, top, complete)


def match_parcel(
    parcel: UnlabelledParcel, index: CandidateIndex, rules: MatchRules
) -> MatchDecision:
    """One parcel against a batch index (its blocks, then ``match_candidates``)."""
    candidates, cut = index.block(parcel, rules.max_candidates)
    return match_candidates(parcel, candidates, rules, complete=not cut)
