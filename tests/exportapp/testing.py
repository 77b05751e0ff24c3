"""Helpers shared by the export tests: frozen time, settings, source events, counts."""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from smolqwery.days import date_range, day_window
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows

from .models import Event

D = datetime.date
UTC = datetime.timezone.utc
#: Tests travel to next year: the BigQuery emulator expires staging tables by the real clock.
YEAR = datetime.date.today().year + 1
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
EVENTS = "tests.exportapp.extractors.EventExtractor"
DAILY = "tests.exportapp.extractors.DailyEventsExtractor"
HOSTILE = "tests.exportapp.extractors.HostileExtractor"


def configurer(settings: Any) -> Any:
    """``configure(extractors, first, tz=..., batch_days=...)`` on pytest-django's settings."""

    def apply(
        extractors: list[str],
        first: D,
        tz: str = "Europe/Paris",
        batch_days: int = 366,
    ) -> None:
        settings.SMOLQWERY_EXTRACTORS = extractors
        settings.SMOLQWERY_FIRST_DATE = first
        settings.TIME_ZONE = tz
        settings.SMOLQWERY_BATCH_DAYS = batch_days

    return apply


def point_at(settings: Any, warehouse: Warehouse, request: pytest.FixtureRequest) -> None:
    """Make ``get_warehouse()`` (used by the commands) return ``warehouse``'s tables."""
    if warehouse.vendor == "bigquery":
        emulator = request.getfixturevalue("bigquery_emulator")
        for key, value in emulator.settings(warehouse.dataset).items():
            setattr(settings, key, value)
    else:
        settings.SMOLQWERY_WAREHOUSE = "duckdb"
        settings.SMOLQWERY_DUCKDB_PATH = str(warehouse.path)  # type: ignore[attr-defined]
        settings.SMOLQWERY_DATASET = warehouse.dataset


def d(month: int, day: int) -> D:
    """A day of :data:`YEAR`."""
    return D(YEAR, month, day)


def dst_days(tz: ZoneInfo) -> tuple[D, D]:
    """The days of :data:`YEAR` whose clocks change: (23-hour day, 25-hour day)."""
    short = long = None
    for day in date_range(D(YEAR, 1, 1), D(YEAR, 12, 31)):
        window = day_window(day, tz)
        hours = (window.end.timestamp() - window.start.timestamp()) / 3600
        if hours == 23:
            short = day
        elif hours == 25:
            long = day
    assert short and long
    return short, long


def create_tables(warehouse: Warehouse, *extractors: Any) -> None:
    for cls in extractors:
        warehouse.create_table(cls().get_schema())


def at(moment: datetime.datetime) -> Any:
    """Freeze time at an aware moment."""
    return time_machine.travel(moment, tick=False)


def add_events(day: D, count: int, tz: ZoneInfo, kind: str = "click") -> None:
    """``count`` events spread over the local day, the first at midnight, the last just before
    the next midnight (the boundaries are where UTC-date bugs show)."""
    window = day_window(day, tz)
    start, end = window.start.timestamp(), window.end.timestamp()
    moments = [start] if count else []
    if count > 1:
        moments.append(end - 1e-6)
    step = (end - start) / max(count - 1, 1)
    moments += [start + step * i + 0.5 for i in range(1, count - 1)]
    Event.objects.bulk_create(
        Event(created_at=datetime.datetime.fromtimestamp(m, UTC), kind=kind, amount=i + 1)
        for i, m in enumerate(sorted(moments))
    )


def source_counts(days: list[D], tz: ZoneInfo) -> dict[D, int]:
    counts = dict.fromkeys(days, 0)
    for created_at in Event.objects.values_list("created_at", flat=True):
        day = created_at.astimezone(tz).date()
        if day in counts:
            counts[day] += 1
    return counts


def exported_counts(warehouse: Warehouse, table: str, tz: ZoneInfo) -> dict[D, int]:
    counts: dict[D, int] = {}
    for row in fetch_rows(warehouse, table):
        day = row["timestamp"].astimezone(tz).date()
        counts[day] = counts.get(day, 0) + 1
    return counts


def ledger_counts(warehouse: Warehouse, table: str) -> dict[D, int]:
    return {day: entry.rows for day, entry in warehouse.exported_days(table).items()}
