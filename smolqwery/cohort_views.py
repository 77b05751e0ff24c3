"""The ``<table>_retention`` view of a cohort table (:mod:`smolqwery.cohorts`), per dialect.

Apart from :mod:`smolqwery.sql_views` so that the cohort table's layout is known in one place
below the extractors: :func:`is_cohort_table` is how the migrations know a table gets the view.
A table is a cohort table because it says so (``TableSchema.cohort``, set by
``CohortRetention.get_schema`` and carried by the migration files), not because of its columns:
a project's table of the same columns gets no retention view. The view's operation names its
kind, so the migration files written before the marker existed still create the view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .identifiers import validate_table_name
from .schema import TableSchema
from .vocabulary import ExtractorType

if TYPE_CHECKING:
    from .warehouses.base import Warehouse

#: The columns (and types) of a cohort table, in order: what makes a table one.
COHORT_COLUMNS = (
    ("date", "DATE"),
    ("cohort", "DATE"),
    ("periods_later", "INT64"),
    ("measured_period", "DATE"),
    ("cohort_size", "INT64"),
    ("active", "INT64"),
)


def has_cohort_layout(table: TableSchema) -> bool:
    """A date-aggregated table with exactly :data:`COHORT_COLUMNS` (what the view reads)."""
    return (
        table.kind is ExtractorType.date_aggregated
        and tuple((c.name, c.type) for c in table.columns) == COHORT_COLUMNS
    )


def is_cohort_table(table: TableSchema) -> bool:
    """A table marked as a cohort table (``TableSchema.cohort``): it gets the retention view."""
    return table.cohort


def render_retention(table: TableSchema, warehouse: Warehouse) -> str:
    """``<table>_retention``: every row and its share ``retention = active / cohort_size``
    (NULL for an empty cohort), from the warehouse's SQL operations.

    Needs the layout, not the marker: a ``retention`` view operation of a migration file
    written before ``TableSchema.cohort`` existed carries an unmarked table."""
    if not has_cohort_layout(table):
        raise ValueError(f"table {table.name!r} does not have a cohort table's columns")
    ops = warehouse.ops
    names = [ops.column(name) for name, _ in COHORT_COLUMNS]
    size, active = ops.column("cohort_size"), ops.column("active")
    share = f"{ops.cast_sql(active, 'FLOAT64')} / NULLIF({size}, 0)"
    columns = ",\n  ".join([*names, f"{share} AS {ops.column('retention')}"])
    return f"SELECT\n  {columns}\nFROM {warehouse.view_reference(validate_table_name(table.name))}"
