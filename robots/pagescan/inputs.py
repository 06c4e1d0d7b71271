"""The page scan's inputs, kept the way ops keep them: a price-list workbook and word files.

Both are checked when loaded. A bad price list names the sheet, row and column; a bad word
file names the line. Nothing is half-loaded: the first problem stops the run (exit 2).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from robots.engine.words import SEVERITIES, BannedWord, normalise_word
from robots.errors import ConfigError
from robots.pagescan.model import PriceListEntry
from robots.pagescan.scenario import PriceListSpec

TRUE_WORDS = {"是", "有", "y", "yes", "true", "1"}
FALSE_WORDS = {"", "否", "无", "n", "no", "false", "0"}
_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def _cell_error(
    file: Path, sheet: str, row: int, col: int, header: str, message: str
) -> ConfigError:
    key = f"sheet {sheet!r}, row {row}, column {get_column_letter(col)} ({header})"
    return ConfigError(message, file=str(file), key=key)


def _money(value: Any, *, where: tuple[Path, str, int, int, str], required: bool) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _cell_error(*where, "empty cell; expected a number")
        return None
    if isinstance(value, bool):
        raise _cell_error(*where, f"expected a number, got {value!r}")
    if isinstance(value, int | float | Decimal):
        amount = Decimal(str(value))
    elif isinstance(value, str) and _NUMBER.match(value):
        amount = Decimal(value.strip())
    else:
        raise _cell_error(*where, f"expected a number, got text {value!r}")
    if amount < 0:
        raise _cell_error(*where, f"expected a number of at least 0, got {value!r}")
    return amount.quantize(Decimal("0.01"))


def load_price_list(spec: PriceListSpec, file: Path) -> dict[str, PriceListEntry]:
    """SKU -> approved price, cost and the rest; every cell checked."""
    if not file.is_file():
        what = "price list is a folder" if file.is_dir() else "price list not found"
        raise ConfigError(what, file=str(file), expected="an .xlsx workbook")
    try:
        wb = load_workbook(file, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
        raise ConfigError(
            f"cannot read the workbook: {exc}", file=str(file), expected="an .xlsx file"
        ) from None
    try:
        if spec.sheet is not None and spec.sheet not in wb.sheetnames:
            raise ConfigError(
                f"no sheet named {spec.sheet!r} (sheets: {', '.join(wb.sheetnames)})",
                file=str(file),
            )
        ws = wb[spec.sheet] if spec.sheet else wb.worksheets[0]
        sheet = ws.title
        table = list(ws.iter_rows(min_row=spec.header_row, values_only=True))
    finally:
        wb.close()  # everything is read; checking it needs no open file
    return _entries(spec, file, sheet, table)


def _entries(
    spec: PriceListSpec, file: Path, sheet: str, table: list[tuple[Any, ...]]
) -> dict[str, PriceListEntry]:
    rows = iter(table)
    header = next(rows, None) or ()
    names = [str(h).strip() if h is not None else "" for h in header]
    wanted = spec.columns.model_dump()
    required = ("sku", "style", "approved", "cost")
    index: dict[str, int] = {}
    for field, name in wanted.items():
        if name is None:
            continue
        if name in names:
            index[field] = names.index(name)
        elif field in required:
            present = ", ".join(n for n in names if n) or "none"
            raise ConfigError(
                f"missing column {name!r} (found: {present})",
                file=str(file),
                key=f"sheet {sheet!r}, row {spec.header_row}",
                expected=f"a header cell named {name!r}, or set price_list.columns.{field}",
            )
    entries: dict[str, PriceListEntry] = {}
    for r, values in enumerate(rows, start=spec.header_row + 1):
        if not any(v is not None and str(v).strip() for v in values):
            continue

        def value(field: str, values: tuple[Any, ...] = values) -> Any:
            i = index.get(field)
            return values[i] if i is not None and i < len(values) else None

        def where(field: str, r: int = r) -> tuple[Path, str, int, int, str]:
            return (file, sheet, r, index[field] + 1, wanted[field])

        sku = str(value("sku") or "").strip()
        if not sku:
            raise _cell_error(*where("sku"), "empty SKU")
        if sku in entries:
            raise _cell_error(
                *where("sku"), f"duplicate SKU {sku!r} (first on row {entries[sku].row})"
            )
        approved = _money(value("approved"), where=where("approved"), required=True)
        cost = _money(value("cost"), where=where("cost"), required=True)
        assert approved is not None and cost is not None
        if approved == 0:
            raise _cell_error(*where("approved"), "approved price is 0")
        floor = (
            _money(value("floor"), where=where("floor"), required=False)
            if "floor" in index
            else None
        )
        list_price = (
            _money(value("list_price"), where=where("list_price"), required=False)
            if "list_price" in index
            else None
        )
        premium = False
        if "size_premium" in index:
            raw = str(value("size_premium") or "").strip().lower()
            if raw not in TRUE_WORDS | FALSE_WORDS:
                raise _cell_error(
                    *where("size_premium"), f"expected 是 or 否, got {value('size_premium')!r}"
                )
            premium = raw in TRUE_WORDS
        entries[sku] = PriceListEntry(
            sku=sku,
            style=str(value("style") or "").strip() or sku,
            approved=approved,
            cost=cost,
            floor=floor,
            list_price=list_price,
            size_premium=premium,
            row=r,
        )
    if not entries:
        raise ConfigError("the price list has no rows", file=str(file), key=f"sheet {sheet!r}")
    return entries


def _lines(file: Path, what: str) -> list[tuple[int, str]]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", file=str(file)) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a folder", file=str(file), expected="a text file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", file=str(file), expected="a UTF-8 text file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} cannot be read ({exc.strerror})", file=str(file)) from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append((n, line))
    return out


def load_banned_words(file: Path) -> list[BannedWord]:
    """``word  category  severity  [alias,alias]`` per line; ``#`` starts a comment."""
    words: list[BannedWord] = []
    seen: dict[str, int] = {}
    for n, line in _lines(file, "banned-word list"):
        parts = line.split()
        key = f"line {n}"
        if len(parts) not in (3, 4):
            raise ConfigError(
                f"expected 3 or 4 columns, got {len(parts)}: {line!r}",
                file=str(file),
                key=key,
                expected="word, category, severity (critical|high|medium|low), optional aliases",
            )
        word, category, severity = parts[:3]
        if severity not in SEVERITIES:
            raise ConfigError(
                f"unknown severity {severity!r}",
                file=str(file),
                key=key,
                expected=" | ".join(SEVERITIES),
            )
        aliases = tuple(a for a in parts[3].split(",") if a) if len(parts) == 4 else ()
        for spelling in (word, *aliases):
            norm = normalise_word(spelling)
            if not norm:
                raise ConfigError(
                    f"{spelling!r} has no letters or digits to match", file=str(file), key=key
                )
            if norm in seen:
                raise ConfigError(
                    f"{spelling!r} is listed twice (first on line {seen[norm]})",
                    file=str(file),
                    key=key,
                )
            seen[norm] = n
        words.append(BannedWord(word, category, severity, aliases))
    if not words:
        raise ConfigError("the banned-word list is empty", file=str(file))
    return words


def load_allowlist(file: Path) -> list[str]:
    """One phrase of normal speech per line that must not be flagged (``第一次``)."""
    return [line for _, line in _lines(file, "allowlist")]
