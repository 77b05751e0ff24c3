"""Extractors driven by the exactly-once state machine (``tests/test_exactly_once_state_machine``).

``MachineEventExtractor`` exports one row per :class:`~tests.exportapp.models.Event` (its
``amount`` is unique: a duplicate shows) and fails on the days in :data:`FAILING_DAYS`.
``MachineTotalExtractor`` exports a running total (every event up to the end of the day): the
kind of table whose later days go stale after late data, and that needs ``--from D``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator

from django.db.models import Count, Sum

from smolqwery import BaseExtractor, ExtractorType, sq_field

from .models import Event

#: Local days on which the source of ``MachineEventExtractor`` is unavailable.
FAILING_DAYS: set[datetime.date] = set()


@dataclasses.dataclass
class MachineEvent:
    timestamp: datetime.datetime
    amount: int


class MachineEventExtractor(BaseExtractor[MachineEvent]):
    def get_dataclass(self) -> type[MachineEvent]:
        return MachineEvent

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[MachineEvent]:
        if date_start.date() in FAILING_DAYS:
            raise RuntimeError(f"the source is unavailable on {date_start.date()}")
        qs = Event.objects.filter(created_at__gte=date_start, created_at__lt=date_end)
        for created_at, amount in qs.values_list("created_at", "amount").iterator():
            yield MachineEvent(timestamp=created_at, amount=amount)


@dataclasses.dataclass
class MachineTotal:
    """Events so far (a running total)."""

    events: int = sq_field(differentiate=True)
    amount: int = sq_field(differentiate=True)


class MachineTotalExtractor(BaseExtractor[MachineTotal]):
    def get_dataclass(self) -> type[MachineTotal]:
        return MachineTotal

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[MachineTotal]:
        agg = Event.objects.filter(created_at__lt=date_end).aggregate(
            events=Count("id"), amount=Sum("amount")
        )
        yield MachineTotal(events=agg["events"], amount=agg["amount"] or 0)
