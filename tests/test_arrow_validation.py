"""The Arrow validator and the row validator always agree (hypothesis).

For any column of any warehouse type, fed an Arrow array of any type a database driver can
produce (right or wrong for the column, with nulls, NaN, NUL characters, out-of-range numbers,
rows outside the day), cut into pieces at random, :class:`ArrowConverter` and
:class:`RowConverter` (given the same values as Python objects, as Django would give them) both
accept and produce the same record batches, or both refuse with the same message.
No database: the sources are in memory, so the property runs in about a second.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolqwery.arrow_validation import ArrowConverter, _as_django
from smolqwery.errors import RowError
from smolqwery.extractor import BaseExtractor, ExtractorType
from smolqwery.rows import ExtractorError, RowConverter
from smolqwery.warehouses.base import DayWindow
from tests.fixtures.warehouses import day_windows

UTC = datetime.timezone.utc
WIDE = decimal.Context(prec=100)
FIRST = datetime.date(2031, 3, 29)  # a 23-hour day in Paris, then an ordinary one
WINDOWS = day_windows(FIRST, FIRST + datetime.timedelta(days=1))

PYTHON_TYPES: dict[str, type] = {
    "INT64": int,
    "FLOAT64": float,
    "BOOL": bool,
    "STRING": str,
    "BYTES": bytes,
    "DATE": datetime.date,
    "TIMESTAMP": datetime.datetime,
    "NUMERIC": decimal.Decimal,
}

aware = st.datetimes(
    min_value=datetime.datetime(1900, 1, 1), max_value=datetime.datetime(2100, 1, 1)
).map(lambda d: d.replace(tzinfo=UTC))


@st.composite
def decimal_arrays(draw: st.DrawFn) -> tuple[pa.DataType, st.SearchStrategy[Any]]:
    precision = draw(st.sampled_from([5, 18, 30, 38, 40]))
    scale = draw(st.integers(0, min(precision, 12)))
    bound = 10**precision - 1
    typ = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    values = st.one_of(
        st.integers(-bound, bound), st.sampled_from([bound, -bound, 5, -5, 10**scale // 2])
    ).map(lambda n: decimal.Decimal(n).scaleb(-scale, WIDE))
    return typ, values


#: Arrow types a driver may deliver, with values of that type.
SOURCES: list[tuple[pa.DataType, st.SearchStrategy[Any]]] = [
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    (pa.uint64(), st.integers(0, 2**64 - 1)),
    (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    (pa.bool_(), st.booleans()),
    (pa.string(), st.text(st.characters(exclude_categories=["Cs"]), max_size=5)),
    (pa.binary(), st.binary(max_size=5)),
    (pa.date32(), st.dates()),
    (pa.timestamp("us", tz="UTC"), aware),
    (pa.timestamp("us"), aware.map(lambda d: d.replace(tzinfo=None))),
    (pa.null(), st.none()),
]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(PYTHON_TYPES)))
    nullable = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        typ, values = draw(decimal_arrays())
    else:
        typ, values = draw(st.sampled_from(SOURCES))
    per_day = draw(st.lists(st.integers(0, 9), min_size=2, max_size=2))
    days = []
    for window, count in zip(WINDOWS, per_day, strict=True):
        span = int((window.end - window.start).total_seconds())
        # Mostly inside the day; now and then an hour before or after it.
        offsets = draw(
            st.lists(
                st.one_of(st.integers(0, span - 1), st.integers(-3600, span + 3600)),
                min_size=count,
                max_size=count,
            )
        )
        moments = [window.start.astimezone(UTC) + datetime.timedelta(seconds=s) for s in offsets]
        cells = draw(st.lists(st.one_of(st.none(), values), min_size=count, max_size=count))
        cuts = sorted(draw(st.lists(st.integers(0, count), max_size=3)))
        days.append((moments, cells, cuts))
    return {
        "kind": kind,
        "nullable": nullable,
        "typ": typ,
        "days": days,
        "chunk_rows": draw(st.integers(1, 12)),
    }


def make_extractor(kind: str, nullable: bool) -> tuple[BaseExtractor[Any], type]:
    value_type: Any = PYTHON_TYPES[kind]
    annotation = (value_type | None) if nullable else value_type
    row = dataclasses.make_dataclass(
        "Row",
        [
            ("timestamp", datetime.datetime),
            ("value", annotation),
        ],
    )

    class Extractor(BaseExtractor[Any]):
        rows: dict[datetime.date, list[Any]] = {}

        def get_dataclass(self) -> type:
            return row

        def get_extractor_type(self) -> ExtractorType:
            return ExtractorType.individual_rows

        def get_table_name(self) -> str:
            return "prop"

        def get_name(self) -> str:
            return "prop.Extractor"

        def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Any:
            return iter(self.rows[date_start.date()])

    return Extractor(), row


def outcome(converter: Any) -> tuple[str, Any]:
    try:
        batches = list(converter.record_batches(WINDOWS, {}))
    except (RowError, ExtractorError) as exc:
        return "refused", str(exc)
    return "accepted", (
        [b.num_rows for b in batches],
        pa.Table.from_batches(batches, converter.schema),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_arrow_and_row_validators_accept_and_refuse_alike(case: dict[str, Any]) -> None:
    extractor, row = make_extractor(case["kind"], case["nullable"])
    table = extractor.get_schema()
    typ = case["typ"]
    pieces: dict[datetime.date, list[tuple[list[Any], int]]] = {}
    python_rows: dict[datetime.date, list[Any]] = {}
    for window, (moments, cells, cuts) in zip(WINDOWS, case["days"], strict=True):
        stamps = pa.array(moments, pa.timestamp("us", tz="UTC"))
        values = pa.array(cells, typ)
        bounds = [0, *cuts, len(cells)]
        pieces[window.day] = [
            ([stamps.slice(a, b - a), values.slice(a, b - a)], b - a)
            for a, b in zip(bounds, bounds[1:], strict=False)  # noqa: RUF007
            if b > a
        ]
        # What Django would hand to the row path for the same cells.
        python_rows[window.start.date()] = [
            row(_as_django(t), _as_django(v))
            for t, v in zip(stamps.to_pylist(), values.to_pylist(), strict=True)
        ]
    type(extractor).rows = python_rows  # type: ignore[attr-defined]

    def source(window: DayWindow) -> Iterator[tuple[list[Any], int]]:
        return iter(pieces[window.day])

    chunk = case["chunk_rows"]
    arrow = outcome(ArrowConverter(extractor, table, source, chunk_rows=chunk))
    rows = outcome(RowConverter(extractor, table, chunk_rows=chunk))
    assert arrow[0] == rows[0], (arrow, rows)
    if arrow[0] == "refused":
        assert arrow[1] == rows[1]
    else:
        assert arrow[1][0] == rows[1][0]
        assert arrow[1][1].equals(rows[1][1]), (arrow[1][1], rows[1][1])
