"""Queryset extractors over :class:`Reading`, and the same rows the 0.1.3 way.

``ReadingExtractor`` is the new way; ``ReadingRowsExtractor`` reads the very same queryset
through ``extract()`` (the row path) into another table, so a test compares the two tables.
``mode`` (a class attribute) makes the queryset misbehave for the refusal tests.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Any, ClassVar, Optional

from django.db.models import Count, F, IntegerField, Max, QuerySet, Sum, Value
from django.db.models.functions import Lower

from smolqwery import QuerySetExtractor
from smolqwery.vocabulary import ExtractorType

from .models import Reading


@dataclasses.dataclass
class ReadingRow:
    """One reading."""

    timestamp: datetime.datetime
    user_id: int
    score: float
    ok: bool
    label: Optional[str]  # noqa: UP045 - both spellings are supported
    price: decimal.Decimal | None
    taken_on: datetime.date
    bucket: int


class ReadingExtractor(QuerySetExtractor[ReadingRow]):
    #: "" (fine), "null" (NULL in a REQUIRED column), "early" (rows before the day),
    #: "shape" (a column too many), "raise" (get_queryset raises), "values_list" (the same
    #: columns by values_list() in dataclass order, fields and annotations interleaved),
    #: "date_lookup" (a filter by ``__date``: a function Django registers on SQLite)
    mode: ClassVar[str] = ""
    #: The database alias read (a test adds a SQLite file of its own).
    using: ClassVar[str] = "default"
    #: get_queryset raises for the days starting after this moment.
    raise_after: ClassVar[datetime.datetime | None] = None

    def get_dataclass(self) -> type[ReadingRow]:
        return ReadingRow

    def get_table_name(self) -> str:
        return "reading"

    def get_queryset(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> QuerySet[Any, Any]:
        if self.mode == "raise" or (self.raise_after and date_start > self.raise_after):
            raise LookupError("no such thing")
        if self.mode == "early":
            date_start -= datetime.timedelta(hours=2)
        rows = Reading.objects.using(self.using).filter(
            created_at__gte=date_start, created_at__lt=date_end
        )
        if self.mode == "shape":
            return rows.values("user_id", "score")
        fields = ["user_id", "score", "ok", "price", "taken_on"]
        # Annotations, a modulo (``%%`` in the SQL text), values always as parameters.
        annotations: dict[str, Any] = {
            "timestamp": F("created_at"),
            "label": Lower("title"),
            "bucket": F("user_id") % 7,
        }
        if self.mode == "null":
            annotations["bucket"] = Value(None, output_field=IntegerField())
        if self.mode == "date_lookup":  # the same rows: Paris dates of the day and after
            rows = rows.filter(created_at__date__gte=date_start.date())
        rows = rows.order_by("created_at", "id")
        if self.mode == "values_list":
            names = [f.name for f in dataclasses.fields(ReadingRow)]
            return rows.annotate(**annotations).values_list(*names)
        return rows.values(*fields, **annotations)


class ReadingRowsExtractor(ReadingExtractor):
    """The same queryset through the row path (``extract()``), into its own table."""

    read_as = "rows"

    def get_table_name(self) -> str:
        return "reading_rows"


@dataclasses.dataclass
class DailyReading:
    """Readings of one day, aggregated by the database."""

    day: datetime.date
    readings: int
    users: int
    total_score: Optional[float]  # noqa: UP045 - both spellings are supported
    top_price: decimal.Decimal | None


class DailyReadingExtractor(QuerySetExtractor[DailyReading]):
    """A date-aggregated queryset extractor: ``.values("day").annotate(...)``, one row a day."""

    def get_dataclass(self) -> type[DailyReading]:
        return DailyReading

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_queryset(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> QuerySet[Any, Any]:
        return (
            Reading.objects.filter(created_at__gte=date_start, created_at__lt=date_end)
            .values(day=F("taken_on"))
            .annotate(
                readings=Count("id"),
                users=Count("user_id", distinct=True),
                total_score=Sum("score"),
                top_price=Max("price"),
            )
        )


class DailyReadingRowsExtractor(DailyReadingExtractor):
    """The same aggregation through the row path, into its own table."""

    read_as = "rows"

    def get_table_name(self) -> str:
        return "daily_reading_rows"
