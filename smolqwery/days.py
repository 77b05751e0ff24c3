"""Local days: their windows, which day is "yesterday", and which days still need exporting.

Every day here is a day of Django's ``TIME_ZONE``, never a UTC date (0.1.3 defects D3 and D4):
a day starts at local midnight and ends at the next local midnight, so it lasts 23 or 25 hours
when the clocks change.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable

__all__ = [
    "DayWindow",
    "contiguous_batches",
    "date_range",
    "day_of",
    "day_window",
    "day_windows",
    "local_now",
    "parse_day",
    "pending_days",
    "yesterday",
]

ONE_DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class DayWindow:
    """One local day: ``[start, end)`` from local midnight to the next (23 h or 25 h on DST)."""

    day: datetime.date
    start: datetime.datetime
    end: datetime.datetime


def _local_midnight(day: datetime.date, tz: datetime.tzinfo) -> datetime.datetime:
    """The first instant of ``day`` in ``tz``, as an aware datetime with the right offset.

    ``datetime.combine(..., tzinfo=tz)`` alone is not enough: pytz zones need ``localize``,
    and where midnight does not exist (clocks jumping forward at 00:00) the wall time must be
    normalised to the real instant. A round trip through a timestamp does both.
    """
    naive = datetime.datetime.combine(day, datetime.time.min)
    localize = getattr(tz, "localize", None)
    if localize is not None:  # pytz
        aware: datetime.datetime = localize(naive, is_dst=False)
    else:
        # fold=0 picks the earlier instant of an ambiguous midnight, and the pre-transition
        # offset of a missing one (which is the first instant of the day once normalised).
        aware = naive.replace(tzinfo=tz)
    return datetime.datetime.fromtimestamp(aware.timestamp(), tz)


def day_window(day: datetime.date, tz: datetime.tzinfo) -> DayWindow:
    """``[local midnight, next local midnight)`` of ``day`` in ``tz``."""
    if isinstance(day, datetime.datetime):
        raise TypeError(f"day_window() needs a date, not a datetime: {day!r}")
    return DayWindow(
        day=day, start=_local_midnight(day, tz), end=_local_midnight(day + ONE_DAY, tz)
    )


def day_windows(days: Iterable[datetime.date], tz: datetime.tzinfo) -> tuple[DayWindow, ...]:
    return tuple(day_window(d, tz) for d in days)


def local_now(tz: datetime.tzinfo) -> datetime.datetime:
    """The current time, aware, in ``tz`` (works with ``USE_TZ = False`` too)."""
    return datetime.datetime.now(datetime.timezone.utc).astimezone(tz)


def day_of(moment: datetime.datetime, tz: datetime.tzinfo) -> datetime.date:
    """The local day an aware moment falls in."""
    if moment.utcoffset() is None:
        raise ValueError(f"need an aware datetime, got naive {moment!r}")
    return moment.astimezone(tz).date()


def yesterday(now: datetime.datetime, tz: datetime.tzinfo) -> datetime.date:
    """The last complete local day at ``now``: today's local date minus one.

    At 23:30 in New York this is the day before the New York date, even though the UTC date
    is already tomorrow (D3): today is never exported while it is still going on.
    """
    return day_of(now, tz) - ONE_DAY


def date_range(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    """Every day from ``first`` to ``last``, both included (empty when ``first > last``)."""
    return [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]


def pending_days(
    first_date: datetime.date,
    last_day: datetime.date,
    exported: Iterable[datetime.date],
) -> list[datetime.date]:
    """Days from ``first_date`` to ``last_day`` (inclusive) that are not in ``exported``.

    Gaps left by failed runs come back here, so the next run fills them.
    """
    done = set(exported)
    return [d for d in date_range(first_date, last_day) if d not in done]


def contiguous_batches(days: Iterable[datetime.date], max_days: int) -> list[list[datetime.date]]:
    """Sorted, de-duplicated days cut into runs of consecutive days of at most ``max_days``.

    One batch becomes one atomic ``replace_days`` call (few load jobs for a long backfill,
    and a failure loses at most one batch's work, never half a day).
    """
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}")
    batches: list[list[datetime.date]] = []
    current: list[datetime.date] = []
    for day in sorted(set(days)):
        if current and (day - current[-1] != ONE_DAY or len(current) >= max_days):
            batches.append(current)
            current = []
        current.append(day)
    if current:
        batches.append(current)
    return batches


def parse_day(value: str) -> datetime.date:
    """A command-line day, ``YYYY-MM-DD``; ValueError with a message naming the value (D18)."""
    try:
        return datetime.date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"{value!r} is not a valid day: use YYYY-MM-DD, e.g. 2024-01-31") from None
