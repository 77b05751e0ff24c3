"""Plain-text views of the warehouse for the demo (``manage.py show_warehouse``)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.utils import timezone

from smolqwery.warehouses import get_warehouse
from smolqwery.warehouses.testing import fetch_rows

#: Columns that place a row in time, in the order they are looked for when sorting.
TIME_COLUMNS = ("date", "timestamp", "day")


def format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return value.hex()[:16] + "..."
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Aligned columns: numbers to the right, everything else to the left."""
    cells = [[format_value(row[c]) for c in columns] for row in rows]
    numeric = [
        all(isinstance(row[c], (int, float, Decimal)) or row[c] is None for row in rows)
        for c in columns
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _sort_key(row: Mapping[str, Any]) -> Any:
    for name in TIME_COLUMNS:
        if name in row:
            return row[name]
    return 0


def render_table(name: str, last: int) -> str:
    """The last ``last`` rows of a table or view, oldest first, under a heading."""
    with get_warehouse() as warehouse:
        if name not in warehouse.list_tables():
            raise ValueError(f"no table or view {name!r} in the warehouse")
        rows = sorted(fetch_rows(warehouse, name), key=_sort_key)
    heading = f"{name}: {len(rows)} rows" + (f", last {last}" if len(rows) > last else "")
    if not rows:
        return heading + "\n"
    return f"{heading}\n{text_table(rows[-last:], list(rows[0]))}\n"


def render_tables() -> str:
    """Every table and view of the dataset with its number of rows."""
    with get_warehouse() as warehouse:
        names = warehouse.list_tables()
        counts = {name: len(fetch_rows(warehouse, name)) for name in names}
    rows = [{"table or view": n, "rows": counts[n]} for n in names]
    return text_table(rows, ["table or view", "rows"]) + "\n"
