"""Reading a whole table back: for tests and demos, not part of the warehouse contract.

Exports never read rows back (the ledger says what is done), so a backend need not offer this;
it works on any backend through the read step every backend has.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..identifiers import validate_table_name
from .base import Warehouse


def fetch_rows(
    warehouse: Warehouse, name: str, order_by: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Every row of a table or view as dicts (small tables only)."""
    validate_table_name(name)
    order = [warehouse.ops.column(c) for c in order_by]
    operation = f"read rows of {name}"
    warehouse._prepare(operation)
    sql = f"SELECT * FROM {warehouse.qualified_name(name)}"
    if order:
        sql += " ORDER BY " + ", ".join(order)
    rows = warehouse._fetch(operation, sql, warehouse.ops.params())
    return rows or []
