"""A third warehouse backend, written outside the product as a user would: proof that adding a
warehouse is one module plus its tests.

It is DuckDB under another vendor name, with an ``ops`` subclass of its own that takes the
portable defaults of :class:`~smolqwery.warehouses.ops.BaseOperations` where DuckDB's backend
has its own SQL (the ledger's day counts as ``UNION ALL`` instead of lists, the gap between two
days as a subtraction, weeks truncated by arithmetic). Configured by its dotted path::

    SMOLQWERY_WAREHOUSE = "tests.thirdbackend.EmbeddedWarehouse"

``tests/test_warehouse_contract.py`` runs the shared contract suite against it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from smolqwery.warehouses.duckdb import DuckDBOperations, DuckDBWarehouse
from smolqwery.warehouses.ops import BaseOperations, Params

DOTTED_PATH = "tests.thirdbackend.EmbeddedWarehouse"


class EmbeddedOperations(DuckDBOperations):
    """DuckDB's SQL, with the portable fragments instead of DuckDB's own where they exist."""

    def day_counts_sql(
        self, params: Params, days: Sequence[datetime.date], counts: Sequence[int]
    ) -> str:
        return BaseOperations.day_counts_sql(self, params, days, counts)

    def day_gap_sql(self, day: str, previous: str) -> str:
        return BaseOperations.day_gap_sql(self, day, previous)

    def period_start_sql(self, period: str, day: str) -> str:
        if period == "week":  # Monday of the ISO week, by arithmetic
            return f"({day} - CAST(isodow({day}) - 1 AS INTEGER))"
        return super().period_start_sql(period, day)


class EmbeddedWarehouse(DuckDBWarehouse):
    """Export tables in a DuckDB file, as another vendor."""

    vendor = "embedded"
    display_name = "Embedded"
    ops_class = EmbeddedOperations

    def __repr__(self) -> str:
        return f"EmbeddedWarehouse(path={str(self.path)!r}, dataset={self.dataset!r})"
