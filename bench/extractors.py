"""The two extractors measured: one row per event, and one aggregated row per day.

The individual-rows extractor is written the way the README recommends for large tables:
``values_list(...).iterator()`` (no model instances), one dataclass per row.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet, Sum

from smolqwery.extractor import BaseExtractor, ExtractorType, sq_field
from smolqwery.queryset_extractor import QuerySetExtractor

from .models import Event

#: Columns read by both the floor and the extractor, in dataclass order.
EVENT_COLUMNS = ("timestamp", "user_id", "kind", "duration", "success", "country")
#: Rows fetched per database round trip by ``.iterator()``.
ITERATOR_CHUNK = 5000


def day_queryset(date_start: datetime.datetime, date_end: datetime.datetime) -> QuerySet[Any, Any]:
    """The rows of one day as tuples: shared by the extractor and by the floor measurement."""
    return (
        Event.objects.filter(timestamp__gte=date_start, timestamp__lt=date_end)
        .order_by()
        .values_list(*EVENT_COLUMNS)
    )


@dataclasses.dataclass
class BenchEvent:
    """One product event."""

    timestamp: datetime.datetime
    user_id: int
    kind: str
    duration: float
    success: bool
    country: str | None


class BenchEventExtractor(BaseExtractor[BenchEvent]):
    def get_dataclass(self) -> type[BenchEvent]:
        return BenchEvent

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[BenchEvent]:
        for row in day_queryset(date_start, date_end).iterator(chunk_size=ITERATOR_CHUNK):
            yield BenchEvent(*row)


@dataclasses.dataclass
class BenchDaily:
    """Events per day."""

    events: int
    users: int
    failures: int
    total_duration: float | None = sq_field(description="Seconds, summed")
    mean_duration: float | None = None
    events_ever: int = sq_field(differentiate=True, default=0)


class BenchDailyExtractor(BaseExtractor[BenchDaily]):
    def get_dataclass(self) -> type[BenchDaily]:
        return BenchDaily

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[BenchDaily]:
        day = Event.objects.filter(timestamp__gte=date_start, timestamp__lt=date_end)
        agg = day.aggregate(
            events=Count("id"),
            users=Count("user_id", distinct=True),
            failures=Count("id", filter=Q(success=False)),
            total_duration=Sum("duration"),
            mean_duration=Avg("duration"),
        )
        yield BenchDaily(
            events=agg["events"],
            users=agg["users"],
            failures=agg["failures"],
            total_duration=agg["total_duration"],
            mean_duration=agg["mean_duration"],
            events_ever=Event.objects.filter(timestamp__lt=date_end).count(),
        )


class BenchEventQuerySetExtractor(QuerySetExtractor[BenchEvent]):
    """The same rows the new way (issue 16): a queryset, read as Arrow record batches."""

    def get_dataclass(self) -> type[BenchEvent]:
        return BenchEvent

    def get_table_name(self) -> str:
        return "bench_event_qs"

    def get_queryset(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> QuerySet[Any, Any]:
        return day_queryset(date_start, date_end)
