"""The extractor interface a Django project implements: :class:`BaseExtractor`.

An extractor pairs a dataclass (the columns) with ``extract(date_start, date_end)``, which yields
the rows of one local day: ``date_start`` inclusive, ``date_end`` exclusive, both aware datetimes
in Django's ``TIME_ZONE``. Users import it from :mod:`smolqwery` or :mod:`smolqwery.extractor`.
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from .schema import TableSchema, build_table_schema
from .vocabulary import ExtractorType, snake_case

__all__ = ["BaseExtractor", "D"]

D = TypeVar("D")


class BaseExtractor(ABC, Generic[D]):
    """Base class of every extractor listed in ``SMOLQWERY_EXTRACTORS``.

    Subclasses implement :meth:`get_dataclass`, :meth:`get_extractor_type` and :meth:`extract`;
    the other methods have defaults a subclass may override. Extractors are instantiated with
    no argument (0.1.3 passed two positional arguments; both are still accepted and ignored).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @abstractmethod
    def get_dataclass(self) -> type[D]:
        """The dataclass describing one row."""

    @abstractmethod
    def get_extractor_type(self) -> ExtractorType:
        """Whether rows are one per day (aggregated) or one per event (individual)."""

    @abstractmethod
    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterable[D]:
        """Yield the rows of ``[date_start, date_end)``: one local day, aware datetimes."""

    def get_date_field(self) -> str:
        """Name of the column that places a row in a day."""
        if self.get_extractor_type() is ExtractorType.date_aggregated:
            return "date"
        return "timestamp"

    def get_table_name(self) -> str:
        """Warehouse table name; defaults to the dataclass name in snake case."""
        return snake_case(self.get_dataclass().__name__)

    def get_table_description(self) -> str:
        """Table description; defaults to the dataclass docstring when written by hand."""
        cls = self.get_dataclass()
        doc = cls.__doc__ or ""
        # dataclasses synthesise ``Name(field: type, ...)`` when there is no docstring.
        return "" if doc.startswith(f"{cls.__name__}(") else doc.strip()

    def get_rollups(self) -> tuple[str, ...]:
        """Period views to create on top of a date-aggregated table: ``"week"``, ``"month"``."""
        return ()

    def get_clustering_fields(self) -> list[str]:
        """Columns to cluster the table by (BigQuery); none by default."""
        return []

    def get_schema(self) -> TableSchema:
        """The warehouse table this extractor fills, built from its dataclass."""
        return build_table_schema(self)

    def get_name(self) -> str:
        """Dotted path used in logs, errors and ``--extractor``."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"
