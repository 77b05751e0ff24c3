"""The extractor interface a Django project implements (compatible with smolqwery 0.1.3).

An extractor pairs a dataclass (the columns) with ``extract(date_start, date_end)``, which yields
the rows of one local day: ``date_start`` inclusive, ``date_end`` exclusive, both aware datetimes
in Django's ``TIME_ZONE``.
"""

from __future__ import annotations

import dataclasses
import datetime
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .schema import TableSchema

__all__ = [
    "BaseExtractor",
    "D",
    "ExtractionManager",
    "ExtractorType",
    "dataclass_to_schema",
    "snake_case",
    "sq_field",
]

D = TypeVar("D")

SQ_METADATA_KEY = "sq"


class ExtractorType(Enum):
    """How rows relate to days."""

    #: One row per event; the row's ``timestamp`` field says which day it belongs to.
    individual_rows = "individual_rows"
    #: Exactly one row per day; smolqwery adds the leading ``date`` column itself.
    date_aggregated = "date_aggregated"


def sq_field(
    *,
    differentiate: bool = False,
    description: str | None = None,
    **kwargs: Any,
) -> Any:
    """A ``dataclasses.field`` carrying smolqwery's options in ``metadata["sq"]``.

    ``differentiate=True`` asks for the column's day-over-day change in the ``<table>_delta``
    view; ``description`` becomes the warehouse column description. Every other keyword goes to
    ``dataclasses.field`` unchanged.
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[SQ_METADATA_KEY] = {"differentiate": differentiate, "description": description}
    return dataclasses.field(metadata=metadata, **kwargs)


def _upper(char: str) -> bool:
    return "A" <= char <= "Z"


def _lower(char: str) -> bool:
    return "a" <= char <= "z"


def name_words(name: str) -> tuple[str, ...]:
    """The words of a class name, cut exactly as smolqwery 0.1.3 cut them (lower case).

    Words are a capital and its lower-case letters (``Email``), a run of lower-case letters, a
    run of digits, or a run of capitals — an acronym, whose last capital starts the next word
    when a lower-case letter follows (``HTTPLog`` → ``http``, ``log``). Everything else
    (underscores, other letters) only separates words. Letters are ASCII, as in 0.1.3's
    patterns; digits and "a lower-case letter follows" are Unicode's, as there too.
    """
    words: list[str] = []
    i, size = 0, len(name)
    while i < size:
        char, end = name[i], i + 1
        if _upper(char):
            while end < size and _upper(name[end]):
                end += 1
            if end - i == 1:  # one capital: a Capitalised word
                while end < size and _lower(name[end]):
                    end += 1
            elif end < size and name[end].islower():
                end -= 1  # HTTPLog: the L begins "Log"
        elif _lower(char):
            while end < size and _lower(name[end]):
                end += 1
        elif char.isdecimal():
            while end < size and name[end].isdecimal():
                end += 1
        else:
            i += 1
            continue
        words.append(name[i:end].lower())
        i = end
    return tuple(words)


def snake_case(name: str) -> str:
    """Table name from a class name, the 0.1.3 way (existing tables must keep their names):
    its words (:func:`name_words`) joined by underscores. ``EmailMessage`` → ``email_message``,
    ``User2`` → ``user_2``, ``HTTPLog`` → ``http_log``, ``Daily__Stats`` → ``daily_stats``.
    """
    return "_".join(name_words(name))


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
        from .schema import build_table_schema

        return build_table_schema(self)

    def get_name(self) -> str:
        """Dotted path used in logs, errors and ``--extractor``."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"


def dataclass_to_schema(extractor: BaseExtractor[Any]) -> TableSchema:
    """0.1.3 name for :func:`smolqwery.schema.build_table_schema`."""
    from .schema import build_table_schema

    return build_table_schema(extractor)


class ExtractionManager:
    """0.1.3 name kept importable: iterates the configured extractors."""

    def get_extractors(self) -> Iterator[BaseExtractor[Any]]:
        from .settings import load_extractors

        yield from load_extractors()
