"""SQL of the views smolqwery creates on top of export tables, written once for every backend.

Views are rendered when a migration is applied (not when it is written), from the table schema
the migration carries, with the SQL fragments (``ops``, :mod:`smolqwery.warehouses.ops`) of the
warehouse it is applied to: the same migration file works on every backend, and a new backend
changes nothing here. Every identifier is validated before it is quoted; no value is ever
formatted into SQL.

Kinds of views:

``delta``
    ``<table>_delta``: one row per day of the base table; non-differentiated columns unchanged;
    each differentiated column replaced by its change from the previous *calendar* day. The
    first day of the table shows its own value; a day whose previous calendar day is missing
    shows NULL (never the running total, 0.1.3 defect D7 of ``docs/defects-0.1.3.md``). Window
    functions, no self-join, so a duplicated day cannot multiply rows.
``week`` / ``month``
    ``<table>_week`` / ``<table>_month`` rollups of a date-aggregated table: one row per ISO
    week (starting on Monday) or calendar month that has at least one day in the table. The
    date column holds the period's first day; ``days`` (see :func:`rollup_days_column`) how many
    of its days are present; each non-differentiated numeric column its SUM; each differentiated
    column (a running total) its value on the last day present. Other columns are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from .cohort_views import is_cohort_table, render_retention
from .identifiers import validate_table_name
from .schema import ROLLUP_PERIODS, TableSchema
from .vocabulary import ExtractorType

if TYPE_CHECKING:
    from .warehouses.base import Warehouse
    from .warehouses.ops import BaseOperations

ViewKind = Literal["delta", "week", "month", "retention"]
VIEW_KINDS: tuple[str, ...] = ("delta", *ROLLUP_PERIODS, "retention")

#: ``(table, warehouse) -> SQL`` for each view kind. Rollup kinds are added by whoever
#: implements them (``VIEW_RENDERERS["week"] = render_week``); nothing else needs to change.
ViewRenderer = Callable[[TableSchema, "Warehouse"], str]


def view_name(kind: str, table_name: str) -> str:
    """Name of a view of ``kind`` on ``table_name``: ``user_delta``, ``user_week``…"""
    if kind not in VIEW_KINDS:
        raise ValueError(f"unknown view kind {kind!r}: expected one of {VIEW_KINDS}")
    return validate_table_name(f"{table_name}_{kind}")


def views_of(table: TableSchema) -> list[tuple[str, str]]:
    """``(view name, kind)`` of every view a table needs, in a stable order."""
    out: list[tuple[str, str]] = []
    if table.kind is ExtractorType.date_aggregated and table.differentiated:
        out.append((view_name("delta", table.name), "delta"))
    for period in ROLLUP_PERIODS:
        if period in table.rollups:
            out.append((view_name(period, table.name), period))
    if is_cohort_table(table):  # smolqwery.cohorts.CohortRetention's table
        out.append((view_name("retention", table.name), "retention"))
    return out


def render_delta(table: TableSchema, warehouse: Warehouse) -> str:
    """The ``<table>_delta`` view (see the module docstring for its semantics)."""
    if table.kind is not ExtractorType.date_aggregated:
        raise ValueError(f"table {table.name!r}: delta views need a date-aggregated table")
    if not table.differentiated:
        raise ValueError(f"table {table.name!r} has no differentiated column")
    ops = warehouse.ops
    day = ops.column(table.date_column)
    window = f"OVER (ORDER BY {day})"
    previous_day = f"LAG({day}) {window}"
    select: list[str] = []
    for col in table.columns:
        name = ops.column(col.name)
        if not col.differentiate:
            select.append(name)
            continue
        select.append(
            "CASE"
            f" WHEN {previous_day} IS NULL THEN {name}"
            f" WHEN {ops.day_gap_sql(day, previous_day)} = 1"
            f" THEN {name} - LAG({name}) {window}"
            f" END AS {name}"
        )
    columns = ",\n  ".join(select)
    return f"SELECT\n  {columns}\nFROM {warehouse.view_reference(table.name)}"


#: Candidate names of the rollup column counting days, first one not taken by a column wins.
ROLLUP_DAYS_COLUMNS = ("days", "days_present", "rollup_days")
_NUMERIC_TYPES = frozenset({"INT64", "FLOAT64", "NUMERIC"})


def rollup_days_column(table: TableSchema) -> str:
    """Name of the rollup column counting the days present: ``days`` unless a column has it."""
    taken = {c.name.lower() for c in table.columns}
    for name in ROLLUP_DAYS_COLUMNS:
        if name not in taken:
            return name
    raise ValueError(f"table {table.name!r} uses every name of {ROLLUP_DAYS_COLUMNS}")


def render_rollup(period: str, table: TableSchema, warehouse: Warehouse) -> str:
    """The ``<table>_week`` / ``<table>_month`` view (see the module docstring).

    The inner query renames every column to a positional alias, so that no user column name
    can collide with the helper columns (period start, last day present).
    """
    if period not in ROLLUP_PERIODS:
        raise ValueError(f"unknown rollup period {period!r}: expected one of {ROLLUP_PERIODS}")
    if table.kind is not ExtractorType.date_aggregated:
        raise ValueError(f"table {table.name!r}: {period} views need a date-aggregated table")
    ops: BaseOperations = warehouse.ops
    day = ops.column(table.date_column)
    start = ops.period_start_sql(period, day)
    inner = [f"{start} AS p", f"{day} AS d", f"MAX({day}) OVER (PARTITION BY {start}) AS l"]
    outer = [
        f"p AS {day}",
        f"COUNT(*) AS {ops.column(rollup_days_column(table))}",
    ]
    for index, col in enumerate(table.columns):
        if col.name == table.date_column or col.type not in _NUMERIC_TYPES:
            continue
        alias = f"c{index}"
        name = ops.column(col.name)
        inner.append(f"{name} AS {alias}")
        if col.differentiate:
            outer.append(f"MAX(CASE WHEN d = l THEN {alias} END) AS {name}")
        else:
            outer.append(f"{ops.sum_sql(col.type, alias)} AS {name}")
    inner_sql = ",\n    ".join(inner)
    outer_sql = ",\n  ".join(outer)
    return (
        f"SELECT\n  {outer_sql}\nFROM (\n  SELECT\n    {inner_sql}\n"
        f"  FROM {warehouse.view_reference(table.name)}\n) AS days_of_periods\nGROUP BY p"
    )


def render_week(table: TableSchema, warehouse: Warehouse) -> str:
    """The ``<table>_week`` view: one row per ISO week (Monday to Sunday)."""
    return render_rollup("week", table, warehouse)


def render_month(table: TableSchema, warehouse: Warehouse) -> str:
    """The ``<table>_month`` view: one row per calendar month."""
    return render_rollup("month", table, warehouse)


VIEW_RENDERERS: dict[str, ViewRenderer] = {
    "delta": render_delta,
    "week": render_week,
    "month": render_month,
    "retention": render_retention,
}


def render_view_sql(kind: str, table: TableSchema, warehouse: Warehouse) -> str:
    """The SQL of the view of ``kind`` on ``table``, with the SQL fragments of ``warehouse``."""
    try:
        renderer = VIEW_RENDERERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown view kind {kind!r}: expected one of {sorted(VIEW_RENDERERS)}"
        ) from None
    return renderer(table, warehouse)
