"""Warehouses: one contract (:class:`~smolqwery.warehouses.base.Warehouse`), two implementations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import DayBatch, DayWindow, LedgerEntry, Warehouse

if TYPE_CHECKING:
    from ..settings import SmolqwerySettings

__all__ = ["DayBatch", "DayWindow", "LedgerEntry", "Warehouse", "get_warehouse"]


def get_warehouse(config: SmolqwerySettings | None = None) -> Warehouse:
    """The warehouse chosen by ``SMOLQWERY_WAREHOUSE``. Never falls back to another one."""
    from ..settings import get_settings

    config = config or get_settings()
    if config.warehouse == "bigquery":
        from .bigquery import BigQueryWarehouse

        return BigQueryWarehouse.from_settings(config)
    from .duckdb import DuckDBWarehouse

    return DuckDBWarehouse.from_settings(config)
