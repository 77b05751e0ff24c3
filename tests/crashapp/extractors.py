"""The two extractors every crash scenario exports: individual events and a daily aggregate.

Each yield passes a kill-switch checkpoint (``extract.yield``), so a test can kill the process in
the middle of a day's rows. Models are imported inside ``extract()`` only: the test process
builds these extractors' schemas without installing the app.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from collections.abc import Iterator

from django.db.models import Count, Sum

from smolqwery import BaseExtractor, ExtractorType, sq_field

from .killswitch import checkpoint


@dataclasses.dataclass
class CrashEvent:
    """One event (individual rows)."""

    id: int
    timestamp: datetime.datetime
    kind: str
    amount: decimal.Decimal | None
    payload: bytes


@dataclasses.dataclass
class CrashDaily:
    """Events per day (date aggregated)."""

    events: int = sq_field(differentiate=True)
    amount_total: decimal.Decimal | None


class CrashEventExtractor(BaseExtractor[CrashEvent]):
    def get_dataclass(self) -> type[CrashEvent]:
        return CrashEvent

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[CrashEvent]:
        from .models import Event

        events = Event.objects.filter(timestamp__gte=date_start, timestamp__lt=date_end)
        for event in events.order_by("id").iterator(chunk_size=4):
            checkpoint("extract.yield")
            yield CrashEvent(
                id=event.id,
                timestamp=event.timestamp,
                kind=event.kind,
                amount=event.amount,
                payload=bytes(event.payload),
            )


class CrashDailyExtractor(BaseExtractor[CrashDaily]):
    def get_dataclass(self) -> type[CrashDaily]:
        return CrashDaily

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[CrashDaily]:
        from .models import Event

        totals = Event.objects.filter(timestamp__gte=date_start, timestamp__lt=date_end).aggregate(
            events=Count("id"), amount_total=Sum("amount")
        )
        checkpoint("extract.yield")
        yield CrashDaily(events=totals["events"], amount_total=totals["amount_total"])
