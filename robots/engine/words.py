"""Banned-word matching: normalise the way sellers evade, search every word at once, map back.

Pure logic (no Playwright). Text is normalised one original character at a time, so each
normalised character remembers the span of the original text it came from and every hit is
reported with the seller's own spelling (``最😊好``, ``ＮＯ．１``, ``國家級``):

* NFKC and case folding: full-width letters and digits, ``No.1`` / ``TOP1``;
* traditional to simplified with OpenCC;
* spaces, punctuation, symbols and emoji between characters are dropped (``最 * 好``), except
  sentence breaks (``。，！？；`` and new lines), which no word may straddle;
* a CJK character repeated in a row counts once (``最最最好``).

All words are found in one pass with an Aho-Corasick automaton (pyahocorasick). A hit inside a
longer hit (``第一`` in ``全网销量第一``) is dropped, a hit inside an allowlisted phrase
(``第一次``, ``唯一的缺点``) is dropped, and a word of Latin letters and digits only counts
when it is not part of a longer Latin word or number (``tg`` in ``outgoing``, ``no1`` in
``no12``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick
import opencc

SENTENCE_BREAKS = frozenset("。，！？；\n\r!?;、")
BREAK = "\n"  # what a sentence break becomes in the normalised text; no word contains it
SEVERITIES = ("critical", "high", "medium", "low")

_t2s = opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional characters as simplified ones (國家級 → 国家级; 張偉 → 张伟)."""
    return str(_t2s.convert(text))


@lru_cache(maxsize=65_536)
def _fold(ch: str) -> str:
    """One original character, normalised: '' when it is a separator, BREAK for a break."""
    if ch in SENTENCE_BREAKS:
        return BREAK
    out = []
    for c in unicodedata.normalize("NFKC", ch).casefold():
        if c in SENTENCE_BREAKS:
            return BREAK
        if unicodedata.category(c)[0] in "LN":
            out.append(c)
    folded = "".join(out)
    if folded and any("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in folded):
        folded = _t2s.convert(folded)
    return folded


def _is_cjk(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff"


def _is_latin_or_digit(c: str) -> bool:
    return c.isascii() and c.isalnum()


@dataclass(frozen=True)
class Normalised:
    """Normalised text plus, per normalised character, its [start, end) in the original."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original [start, end) that normalised [start, end) came from."""
        return self.starts[start], self.ends[end - 1]


def normalise(text: str) -> Normalised:
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold(ch)
        for c in folded:
            if chars and c == chars[-1] and (_is_cjk(c) or c == BREAK):
                ends[-1] = i + 1  # a repeated character counts once, its span grows
                continue
            chars.append(c)
            starts.append(i)
            ends.append(i + 1)
    return Normalised("".join(chars), tuple(starts), tuple(ends))


def normalise_word(word: str) -> str:
    """A list entry normalised exactly as page text is, so both meet in the middle."""
    return normalise(word).text


@dataclass(frozen=True)
class BannedWord:
    word: str  # as written in the list, e.g. 特供
    category: str  # e.g. 极限词, 平台违禁词
    severity: str  # critical | high | medium | low
    aliases: tuple[str, ...] = ()  # other spellings that mean the same word, e.g. TG


@dataclass(frozen=True)
class WordHit:
    """One banned word found in one text, with the seller's own spelling and its context."""

    word: BannedWord
    spelling: str  # the normalised form that matched (the word or an alias)
    start: int  # original [start, end)
    end: int
    matched_text: str  # the original text of the span
    context: str  # a few characters either side, the span marked 【】


class WordMatcher:
    """Finds banned words in text; build once per word list, use for every page."""

    def __init__(
        self, words: Iterable[BannedWord], allowlist: Iterable[str] = (), context_chars: int = 12
    ) -> None:
        self.words = tuple(words)
        self.context_chars = context_chars
        self._automaton = ahocorasick.Automaton()
        for entry in self.words:
            for spelling in (entry.word, *entry.aliases):
                key = normalise_word(spelling)
                if not key:
                    raise ValueError(f"{spelling!r} has no letters or digits left to match")
                self._automaton.add_word(key, (key, entry))
        self._automaton.make_automaton()
        self._allow = ahocorasick.Automaton()
        allowed = {normalise_word(p) for p in allowlist} - {""}
        for phrase in allowed:
            self._allow.add_word(phrase, len(phrase))
        if allowed:
            self._allow.make_automaton()
        self._has_allow = bool(allowed)

    def find(self, text: str) -> list[WordHit]:
        if not text:
            return []
        norm = normalise(text)
        t = norm.text
        raw: list[tuple[int, int, str, BannedWord]] = []
        for last, (key, entry) in self._automaton.iter(t):
            start = last - len(key) + 1
            if self._ascii_glued(text, norm, start, last + 1, key):
                continue
            raw.append((start, last + 1, key, entry))
        if not raw:
            return []
        allowed = (
            [(last - n + 1, last + 1) for last, n in self._allow.iter(t)] if self._has_allow else []
        )
        kept: list[tuple[int, int, str, BannedWord]] = []
        for hit in sorted(raw, key=lambda h: (h[0] - h[1], h[0])):  # longest first
            s, e = hit[0], hit[1]
            if any(ks <= s and e <= ke for ks, ke, _, _ in kept):
                continue
            if any(a_s <= s and e <= a_e for a_s, a_e in allowed):
                continue
            kept.append(hit)
        hits = []
        for s, e, key, entry in sorted(kept):
            o_start, o_end = norm.original_span(s, e)
            hits.append(
                WordHit(
                    entry,
                    key,
                    o_start,
                    o_end,
                    text[o_start:o_end],
                    self._context(text, o_start, o_end),
                )
            )
        return hits

    def contains_any(self, normalised_text: str) -> bool:
        """Whether any word occurs in already-normalised text (no allowlist, no spans)."""
        return any(True for _ in self._automaton.iter(normalised_text))

    def search_normalised(self, normalised_text: str) -> list[tuple[int, str]]:
        """Every (end index, word) in already-normalised text: the raw multi-pattern search."""
        return [(last, entry.word) for last, (_, entry) in self._automaton.iter(normalised_text)]

    @staticmethod
    def _ascii_glued(text: str, norm: Normalised, start: int, end: int, key: str) -> bool:
        """A Latin/digit word must not be a piece of a longer Latin word or number.

        Judged on the original neighbours, so ``NO.1 TOP`` is two words but ``outgoing``
        and ``No.12`` hold none.
        """
        if not all(_is_latin_or_digit(c) for c in key):
            return False
        o_start, o_end = norm.original_span(start, end)
        before = _fold(text[o_start - 1]) if o_start > 0 else ""
        after = _fold(text[o_end]) if o_end < len(text) else ""
        if before and before[-1].isascii() and before[-1].isalpha():
            return True
        return bool(after and after[0].isascii() and after[0].isalnum())

    def _context(self, text: str, start: int, end: int) -> str:
        n = self.context_chars
        before = text[max(0, start - n) : start].replace("\n", " ")
        after = text[end : end + n].replace("\n", " ")
        lead = "…" if start > n else ""
        tail = "…" if end + n < len(text) else ""
        return f"{lead}{before}【{text[start:end]}】{after}{tail}"
