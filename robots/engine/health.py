"""Field health: how often each field of a page could not be read in a run.

A ``FieldReader`` given the run's ``count`` tells it of every whole read of its page and of
every field that could not be read in it; these counts travel with the run's other counts
(a cluster worker's included) and are read back here for the run summary, the workbook's
汇总, the alerts and the exit code. Nothing here imports anything of the project's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# how a run counts its field reads (``FieldReader.tally``), and reads them back
READ, UNREADABLE = "field:read:", "field:unreadable:"


@dataclass(frozen=True)
class FieldHealth:
    """One field that could not be read on some reads of its page in a run."""

    field: str  # "<reader>.<field>", e.g. detail.receipt_sku
    unreadable: int
    reads: int  # whole reads of its page (list rows, detail pages)

    @property
    def share(self) -> float:
        return self.unreadable / self.reads if self.reads else 1.0

    def text(self) -> str:
        """As ops read it: detail.receipt_sku 无法读取 29 / 120 次读取."""
        return f"{self.field} 无法读取 {self.unreadable} / {self.reads} 次读取"


def health(counts: Mapping[str, int]) -> list[FieldHealth]:
    """The fields a run could not read, most often first, from its counts."""
    found = []
    for key, n in counts.items():
        if key.startswith(UNREADABLE) and n:
            field = key[len(UNREADABLE) :]
            found.append(FieldHealth(field, n, counts.get(READ + field.split(".")[0], 0)))
    return sorted(found, key=lambda h: (-h.unreadable, h.field))


def is_field_count(key: str) -> bool:
    """A count of field reads, shown as field health rather than as an outcome."""
    return key.startswith(("field:",))
