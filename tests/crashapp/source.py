"""The source data of a crash scenario, computed the same way by the seeding child and the test.

Days are the ``days`` local days before ``today``; each gets a known number of events (one day
none, to check zero-row days), with timestamps at the very first and very last microsecond of
the local day, so a window off by one anywhere shows up as a moved row.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from zoneinfo import ZoneInfo

#: Events per day, cycled over the days (the 0 makes a day without rows).
EVENTS_PER_DAY = (5, 0, 9, 3, 12, 7, 4, 8)
KINDS = ("signup", "login", "purchase", "refund")


@dataclasses.dataclass(frozen=True)
class SourceEvent:
    """One event as seeded (ids are assigned in order, starting at 1)."""

    id: int
    timestamp: datetime.datetime
    kind: str
    amount: decimal.Decimal | None
    payload: bytes


def local_midnight(day: datetime.date, tz: datetime.tzinfo) -> datetime.datetime:
    naive = datetime.datetime.combine(day, datetime.time.min)
    return datetime.datetime.fromtimestamp(naive.replace(tzinfo=tz).timestamp(), tz)


def scenario_days(today: datetime.date, days: int) -> list[datetime.date]:
    """The ``days`` complete local days before ``today``, oldest first."""
    return [today - datetime.timedelta(days=days - i) for i in range(days)]


def source_events(today: datetime.date, days: int, tz_name: str) -> list[SourceEvent]:
    """Every event of the scenario, ordered by id."""
    tz = ZoneInfo(tz_name)
    events: list[SourceEvent] = []
    for index, day in enumerate(scenario_days(today, days)):
        count = EVENTS_PER_DAY[index % len(EVENTS_PER_DAY)]
        # Arithmetic in UTC: aware arithmetic in a zone works on wall time (wrong on DST days).
        start = local_midnight(day, tz).astimezone(datetime.timezone.utc)
        end = local_midnight(day + datetime.timedelta(days=1), tz).astimezone(datetime.timezone.utc)
        span = end - start - datetime.timedelta(microseconds=1)
        for k in range(count):
            ident = len(events) + 1
            moment = start + (span * k / (count - 1) if count > 1 else datetime.timedelta())
            events.append(
                SourceEvent(
                    id=ident,
                    timestamp=moment,
                    kind=KINDS[ident % len(KINDS)],
                    amount=None if ident % 4 == 0 else decimal.Decimal(f"{ident}.123456789"),
                    payload=bytes([0, ident % 256, 255]) + b"\x00end",
                )
            )
    return events


def events_by_day(
    today: datetime.date, days: int, tz_name: str
) -> dict[datetime.date, list[SourceEvent]]:
    """The scenario's events grouped by local day; every day present, empty ones included."""
    tz = ZoneInfo(tz_name)
    out: dict[datetime.date, list[SourceEvent]] = {d: [] for d in scenario_days(today, days)}
    for event in source_events(today, days, tz_name):
        out[event.timestamp.astimezone(tz).date()].append(event)
    return out
