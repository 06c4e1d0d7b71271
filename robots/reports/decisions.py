"""The decisions file the console writes for `robots apply` (one per robot): ``{"robot": …,
"rows": [{…}, …]}``. Read here once for every robot; each robot checks its own fields."""

from __future__ import annotations

import json
from pathlib import Path

from robots.errors import InvalidReview


def cell_text(value: object) -> str:
    return "" if value is None else str(value).strip()


def console_rows(file: Path) -> list[tuple[int, dict[str, str]]]:
    """The file's rows, numbered from 1 (``decision N`` in problems), every value as text;
    InvalidReview when it is missing or not such a file."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidReview(file, ["no such file"]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidReview(file, [f"not the console's decisions (JSON): {exc}"]) from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidReview(file, ['not the console\'s decisions: expected {"rows": [{…}, …]}'])
    return [(n, {k: cell_text(v) for k, v in r.items()}) for n, r in enumerate(rows, start=1)]
