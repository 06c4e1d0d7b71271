"""The terminal's export of unlabelled parcels, read with openpyxl and checked row by row.

A malformed export (a missing column, an unreadable item list or date, a repeated parcel)
is refused with the sheet, row and column named: the robot never links from half a list.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from robots.errors import MalformedExport
from robots.returns.matching import UnlabelledParcel
from robots.returns.scenario import ExportSpec

_ITEM = re.compile(r"^\s*(\S+?)\s*[×xX*]\s*(\d+)\s*$")


def parse_items(text: str) -> tuple[tuple[str, int], ...]:
    """'TS1-BLK-M×1; JN2-NAV-L×2' -> (('TS1-BLK-M', 1), ('JN2-NAV-L', 2))."""
    items = []
    for piece in filter(None, (p.strip() for p in re.split(r"[;；,，]", text))):
        match = _ITEM.match(piece)
        if not match or int(match.group(2)) < 1:
            raise ValueError(f"{piece!r} is not SKU×quantity")
        items.append((match.group(1), int(match.group(2))))
    if not items:
        raise ValueError("no items")
    return tuple(items)


def read_export(path: Path, spec: ExportSpec, *, shop: str = "") -> list[UnlabelledParcel]:
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
        raise MalformedExport(f"{path}: cannot read the workbook: {exc}") from None
    try:
        if spec.sheet is not None and spec.sheet not in wb.sheetnames:
            raise MalformedExport(f"{path}: no sheet named {spec.sheet!r} ({wb.sheetnames})")
        ws = wb[spec.sheet] if spec.sheet else wb.worksheets[0]
        sheet = ws.title
        table = list(ws.iter_rows(values_only=True))
    finally:
        wb.close()
    header = [str(h).strip() if h is not None else "" for h in (table[0] if table else ())]
    index: dict[str, int] = {}
    for field, name in spec.columns.items():
        if name not in header:
            raise MalformedExport(
                f"{path}: sheet {sheet!r}, row 1: missing column {name!r} "
                f"(found: {', '.join(h for h in header if h) or 'none'})"
            )
        index[field] = header.index(name)
    parcels: list[UnlabelledParcel] = []
    seen: dict[str, int] = {}
    for r, values in enumerate(table[1:], start=2):
        if not any(v is not None and str(v).strip() for v in values):
            continue

        def cell(field: str, values: tuple[Any, ...] = values) -> str:
            i = index[field]
            v = values[i] if i < len(values) else None
            return "" if v is None else str(v).strip()

        def bad(field: str, problem: str, r: int = r) -> MalformedExport:
            col = get_column_letter(index[field] + 1)
            return MalformedExport(
                f"{path}: sheet {sheet!r}, row {r}, column {col} ({spec.columns[field]}): {problem}"
            )

        parcel_id = cell("parcel_id")
        if not parcel_id:
            raise bad("parcel_id", "empty parcel number")
        if parcel_id in seen:
            raise bad("parcel_id", f"parcel {parcel_id} repeated (first on row {seen[parcel_id]})")
        seen[parcel_id] = r
        try:
            items = parse_items(cell("items"))
        except ValueError as exc:
            raise bad("items", str(exc)) from None
        try:
            received = datetime.fromisoformat(cell("received_at"))
        except ValueError:
            raise bad("received_at", f"{cell('received_at')!r} is not a date and time") from None
        parcels.append(
            UnlabelledParcel(
                parcel_id=parcel_id,
                waybill=cell("waybill"),
                courier=cell("courier"),
                sender_name=cell("sender_name"),
                sender_phone=cell("sender_phone"),
                district=cell("district"),
                items=items,
                received_at=received,
                shop=shop,
            )
        )
    return parcels
