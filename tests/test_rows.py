"""Row validation and Arrow conversion: exact values, bounded chunks, clear errors."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolqwery import BaseExtractor
from smolqwery.days import date_range, day_window, day_windows
from smolqwery.errors import RowError
from smolqwery.rows import ExtractorError, RowConverter, arrow_schema, short_repr
from tests.exportapp.extractors import (
    HostileExtractor,
    HostileRow,
    SyntheticDailyExtractor,
    SyntheticExtractor,
    synthetic_count,
    synthetic_rows,
)

D = datetime.date
UTC = datetime.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
DAY = D(2024, 3, 31)  # 23 hours in Paris


def convert(
    extractor: BaseExtractor[Any], days: list[D], tz: ZoneInfo = PARIS, **kwargs: Any
) -> tuple[list[pa.RecordBatch], dict[D, int]]:
    converter = RowConverter(extractor, extractor.get_schema(), **kwargs)
    counts: dict[D, int] = {}
    batches = list(converter.record_batches(day_windows(days, tz), counts))
    return batches, counts


def test_rows_round_trip_exactly_in_bounded_chunks() -> None:
    days = date_range(D(2024, 3, 28), D(2024, 4, 3))
    batches, counts = convert(SyntheticExtractor(), days, chunk_rows=4)
    assert counts == {d: synthetic_count(d) for d in days}
    assert 0 in counts.values()
    assert all(0 < b.num_rows <= 4 for b in batches)
    schema = arrow_schema(SyntheticExtractor().get_schema())
    assert all(b.schema.equals(schema) for b in batches)
    got = [row for b in batches for row in b.to_pylist()]
    expected = []
    for window in day_windows(days, PARIS):
        for row in synthetic_rows(window.start, window.end):
            values = dataclasses.asdict(row)
            values["timestamp"] = values["timestamp"].astimezone(UTC)
            values["price"] = values["price"].quantize(decimal.Decimal("1e-9"))
            expected.append(values)
    assert got == expected


def test_rows_are_streamed_not_collected() -> None:
    """The first chunk leaves before the extractor has produced more than one chunk of rows."""
    produced = itertools.count()

    class Endless(HostileExtractor):
        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            while True:
                i = next(produced)
                yield HostileRow(date_start, f"r{i}", i, 0.5, decimal.Decimal(1))

    converter = RowConverter(Endless(), Endless().get_schema(), chunk_rows=1000)
    chunks = converter.record_batches([day_window(DAY, PARIS)], {})
    first = next(chunks)
    assert first.num_rows == 1000
    assert next(produced) == 1000  # nothing read ahead
    chunks.close()  # type: ignore[attr-defined]


def test_date_aggregated_rows_get_their_day() -> None:
    days = date_range(D(2024, 10, 26), D(2024, 10, 28))
    batches, counts = convert(SyntheticDailyExtractor(), days)
    assert counts == dict.fromkeys(days, 1)
    rows = [row for b in batches for row in b.to_pylist()]
    assert rows == [{"date": d, "rows": synthetic_count(d)} for d in days]


@pytest.mark.parametrize("count", [0, 2])
def test_d08_date_aggregated_needs_exactly_one_row_per_day(count: int) -> None:
    class Wrong(SyntheticDailyExtractor):
        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            if date_start.date() == DAY:
                yield from super().extract(date_start, date_end) if count else ()
                if count == 2:
                    yield from super().extract(date_start, date_end)
            else:
                yield from super().extract(date_start, date_end)

    with pytest.raises(RowError) as info:
        convert(Wrong(), [DAY - datetime.timedelta(days=1), DAY])
    message = str(info.value)
    assert "2024-03-31" in message and "exactly one row per day" in message
    assert f"yielded {count}" in message
    assert "Wrong" in message


HOSTILE = [
    ("dict", None, "expected an instance of HostileRow"),
    ("wrong_class", None, "expected an instance of HostileRow"),
    ("wrong_type", "count", "expects int, got str: '12'"),
    ("bool_int", "count", "expects int, got bool: True"),
    ("none", "name", "is None but the column is REQUIRED"),
    ("naive", "timestamp", "naive datetime"),
    ("naive_optional", "when", "naive datetime"),
    ("outside", "timestamp", "outside the day being exported"),
    ("before", "timestamp", "outside the day being exported"),
    ("nul", "name", "NUL character"),
    ("surrogate", "name", "lone surrogate"),
    ("int64", "count", "outside the INT64 range (-2**63 to 2**63-1): 9223372036854775808"),
    ("nan", "ratio", "finite number"),
    ("inf", "ratio", "finite number"),
    ("decimal_digits", "price", "more than 29 digits before the decimal point"),
    ("decimal_rounds_over", "price", "once rounded to 9 decimals"),
    ("decimal_nan", "price", "finite Decimal"),
]


@pytest.mark.parametrize(("mode", "field", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_bad_rows_are_refused_naming_extractor_day_field_and_value(
    mode: str, field: str | None, reason: str
) -> None:
    class Hostile(HostileExtractor):
        pass

    Hostile.mode = mode
    with pytest.raises(RowError) as info:
        convert(Hostile(), [DAY])
    message = str(info.value)
    assert message.startswith("tests.test_rows.")
    assert "Hostile: day 2024-03-31, row 3" in message
    if field:
        assert f"field {field!r}" in message
    assert reason in message


def test_an_extractor_that_raises_is_reported_with_its_day() -> None:
    class Hostile(HostileExtractor):
        mode = "raise"

    with pytest.raises(
        ExtractorError,
        match=r"day 2024-03-31: extract\(\) raised RuntimeError: "
        "the source database went away",
    ):
        convert(Hostile(), [DAY])


def test_a_row_over_the_size_budget_is_refused() -> None:
    class Hostile(HostileExtractor):
        mode = "big"

    with pytest.raises(
        RowError,
        match=r"row 3: the row is about 11,534,3\d\d bytes, over the "
        r"10,485,760-byte budget",
    ):
        convert(Hostile(), [DAY])


def test_individual_rows_with_a_date_column_must_carry_the_day() -> None:
    class ByDay(SyntheticExtractor):
        def get_date_field(self) -> str:
            return "day"

        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            for row in super().extract(date_start, date_end):
                yield dataclasses.replace(row, day=D(2020, 1, 1))

    day = next(d for d in date_range(DAY, DAY + datetime.timedelta(days=5)) if synthetic_count(d))
    with pytest.raises(RowError, match=r"field 'day' \(DATE\) is not the day being exported"):
        convert(ByDay(), [day])


def test_int_and_str_subclasses_are_accepted_as_plain_values() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Label(str):
        pass

    class Subclassy(HostileExtractor):
        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            yield HostileRow(date_start, Label("x"), Level.HIGH, 2, decimal.Decimal(2), None)

    batches, _ = convert(Subclassy(), [DAY])
    row = batches[0].to_pylist()[0]
    assert (row["name"], row["count"], row["ratio"]) == ("x", 3, 2.0)
    assert type(row["count"]) is int


def test_short_repr_truncates_long_values() -> None:
    assert short_repr("a" * 200) == repr("a" * 200)[:77] + "..."
    assert len(short_repr("a" * 200)) == 80
    assert short_repr(12) == "12"


# -- NUMERIC: rounded to 9 decimals like BigQuery, refused only beyond DECIMAL(38, 9) -------

#: The reference: BigQuery's default NUMERIC rounding, ROUND_HALF_AWAY_FROM_ZERO.
_REFERENCE = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP)
_NUMERIC_MAX = decimal.Decimal("99999999999999999999999999999.999999999")


@st.composite
def _decimals(draw: st.DrawFn) -> decimal.Decimal:
    """Decimals of any scale, dense around NUMERIC's limits and at the rounding midpoint."""
    digits = draw(st.integers(0, 10**45) | st.sampled_from([10**38 - 1, 10**39 - 5]))
    exponent = draw(st.integers(-20, 5))
    if draw(st.booleans()):  # ...5 in the 10th decimal: exactly half a NUMERIC step
        digits, exponent = digits * 10 + 5, -10
    sign = draw(st.sampled_from((1, -1)))
    return decimal.Decimal(sign * digits).scaleb(exponent, _REFERENCE)


