"""Matching a shop's wording against a scenario's keyword lists.

Real pages do not spell things the way a rule list does: 服饰内衣 > 女士内衣 > 文胸 for
内衣, 数码(已拆封) for 数码（已拆封）, 收到商品破损 for 破损, ＴＴ for TT. Both sides are
normalised the same way before they are compared:

- NFKC (full-width letters, digits and punctuation become half-width), case folded;
- white space, brackets of every kind and separators (``> / \\ | 、 , ， · - _ :``) removed,
  so a category path or a bracketed note reads as one run of words.

A list entry is a *keyword*: it matches when its normalised form occurs anywhere in the
normalised text, ``*`` standing for anything (``数码*已拆封``). An entry starting ``re:`` is
a regular expression searched in the normalised text instead (write it against the
normalised form: no spaces, brackets or separators, half-width, lower case).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_DROPPED = re.compile(r"[\s()\[\]{}<>（）【】「」『』〈〉《》〔〕/\\|、,，·・\-_—:：>›»＞]+")
REGEX_PREFIX = "re:"


def normalise(text: str) -> str:
    """The form both a page's text and a keyword are compared in."""
    return _DROPPED.sub("", unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=256)
def _compiled(entry: str) -> re.Pattern[str]:
    if entry.startswith(REGEX_PREFIX):
        return re.compile(entry[len(REGEX_PREFIX) :])
    parts = [re.escape(normalise(p)) for p in entry.split("*")]
    return re.compile(".*".join(parts))


def check_entry(entry: str) -> str:
    """A list entry as a scenario gives it, refused when it cannot match anything sensible
    (empty after normalisation, or a broken regular expression)."""
    if entry.startswith(REGEX_PREFIX):
        try:
            re.compile(entry[len(REGEX_PREFIX) :])
        except re.error as exc:
            raise ValueError(f"{entry!r} is not a regular expression: {exc}") from None
    elif not normalise(entry.replace("*", "")):
        raise ValueError(f"{entry!r} has no words left once spaces and brackets are removed")
    return entry


def first_match(entries: tuple[str, ...] | list[str], text: str) -> str | None:
    """The first entry of ``entries`` that ``text`` matches, or None."""
    plain = normalise(text)
    for entry in entries:
        if _compiled(entry).search(plain):
            return entry
    return None
