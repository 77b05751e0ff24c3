"""Extractors used by the export tests.

``EventExtractor`` / ``DailyEventsExtractor`` read the :class:`~tests.exportapp.models.Event`
table, so tests can compare exported row counts with the source. ``Synthetic*`` extractors
compute their rows from the day alone (no database), which suits subprocess tests: the expected
rows of any day are :func:`synthetic_count` and :func:`synthetic_rows`. ``HostileExtractor``
misbehaves as its ``mode`` says (class attribute, or ``SMOLQWERY_TEST_HOSTILE`` in a subprocess).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import os
import time
from collections.abc import Iterator
from typing import Any, Optional

from django.db.models import Count, Sum

from smolqwery import BaseExtractor, ExtractorType, sq_field

from .models import Event

UTC = datetime.timezone.utc


@dataclasses.dataclass
class EventRow:
    """One event."""

    timestamp: datetime.datetime
    kind: str
    amount: int
    note: Optional[str] = None  # noqa: UP045 - the 0.1.3 spelling must keep working


class EventExtractor(BaseExtractor[EventRow]):
    def get_dataclass(self) -> type[EventRow]:
        return EventRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[EventRow]:
        qs = Event.objects.filter(created_at__gte=date_start, created_at__lt=date_end)
        for created_at, kind, amount, note in qs.values_list(
            "created_at", "kind", "amount", "note"
        ).iterator():
            yield EventRow(timestamp=created_at, kind=kind, amount=amount, note=note)


@dataclasses.dataclass
class DailyEvents:
    """Events per day."""

    events: int = sq_field(differentiate=True)
    amount: int = sq_field(differentiate=True)


class DailyEventsExtractor(BaseExtractor[DailyEvents]):
    def get_dataclass(self) -> type[DailyEvents]:
        return DailyEvents

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[DailyEvents]:
        agg = Event.objects.filter(created_at__gte=date_start, created_at__lt=date_end).aggregate(
            events=Count("id"), amount=Sum("amount")
        )
        yield DailyEvents(events=agg["events"], amount=agg["amount"] or 0)


# -- synthetic: rows computed from the day ---------------------------------------------------


def synthetic_count(day: datetime.date) -> int:
    """Rows of a day: 0 to 3, so some days have none (zero-row days are recorded too)."""
    return day.toordinal() % 4


@dataclasses.dataclass
class SyntheticRow:
    timestamp: datetime.datetime
    seq: int
    label: str
    price: decimal.Decimal
    ratio: float
    flag: bool
    payload: bytes
    day: datetime.date
    maybe: Optional[int] = None  # noqa: UP045


def synthetic_rows(start: datetime.datetime, end: datetime.datetime) -> list[SyntheticRow]:
    day = start.date()
    n = synthetic_count(day)
    step = (end - start) / (n + 1)
    return [
        SyntheticRow(
            timestamp=start + step * (i + 1),
            seq=day.toordinal() * 10 + i,
            label=f"{day.isoformat()}#{i} é",
            price=decimal.Decimal(f"{i}.125"),
            ratio=i / 3,
            flag=i % 2 == 0,
            payload=bytes([i, 0, 255]),
            day=day,
            maybe=None if i % 2 else i,
        )
        for i in range(n)
    ]


class SyntheticExtractor(BaseExtractor[SyntheticRow]):
    """Every supported type; ``SMOLQWERY_TEST_SLOW_SECONDS`` makes each day take that long."""

    def get_dataclass(self) -> type[SyntheticRow]:
        return SyntheticRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[SyntheticRow]:
        delay = float(os.environ.get("SMOLQWERY_TEST_SLOW_SECONDS", "0") or 0)
        if delay:
            time.sleep(delay)
        yield from synthetic_rows(date_start, date_end)


@dataclasses.dataclass
class SyntheticDaily:
    rows: int = sq_field(differentiate=True)


class SyntheticDailyExtractor(BaseExtractor[SyntheticDaily]):
    def get_dataclass(self) -> type[SyntheticDaily]:
        return SyntheticDaily

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[SyntheticDaily]:
        yield SyntheticDaily(rows=synthetic_count(date_start.date()))


# -- hostile ---------------------------------------------------------------------------------


@dataclasses.dataclass
class HostileRow:
    timestamp: datetime.datetime
    name: str
    count: int
    ratio: float
    price: decimal.Decimal
    when: Optional[datetime.datetime] = None  # noqa: UP045


@dataclasses.dataclass
class OtherRow:
    timestamp: datetime.datetime
    name: str
    count: int
    ratio: float
    price: decimal.Decimal
    when: Optional[datetime.datetime] = None  # noqa: UP045


def _good(start: datetime.datetime, i: int = 0) -> HostileRow:
    return HostileRow(
        timestamp=start + datetime.timedelta(hours=1, minutes=i),
        name=f"row {i}",
        count=i,
        ratio=0.5,
        price=decimal.Decimal("1.5"),
    )


def hostile_rows(mode: str, start: datetime.datetime, end: datetime.datetime) -> Iterator[Any]:
    """Two good rows, then one that is wrong as ``mode`` says (or none for ``ok``)."""
    yield _good(start, 0)
    yield _good(start, 1)
    row = _good(start, 2)
    if mode == "ok":
        return
    if mode == "raise":
        raise RuntimeError("the source database went away")
    if mode == "dict":
        yield dataclasses.asdict(row)
        return
    if mode == "wrong_class":
        yield OtherRow(**dataclasses.asdict(row))
        return
    changes: dict[str, Any] = {
        "wrong_type": {"count": "12"},
        "bool_int": {"count": True},
        "none": {"name": None},
        "naive": {"timestamp": start.replace(tzinfo=None) + datetime.timedelta(hours=2)},
        "naive_optional": {"when": datetime.datetime(2020, 1, 1, 12, 0)},
        "outside": {"timestamp": end + datetime.timedelta(minutes=5)},
        "before": {"timestamp": start - datetime.timedelta(microseconds=1)},
        "nul": {"name": "abc\x00def"},
        "surrogate": {"name": "abc\ud800"},
        "int64": {"count": 2**63},
        "nan": {"ratio": float("nan")},
        "inf": {"ratio": float("-inf")},
        "decimal_digits": {"price": decimal.Decimal("1" + "0" * 29)},
        "decimal_rounds_over": {"price": decimal.Decimal("9" * 29 + ".9999999995")},
        "decimal_nan": {"price": decimal.Decimal("NaN")},
        "big": {"name": "x" * (11 * 1024 * 1024)},
    }[mode]
    yield dataclasses.replace(row, **changes)


class HostileExtractor(BaseExtractor[HostileRow]):
    mode = "ok"

    def get_dataclass(self) -> type[HostileRow]:
        return HostileRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        mode = os.environ.get("SMOLQWERY_TEST_HOSTILE") or self.mode
        return hostile_rows(mode, date_start, date_end)
