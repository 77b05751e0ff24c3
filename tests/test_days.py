"""Local days: windows across DST changes, "yesterday" west and east of UTC, pending days."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
import pytz

from smolqwery.days import (
    contiguous_batches,
    date_range,
    day_window,
    pending_days,
    yesterday,
)

D = datetime.date
UTC = datetime.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def hours(window: object) -> float:
    """Real elapsed hours (subtracting datetimes of one zone would give wall-clock hours)."""
    return (window.end.timestamp() - window.start.timestamp()) / 3600  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("tz", "day", "expected_hours"),
    [
        (PARIS, D(2024, 3, 31), 23),
        (PARIS, D(2024, 10, 27), 25),
        (PARIS, D(2024, 6, 1), 24),
        (NEW_YORK, D(2024, 3, 10), 23),
        (NEW_YORK, D(2024, 11, 3), 25),
        (NEW_YORK, D(2024, 1, 15), 24),
    ],
)
def test_day_window_spans_local_midnight_to_midnight(
    tz: ZoneInfo, day: D, expected_hours: int
) -> None:
    window = day_window(day, tz)
    assert window.day == day
    assert hours(window) == expected_hours
    assert window.start.astimezone(tz).timetuple()[:6] == (day.year, day.month, day.day, 0, 0, 0)
    assert window.end == day_window(day + datetime.timedelta(days=1), tz).start


def test_day_window_of_paris_spring_forward_has_right_utc_bounds() -> None:
    window = day_window(D(2024, 3, 31), PARIS)
    assert window.start.astimezone(UTC) == datetime.datetime(2024, 3, 30, 23, 0, tzinfo=UTC)
    assert window.end.astimezone(UTC) == datetime.datetime(2024, 3, 31, 22, 0, tzinfo=UTC)


def test_day_window_works_with_pytz_zones() -> None:
    """Django 4.2 projects may still use pytz (USE_DEPRECATED_PYTZ)."""
    tz = pytz.timezone("Europe/Paris")
    window = day_window(D(2024, 10, 27), tz)
    assert hours(window) == 25
    assert window.start.astimezone(UTC) == datetime.datetime(2024, 10, 26, 22, 0, tzinfo=UTC)


def test_day_window_where_midnight_does_not_exist() -> None:
    """Santiago skipped 00:00-01:00 on 2022-09-11: the day starts at 01:00 local."""
    tz = ZoneInfo("America/Santiago")
    window = day_window(D(2022, 9, 11), tz)
    assert window.start.astimezone(tz).hour == 1
    assert hours(window) == 23
    assert day_window(D(2022, 9, 10), tz).end == window.start


def test_day_window_refuses_a_datetime() -> None:
    with pytest.raises(TypeError, match="needs a date"):
        day_window(datetime.datetime(2024, 1, 1), PARIS)  # type: ignore[arg-type]


def test_d03_yesterday_at_2330_in_new_york_is_not_today() -> None:
    """23:30 in New York on 1 March is 04:30 UTC on 2 March: yesterday is still 28 February."""
    now = datetime.datetime(2024, 3, 2, 4, 30, tzinfo=UTC)
    assert now.astimezone(NEW_YORK).date() == D(2024, 3, 1)
    assert yesterday(now, NEW_YORK) == D(2024, 2, 29)
    # East of UTC just after local midnight: the UTC date is still the day before.
    early = datetime.datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
    assert yesterday(early, PARIS) == D(2024, 3, 1)


def test_yesterday_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        yesterday(datetime.datetime(2024, 3, 1, 12), PARIS)


def test_pending_days_fill_gaps_and_skip_exported() -> None:
    exported = {D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 6)}
    assert pending_days(D(2024, 1, 1), D(2024, 1, 7), exported) == [
        D(2024, 1, 1),
        D(2024, 1, 4),
        D(2024, 1, 5),
        D(2024, 1, 7),
    ]
    assert pending_days(D(2024, 1, 5), D(2024, 1, 4), set()) == []


def test_contiguous_batches_split_on_gaps_and_size() -> None:
    days = [*date_range(D(2024, 1, 1), D(2024, 1, 5)), D(2024, 1, 9), D(2024, 1, 10)]
    assert contiguous_batches(reversed(days), 2) == [
        [D(2024, 1, 1), D(2024, 1, 2)],
        [D(2024, 1, 3), D(2024, 1, 4)],
        [D(2024, 1, 5)],
        [D(2024, 1, 9), D(2024, 1, 10)],
    ]
    assert contiguous_batches([], 5) == []
    with pytest.raises(ValueError):
        contiguous_batches(days, 0)
