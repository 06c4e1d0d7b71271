"""The searches a person makes in the back office for one parcel, and what they found.

Pure logic, shared by the robot (its searches go through the browser) and the benchmark (its
searches are answered in process): the waybill as carriers print it (and as the parcel shows
it, when that differs; a masked one, never); when no order that could take the parcel
carries that waybill and the shop can, waybills one character apart (or with two neighbours
swapped); then the phone tail and the full name, each narrowed to orders holding the
parcel's SKU paid since ``lookback_days`` before it arrived when the shop can narrow (an order
without that SKU can never take the parcel). A search read only in part (more pages than
``max_pages``, or a full page with no way to page) marks the candidates incomplete, and the
matcher then links on the exact waybill only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from robots.engine.words import to_simplified
from robots.returns.matching import (
    Candidate,
    UnlabelledParcel,
    admissible,
    is_masked,
    normalise_waybill,
    phone_parts,
)
from robots.returns.scenario import SearchPage

_MASKED = ("*", "＊", "先生", "女士", "小姐")


@dataclass(frozen=True)
class Lookup:
    """One search: a keyword, optionally narrowed to a SKU and a first day, or fuzzy."""

    q: str
    sku: str = ""
    since: str = ""  # YYYY-MM-DD
    fuzzy: bool = False

    def path(self, spec: SearchPage) -> str:
        template = spec.path
        if self.fuzzy and spec.fuzzy_path:
            template = spec.fuzzy_path
        elif self.sku and spec.narrow_path:
            template = spec.narrow_path
        return template.format(q=quote(self.q), sku=quote(self.sku), since=quote(self.since))

    def __str__(self) -> str:
        narrowed = f" + {self.sku} since {self.since}" if self.sku else ""
        return f"{self.q}{narrowed}{' (fuzzy)' if self.fuzzy else ''}"


@dataclass(frozen=True)
class Found:
    """What one search showed: its rows (every page read), and whether there were more."""

    rows: list[Candidate]
    cut: bool = False


class CandidateSearch:
    """The lookups for one parcel, in order, and every candidate they found (by order)."""

    def __init__(self, parcel: UnlabelledParcel, spec: SearchPage) -> None:
        self.parcel = parcel
        self.spec = spec
        self.candidates: dict[str, Candidate] = {}
        self.cut: list[Lookup] = []  # the lookups whose results were not all read

    @property
    def complete(self) -> bool:
        return not self.cut

    def add(self, lookup: Lookup, found: Found) -> None:
        for c in found.rows:
            self.candidates.setdefault(c.order_id, c)
        if found.cut:
            self.cut.append(lookup)

    def lookups(self) -> Iterator[Lookup]:
        """Lazily: whether a fuzzy waybill search is needed depends on what came before."""
        p, spec = self.parcel, self.spec
        # a masked waybill (4600****3886) is never searched as the characters that remain:
        # they could be another waybill; the buyer's searches below find its order
        waybill = "" if is_masked(p.waybill) else normalise_waybill(p.waybill)
        if waybill:
            yield Lookup(waybill)
        typed = p.waybill.strip()
        if waybill and typed != waybill:
            yield Lookup(typed)
        if spec.fuzzy_path and len(waybill) >= 8 and not self._carries(waybill):
            yield Lookup(waybill, fuzzy=True)
        sku = p.items[0][0] if p.items else ""
        since = (p.received_at - timedelta(days=spec.lookback_days)).date().isoformat()
        _, tail = phone_parts(p.sender_phone)
        name = p.sender_name.strip()
        full_name = name if len(name) >= 2 and not name.endswith(_MASKED) else ""
        # a name written in traditional characters: the shop knows it in simplified ones
        simplified = to_simplified(full_name) if full_name else ""
        for q in dict.fromkeys(q for q in (tail, full_name, simplified) if q):
            if spec.narrow_path and sku:
                yield Lookup(q, sku=sku, since=since)
            else:
                yield Lookup(q)

    def _carries(self, waybill: str) -> bool:
        """Whether an order found so far carries ``waybill`` and could take the parcel (one
        that cannot, a refund already paid or another shop's, leaves near spellings to try)."""
        return any(
            waybill in (normalise_waybill(c.return_waybill), normalise_waybill(c.outbound_waybill))
            and admissible(self.parcel, c)
            for c in self.candidates.values()
        )
