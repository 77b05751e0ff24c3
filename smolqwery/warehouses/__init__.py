"""Warehouse backends: one contract (:class:`~smolqwery.warehouses.base.Warehouse`), chosen by
``SMOLQWERY_WAREHOUSE`` like Django's database ``ENGINE``.

The setting is a short name (``"duckdb"``, ``"bigquery"``: aliases of the built-in backends) or
the dotted path of a :class:`Warehouse` subclass. Anything else is an error that says so; no
value ever falls back to another warehouse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from ..errors import ConfigurationError
from .base import DayBatch, DayWindow, LedgerEntry, Warehouse

if TYPE_CHECKING:
    from ..settings import SmolqwerySettings

__all__ = [
    "BACKENDS",
    "DayBatch",
    "DayWindow",
    "LedgerEntry",
    "Warehouse",
    "backend_class",
    "get_warehouse",
]

#: The built-in backends by short name (the values ``SMOLQWERY_WAREHOUSE`` took before 1.0).
BACKENDS: dict[str, str] = {
    "duckdb": "smolqwery.warehouses.duckdb.DuckDBWarehouse",
    "bigquery": "smolqwery.warehouses.bigquery.BigQueryWarehouse",
}


def backend_class(name: str) -> type[Warehouse]:
    """The backend class of a ``SMOLQWERY_WAREHOUSE`` value: a short name or a dotted path.

    Raises :class:`~smolqwery.errors.ConfigurationError` naming the value when it is neither.
    """
    expected = f"one of {', '.join(BACKENDS)} or the dotted path of a Warehouse subclass"
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"SMOLQWERY_WAREHOUSE must be {expected}, got {name!r}")
    path = BACKENDS.get(name, name)
    if "." not in path:
        raise ConfigurationError(f"SMOLQWERY_WAREHOUSE must be {expected}, got {name!r}")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ConfigurationError(
            f"SMOLQWERY_WAREHOUSE must be {expected}: {name!r} cannot be imported ({exc})"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Warehouse)):
        raise ConfigurationError(f"SMOLQWERY_WAREHOUSE must be {expected}: {name!r} is {cls!r}")
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ConfigurationError(
            f"SMOLQWERY_WAREHOUSE {name!r}: {cls.__qualname__} does not implement {missing}"
        )
    return cls


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
    from ..settings import get_settings

    config = config or get_settings()
    backend = backend_class(config.warehouse)
    backend.validate_settings(config)
    return backend.from_settings(config, deadline=deadline, read_only=read_only)