@settings(max_examples=150, deadline=None)
@given(value=_decimals())
def test_numeric_is_rounded_half_away_from_zero_and_refused_only_out_of_range(
    value: decimal.Decimal,
) -> None:
    class One(HostileExtractor):
        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            yield HostileRow(date_start, "x", 1, 0.5, value)

    expected = value.quantize(decimal.Decimal("1e-9"), context=_REFERENCE)
    if expected.copy_abs() > _NUMERIC_MAX:
        with pytest.raises(RowError, match=r"quantize\(Decimal\('0.01'\)\)"):
            convert(One(), [DAY])
        return
    batches, _ = convert(One(), [DAY])
    assert batches[0].to_pylist()[0]["price"] == expected


def test_sqlite_sum_decimal_is_rounded_not_refused() -> None:
    """The issue's value: SQLite's Sum() gives ten decimals; one such day blocked a batch."""

    class Summed(HostileExtractor):
        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            yield HostileRow(date_start, "x", 1, 0.5, decimal.Decimal("98777.9299999999"))

    batches, _ = convert(Summed(), [DAY])
    assert batches[0].to_pylist()[0]["price"] == decimal.Decimal("98777.93")


@pytest.mark.parametrize(
    "moment",
    [
        datetime.datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
        datetime.datetime(9999, 12, 31, 23, 0, tzinfo=ZoneInfo("America/New_York")),
    ],
)
def test_a_timestamp_out_of_range_once_in_utc_is_refused(moment: datetime.datetime) -> None:
    """Year 1 in Tokyo is year 0 in UTC: Arrow would keep it, the warehouses cannot."""

    class Edge(HostileExtractor):
        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            yield HostileRow(date_start, "x", 1, 0.5, decimal.Decimal(1), when=moment)

    with pytest.raises(RowError, match=r"field 'when' \(TIMESTAMP\) is outside the TIMESTAMP"):
        convert(Edge(), [DAY])
