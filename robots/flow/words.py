"""A flow's ``[words]`` (客服质检): the words of its classes found in an item's text, and when
a class's hits rise, the last hour against the hours before it.

Pure. ``hits``: a text in, the words found out (the engine's banned-word matcher:
``robots.engine.words``). ``rises``: the times each class was counted at in, the rises out.
The last hour is the 60 minutes up to now (a spike shows the minute it lands, not at the
next full hour); each of the ``hours`` before it is a 60-minute window too, and their
average is the baseline. A
baseline under ``least`` hits an hour is too little volume to judge: no alert. A last hour
at or above the baseline × (1 + ``warning``) is a warning, × (1 + ``severe``) critical.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from robots.engine.words import BannedWord, WordMatcher

# ``words`` below is a flow's ``[words]`` (``robots.flow.scenario.FlowWords``), not imported:
# this module stays apart from what reads pages

HOUR = timedelta(hours=1)


def matcher(words: Any) -> WordMatcher:
    """One automaton for every class's words (a word's category is its class)."""
    return WordMatcher(
        (BannedWord(w, kind, "high") for kind, c in words.classes.items() for w in c.words),
        allowlist=words.allow,
    )


def hits(words: Any, found_by: WordMatcher, text: Any) -> list[dict[str, str]]:
    """The words found in ``text`` (none when it is not a text: a field not read), each
    ``{kind, label, word, text}``, as the rules see them."""
    if not isinstance(text, str):
        return []
    return [
        {
            "kind": h.word.category,
            "label": words.classes[h.word.category].label,
            "word": h.word.word,
            "text": h.matched_text,
        }
        for h in found_by.find(text)
    ]


@dataclass(frozen=True)
class Rising:
    kind: str
    level: str  # warning | critical
    last: int  # hits in the last hour
    baseline: float  # the average of the hours before it
    hours: int

    @property
    def ratio(self) -> float:
        return self.last / self.baseline - 1


def window_counts(times: Iterable[datetime], now: datetime, hours: int) -> list[int]:
    """Hits in the last hour, then in each hour before it (``hours`` of them), newest first."""
    counts = [0] * (hours + 1)
    for at in times:
        age = now - at
        if age < timedelta(0):
            age = timedelta(0)  # counted a moment ahead of our clock: this hour
        i = int(age / HOUR)
        if i <= hours:
            counts[i] += 1
    return counts


def rises(
    times: dict[str, list[datetime]],
    now: datetime,
    *,
    hours: int,
    least: float,
    warning: float,
    severe: float,
) -> list[Rising]:
    """Each class whose last hour rose enough, with its level."""
    found = []
    for kind, at in sorted(times.items()):
        last, *before = window_counts(at, now, hours)
        baseline = sum(before) / hours
        if baseline < least:
            continue
        if last >= baseline * (1 + severe):
            found.append(Rising(kind, "critical", last, baseline, hours))
        elif last >= baseline * (1 + warning):
            found.append(Rising(kind, "warning", last, baseline, hours))
    return found
