"""Keeps secret values out of everything a run writes: log lines, reports, messages."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "******"


class Redactor:
    """Replaces every registered secret value with a mask."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        if len(value) < 4:  # masking tiny strings would shred ordinary text
            return
        self._values.add(value)
        alternatives = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text
