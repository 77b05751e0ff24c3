"""Warehouses: one contract (:class:`~smolqwery.warehouses.base.Warehouse`), two implementations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import DayBatch, DayWindow, LedgerEntry, Warehouse

if TYPE_CHECKING:
    from ..settings import SmolqwerySettings

__all__ = ["DayBatch", "DayWindow", "LedgerEntry", "Warehouse", "get_warehouse"]


def get_warehouse(
    config: SmolqwerySettings | None = None,
    *,
    deadline: float | None = None,
    read_only: bool = False,
) -> Warehouse:
    """The warehouse chosen by ``SMOLQWERY_WAREHOUSE``. Never falls back to another one.

    ``deadline`` (seconds) replaces ``SMOLQWERY_RETRY_DEADLINE`` and bounds each request and
    each wait for a busy DuckDB file: readers that must answer fast (status, admin) pass
    ``SMOLQWERY_STATUS_DEADLINE``. ``read_only`` opens a DuckDB file read-only and refuses a
    missing one (BigQuery: no effect; readers only read).
    """
    import dataclasses

    from ..settings import get_settings

    config = config or get_settings()
    if deadline is not None:
        config = dataclasses.replace(config, retry_deadline=deadline)
    if config.warehouse == "bigquery":
        from .bigquery import BigQueryWarehouse

        return BigQueryWarehouse.from_settings(config, request_timeout=deadline)
    from .duckdb import DuckDBWarehouse

    return DuckDBWarehouse.from_settings(config, read_only=read_only)
