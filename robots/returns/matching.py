"""Match unlabelled warehouse parcels (无名件) to the orders they came from (DOMAIN.md §2).

Pure logic: no desktop, no browser, no clock. ``CandidateIndex`` is built once over the open
orders and after-sales requests with blocking indexes (exact waybill, waybills one edit
apart, phone tail, and surname+SKU as the last resort), so a parcel is scored only against the
handful of candidates that share something with it, never against every order. Each decision
carries the signals that fired and the runner-up's score. A wrong link refunds the wrong
buyer, so the thresholds favour precision.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

LINK, SUGGEST, LEAVE = "link", "suggest", "leave"


class MatchRules(BaseModel):
    """Scores and thresholds; defaults are DOMAIN.md §2's starting point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    return_waybill: int = 100
    outbound_waybill: int = 90
    waybill_one_edit: int = 40
    phone_tail: int = 25
    phone_head_bonus: int = 5
    name_exact: int = 20
    surname_only: int = 8
    same_district: int = 10
    skus_within_order: int = 30
    skus_exact_bonus: int = 10
    recent_refund: int = 10
    recent_refund_days: int = Field(default=10, ge=0)
    late_after_signing: int = -20
    late_after_signing_days: int = Field(default=30, ge=0)
    link_at: int = 80
    link_lead: int = Field(default=20, ge=0)
    suggest_at: int = 50
    suggestions: int = Field(default=3, ge=1, le=10)
    max_candidates: int = Field(default=200, ge=1, description="per parcel, after blocking")


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
    waybill: str = ""  # the waybill evidence: "exact", "one_edit" or ""


@dataclass(frozen=True)
class MatchDecision:
    parcel: UnlabelledParcel
    outcome: str  # link | suggest | leave
    best: Scored | None
    runner_up_score: int | None
    top: tuple[Scored, ...] = field(default_factory=tuple)

    @property
    def target(self) -> str:
        return self.best.candidate.target if self.best else ""


def normalise_waybill(w: str) -> str:
    """A waybill as carriers print it: full-width forms folded (ＳＦ１２３ → SF123), upper case,
    spaces, dashes and other punctuation dropped ("sf 1234-5678 90" → "SF1234567890")."""
    folded = unicodedata.normalize("NFKC", w).upper()
    return "".join(c for c in folded if c.isascii() and c.isalnum())


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def phone_parts(masked: str) -> tuple[str, str]:
    """'138****5678' -> ('138', '5678'); a full number gives its first 3 and last 4."""
    s = masked.strip()
    tail = _digits(s[-4:]) if len(s) >= 4 else ""
    head = _digits(s[:3]) if len(s) >= 7 else ""
    return (head if len(head) == 3 else "", tail if len(tail) == 4 else "")


_TITLES = ("先生", "女士", "小姐", "老师")


def name_signal(sender: str, buyer_name: str, buyer_nick: str) -> str:
    """'exact', 'surname' or ''. Masked (王*) and titled (王先生) names count as surname only."""
    s = sender.strip().replace(" ", "")
    if not s or not buyer_name:
        return ""
    if s == buyer_name:
        return "exact"
    # nicknames are long Latin strings, often retyped with a slip (tb_wxm / tb-wxm)
    if buyer_nick and len(s) >= 5 and fuzz.ratio(s.lower(), buyer_nick.lower()) >= 90:
        return "exact"
    stem = s.rstrip("*＊")
    for title in _TITLES:
        stem = stem.removesuffix(title)
    if stem and len(stem) <= 2 and buyer_name.startswith(stem) and stem != buyer_name:
        return "surname"
    return ""


def _deletions(w: str) -> set[str]:
    """The waybill with each character deleted once: keys of the one-edit blocking index."""
    return {w[:i] + w[i + 1 :] for i in range(len(w))}


