"""A flow's items from a file a person prepared: a workbook (.xlsx) or a CSV, its first row the
headers, each of the flow's ``columns`` found by its header and read as a typed field (the
same words, maps and types as a page's fields, failing closed).

A file with a bad row is refused whole before anything is done, every problem named with
sheet, row and column, the first on the first line: a run never works half a list a person
got wrong.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from robots.config import FieldSpec, raise_problems
from robots.engine.fields import FieldKind, FieldReader, UnreadableField, label_key
from robots.errors import ConfigError
from robots.runtime.clock import ShopClock

MAX_SHOWN = 20  # problems named beside the first (the rest counted)


def read_rows(
    file: Path,
    sheet: str | None,
    columns: dict[str, FieldSpec],
    headers: dict[str, str],
    kinds: dict[str, FieldKind],
    clock: ShopClock,
) -> list[dict[str, Any]]:
    """Every row of ``file`` (blank rows left out), each column read as its field; one bad
    row refuses the file (``ConfigError``, every problem named)."""
    where, table = _table(file, sheet)
    if not table:
        raise ConfigError(f"{where} is empty: no header row", file=str(file), key="source.file")
    head = {
        label_key(str(h)): i for i, h in enumerate(table[0]) if h is not None and str(h).strip()
    }
    missing = [headers[n] for n in columns if label_key(headers[n]) not in head]
    if missing:
        raise ConfigError(
            f"{where} has no column {', '.join(repr(m) for m in missing)} "
            f"(its header row: {', '.join(str(h) for h in table[0] if h is not None)})",
            file=str(file),
            key="source.columns",
        )
    at = {n: head[label_key(headers[n])] for n in columns}
    reader = FieldReader(columns, kinds, clock, name="source")
    rows, problems = [], []
    for r, cells in enumerate(table[1:], start=2):
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        raw = {n: [_cell(cells, i)] for n, i in at.items()}
        try:
            rows.append(reader.read(raw))
        except UnreadableField as exc:
            for bad in [exc, *exc.others]:
                column = f"{headers[bad.field]} ({get_column_letter(at[bad.field] + 1)})"
                problems.append(
                    (f"{where} row {r} column {column}", f"{bad.problem}: {bad.shown!r}")
                )
    if len(problems) > MAX_SHOWN + 1:
        more = len(problems) - MAX_SHOWN - 1
        problems = [*problems[: MAX_SHOWN + 1], ("…", f"{more} more problems like these")]
    raise_problems(file, problems)
    return rows


def _table(file: Path, sheet: str | None) -> tuple[str, list[list[Any]]]:
    """The file's cells, row by row, and how to name where they are."""
    if not file.is_file():
        raise ConfigError(f"no file {file}", file=str(file), key="source.file")
    if file.suffix.lower() == ".csv":
        try:
            with file.open(encoding="utf-8-sig", newline="") as f:
                return file.name, [list(r) for r in csv.reader(f)]
        except UnicodeDecodeError:
            raise ConfigError(
                f"{file.name} is not UTF-8 text; save it as CSV UTF-8", file=str(file)
            ) from None
    try:
        wb = load_workbook(file, read_only=True, data_only=True)
    except Exception as exc:  # not a workbook at all: one line, not a traceback
        raise ConfigError(
            f"cannot open {file.name} as a workbook (.xlsx): {exc}", file=str(file)
        ) from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise ConfigError(
                f"{file.name} has no sheet {sheet!r} (it has {', '.join(wb.sheetnames)})",
                file=str(file),
                key="source.sheet",
            )
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        return f"sheet {ws.title}", [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _cell(cells: list[Any], i: int) -> str:
    """A cell as text, as a person sees it: 2 not 2.0, a date as 2026-12-06 10:00."""
    value = cells[i] if i < len(cells) else None
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