class CandidateIndex:
    """Blocking indexes over the candidates, built once for a whole batch of parcels."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.candidates: list[Candidate] = list(candidates)
        self.by_waybill: dict[str, list[int]] = defaultdict(list)
        self.by_deletion: dict[str, list[int]] = defaultdict(list)
        self.by_phone_tail: dict[str, list[int]] = defaultdict(list)
        self.by_surname_sku: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, c in enumerate(self.candidates):
            waybills = {normalise_waybill(c.return_waybill), normalise_waybill(c.outbound_waybill)}
            for w in waybills - {""}:
                self.by_waybill[w].append(i)
                for key in _deletions(w) | {w}:  # a typo in either (return or outbound)
                    self.by_deletion[key].append(i)
            _, tail = phone_parts(c.phone)
            if tail:
                self.by_phone_tail[tail].append(i)
            surname = c.buyer_name[:1]
            for sku, _ in c.lines:
                self.by_surname_sku[(surname, sku)].append(i)

    def block(self, parcel: UnlabelledParcel, limit: int) -> list[Candidate]:
        """Candidates sharing a waybill (or one edit of it), a phone tail, or surname + SKU."""
        found: dict[int, None] = {}
        w = normalise_waybill(parcel.waybill)
        if w:
            for i in self.by_waybill.get(w, ()):
                found[i] = None
            for key in _deletions(w) | {w}:
                for i in self.by_deletion.get(key, ()):
                    found[i] = None
        _, tail = phone_parts(parcel.sender_phone)
        if tail:
            for i in self.by_phone_tail.get(tail, ())[:limit]:
                found[i] = None
        if not found and parcel.sender_name and parcel.items:
            surname = parcel.sender_name.strip()[:1]
            for sku, _ in parcel.items[:1]:
                for i in self.by_surname_sku.get((surname, sku), ())[:limit]:
                    found[i] = None
        return [self.candidates[i] for i in list(found)[:limit]]


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

    w = normalise_waybill(parcel.waybill)
    rw, ow = normalise_waybill(c.return_waybill), normalise_waybill(c.outbound_waybill)
    evidence = ""
    if w and w == rw:
        add(rules.return_waybill, "运单号=退货运单号")
        evidence = "exact"
    elif w and w == ow:
        add(rules.outbound_waybill, "运单号=发货运单号（拒收退回）")
        evidence = "exact"
    elif w and rw and Levenshtein.distance(w, rw, score_cutoff=1) <= 1:
        add(rules.waybill_one_edit, "运单号与退货运单号差一位")
        evidence = "one_edit"
    elif w and ow and Levenshtein.distance(w, ow, score_cutoff=1) <= 1:
        add(rules.waybill_one_edit, "运单号与发货运单号差一位")
        evidence = "one_edit"
    head, tail = phone_parts(parcel.sender_phone)
    c_head, c_tail = phone_parts(c.phone)
    if tail and tail == c_tail:
        add(rules.phone_tail, "手机尾号一致")
        if head and head == c_head:
            add(rules.phone_head_bonus, "手机前三位一致")
    name = name_signal(parcel.sender_name, c.buyer_name, c.buyer_nick)
    if name == "exact":
        add(rules.name_exact, "姓名一致")
    elif name == "surname":
        add(rules.surname_only, "姓氏一致")
    if parcel.district and parcel.district == c.district:
        add(rules.same_district, "地区一致")
    got, bought = _multiset(parcel.items), _multiset(c.lines)
    if got and all(bought[sku] >= qty for sku, qty in got.items()):
        add(rules.skus_within_order, "商品都在订单内")
        if got == bought:
            add(rules.skus_exact_bonus, "商品与订单完全一致")
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
    return Scored(c, points, tuple(signals), evidence)


def may_link(best: Scored) -> bool:
    """Evidence enough to link without a person, beyond the score: an order with no open
    after-sales request needs the parcel's waybill to point at it (a buyer's old order of
    the same SKU is not a return), and an order already linked to a parcel is never linked
    again automatically (a second box goes to a person)."""
    c = best.candidate
    return not c.linked and bool(c.refund_id or best.waybill)


def match_parcel(
    parcel: UnlabelledParcel, index: CandidateIndex, rules: MatchRules
) -> MatchDecision:
    scored = sorted(
        (
            score(parcel, c, rules)
            for c in index.block(parcel, rules.max_candidates)
            if admissible(parcel, c)
        ),
        key=lambda s: (-s.score, s.candidate.target),
    )
    best = scored[0] if scored else None
    runner = scored[1].score if len(scored) > 1 else None
    top = tuple(scored[: rules.suggestions])
    if best is None or best.score < rules.suggest_at:
        return MatchDecision(parcel, LEAVE, best, runner, top)
    lead = best.score - (runner if runner is not None else 0)
    if (
        best.score >= rules.link_at
        and (runner is None or lead >= rules.link_lead)
        and may_link(best)
    ):
        return MatchDecision(parcel, LINK, best, runner, top)
    return MatchDecision(parcel, SUGGEST, best, runner, top)
