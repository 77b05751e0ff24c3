"""Property: a generated row round-trips exactly through each warehouse, or is refused clearly.

Hypothesis builds dataclasses from the supported types (each maybe Optional, plus now and then
an unsupported annotation) and rows of edge values (INT64 bounds, subnormal floats, NUMERIC's
29+9 digits, dates of year 1 and 9999, timestamps in odd zones…), sometimes with one value that
must be refused (NaN, 2**63, a naive datetime, NUL, a lone surrogate, None where REQUIRED, a
value of the wrong type, a timestamp outside its day). Then, through the real path — schema
builder, :class:`~smolqwery.rows.RowConverter`, ``replace_days`` of a real warehouse:

* an unsupported annotation is a :class:`SchemaError`, before any warehouse call;
* a row with a bad value is a :class:`RowError` and nothing is written (no rows, no ledger);
* anything else comes back from the warehouse equal to what the extractor yielded.

Any other exception — above all one from inside a warehouse call — fails the test.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import typing
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolqwery import BaseExtractor, ExtractorType
from smolqwery.days import day_window
from smolqwery.errors import RowError, SchemaError
from smolqwery.rows import RowConverter
from smolqwery.warehouses.base import DayBatch, Warehouse
from smolqwery.warehouses.testing import fetch_rows

PARIS = ZoneInfo("Europe/Paris")
DAY = datetime.date(2024, 3, 31)  # 23 hours long in Paris
WINDOW = day_window(DAY, PARIS)
INT64 = (-(2**63), 2**63 - 1)
MAX_NUMERIC = decimal.Decimal("99999999999999999999999999999.999999999")
#: Not ``-MAX_NUMERIC``: unary minus rounds to the default 28-digit context.
MIN_NUMERIC = decimal.Decimal("-99999999999999999999999999999.999999999")
EXAMPLES = {"duckdb": 40, "bigquery": 12}

# -- values: (valid, invalid) strategies per supported type -----------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
_aware = st.datetimes(
    min_value=datetime.datetime(1, 1, 2),
    max_value=datetime.datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [datetime.timezone.utc, PARIS, ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/St_Johns")]
    ),
    # A wall time skipped by a DST change names no instant Python compares consistently; a
    # database never returns one.
    allow_imaginary=False,
)
#: BigQuery's rounding of NUMERIC (ROUND_HALF_AWAY_FROM_ZERO), the reference for >9 decimals.
_ROUND = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_UP)
_HALF_UP = decimal.Decimal("12345678901234567890123456789.1234567895")
#: NUMERIC values of up to 38 digits, 9 after the point (hypothesis' decimals() rounds to the
#: default 28-digit context at these sizes).
_numeric = st.integers(-(10**38) + 1, 10**38 - 1).map(
    lambda n: decimal.Context(prec=60).scaleb(decimal.Decimal(n), -9)
)
VALUES: dict[type, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    int: (
        st.integers(*INT64) | st.sampled_from([*INT64, 0, -1]),
        st.sampled_from([2**63, -(2**63) - 1, 10**30, True, "1", 1.5]),
    ),
    float: (
        st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from([5e-324, -0.0, 1.7976931348623157e308])
        | st.integers(-(2**53), 2**53),
        st.sampled_from([float("nan"), float("inf"), float("-inf"), 10**400, "1.0", True]),
    ),
    bool: (st.booleans(), st.sampled_from([1, 0, "true", 2.0])),
    str: (
        _text | st.sampled_from(["", "'; DROP TABLE y; --", "`x`", "é\u200b🙂", "\\n"]),
        st.sampled_from(["nul\x00in", "\ud800", "a\udfffb", b"bytes", 7]),
    ),
    bytes: (
        st.binary(max_size=64) | st.sampled_from([b"", b"\x00" * 9, bytes(range(256))]),
        st.sampled_from(["text", bytearray(b"x"), 1]),
    ),
    decimal.Decimal: (
        _numeric
        | st.sampled_from([MAX_NUMERIC, MIN_NUMERIC, decimal.Decimal("1E-9"), 10**28])
        | st.integers(-(10**28), 10**28)
        # More than 9 decimals (SQLite's Sum()): rounded half away from zero, as BigQuery does.
        | st.sampled_from(
            [decimal.Decimal("98777.9299999999"), decimal.Decimal("-0.0000000005"), _HALF_UP]
        ),
        st.sampled_from(
            [
                decimal.Decimal("NaN"),
                decimal.Decimal("-Infinity"),
                decimal.Decimal("1E29"),
                decimal.Decimal("-99999999999999999999999999999.99999999951"),
                1.5,
                "1",
            ]
        ),
    ),
    datetime.date: (
        st.dates() | st.sampled_from([datetime.date(1, 1, 1), datetime.date(9999, 12, 31)]),
        st.sampled_from(
            [datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc), "2024-01-01"]
        ),
    ),
    datetime.datetime: (
        _aware,
        st.sampled_from(
            [
                datetime.datetime(2024, 1, 1),  # naive
                datetime.datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),  # before year 1 in UTC
                datetime.date(2024, 1, 1),
            ]
        ),
    ),
}
UNSUPPORTED = [
    list[int],
    dict[str, int],
    complex,
    typing.Union[int, str],  # noqa: UP007 - the old spelling, on purpose
    object,
    typing.Any,
]

#: Timestamps placing a row in ``DAY``, and ones that do not.
_IN_DAY = st.integers(0, int((WINDOW.end - WINDOW.start).total_seconds() * 1e6) - 1).map(
    lambda us: (WINDOW.start + datetime.timedelta(microseconds=us)).astimezone(PARIS)
)
_OUTSIDE_DAY = st.sampled_from(
    [
        WINDOW.end,
        WINDOW.start - datetime.timedelta(microseconds=1),
        WINDOW.start.replace(tzinfo=None),
    ]
)


@dataclasses.dataclass
class Case:
    """One generated table and its rows, and what should happen to them."""

    kind: ExtractorType
    fields: list[tuple[str, Any, bool]]  # name, python type or unsupported annotation, optional
    rows: list[dict[str, Any]]
    bad: str | None  # why the rows must be refused, None when they are good
    unsupported: bool

    def dataclass(self) -> type:
        spec: list[tuple[str, Any]] = []
        if self.kind is ExtractorType.individual_rows:
            spec.append(("timestamp", datetime.datetime))
        spec.append(("row_no", int))
        for name, annotation, optional in self.fields:
            spec.append((name, typing.Optional[annotation] if optional else annotation))  # noqa: UP045
        return dataclasses.make_dataclass(f"Generated{uuid.uuid4().hex[:6]}", spec)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(list(ExtractorType)))
    types = list(VALUES)
    count = draw(st.integers(1, 6))
    fields = [(f"f{i}", draw(st.sampled_from(types)), draw(st.booleans())) for i in range(count)]
    unsupported = draw(st.integers(0, 9)) == 0
    if unsupported:
        fields.append(("odd", draw(st.sampled_from(UNSUPPORTED)), False))
    n_rows = 1 if kind is ExtractorType.date_aggregated else draw(st.integers(1, 3))
    rows: list[dict[str, Any]] = []
    for number in range(n_rows):
        row: dict[str, Any] = {"row_no": number}
        if kind is ExtractorType.individual_rows:
            row["timestamp"] = draw(_IN_DAY)
        for name, annotation, optional in fields:
            if annotation in VALUES:
                valid = VALUES[annotation][0]
                row[name] = draw(st.none() | valid) if optional else draw(valid)
            else:
                row[name] = None
        rows.append(row)
    bad = None
    if not unsupported and draw(st.integers(0, 2)) == 0:
        target = draw(st.sampled_from(rows))
        choices = [(n, a, o) for n, a, o in fields]
        if kind is ExtractorType.individual_rows:
            choices.append(("timestamp", "in-day", False))
        name, annotation, optional = draw(st.sampled_from(choices))
        if annotation == "in-day":
            target[name] = draw(_OUTSIDE_DAY)
        elif not optional and draw(st.booleans()):
            target[name] = None
        else:
            target[name] = draw(VALUES[annotation][1])
        bad = f"{name}={target[name]!r}"
    return Case(kind, fields, rows, bad, unsupported)


def expected_value(annotation: Any, value: Any) -> Any:
    """What the warehouse gives back for a value the extractor yielded."""
    if value is None:
        return None
    if annotation is float:
        return float(value)
    if annotation is decimal.Decimal:
        return decimal.Decimal(value).quantize(decimal.Decimal("1E-9"), context=_ROUND)
    return value


def make_extractor(case: Case, cls: type, table: str) -> BaseExtractor[Any]:
    class Generated(BaseExtractor[Any]):
        def get_dataclass(self) -> type:
            return cls

        def get_extractor_type(self) -> ExtractorType:
            return case.kind

        def get_table_name(self) -> str:
            return table

        def extract(
            self, date_start: datetime.datetime, date_end: datetime.datetime
        ) -> Iterator[Any]:
            for row in case.rows:
                yield cls(**row)

    return Generated()


def check_case(warehouse: Warehouse, case: Case) -> None:
    cls = case.dataclass()
    table_name = f"prop_{uuid.uuid4().hex[:12]}"
    extractor = make_extractor(case, cls, table_name)
    if case.unsupported:
        with pytest.raises(SchemaError, match="unsupported type"):
            extractor.get_schema()
        assert table_name not in warehouse.list_tables()
        return
    table = extractor.get_schema()
    by_name = {c.name: c for c in table.columns}
    bq = {int: "INT64", float: "FLOAT64", bool: "BOOL", str: "STRING", bytes: "BYTES"}
    bq |= {decimal.Decimal: "NUMERIC", datetime.date: "DATE", datetime.datetime: "TIMESTAMP"}
    for name, annotation, optional in case.fields:
        assert (by_name[name].type, by_name[name].nullable) == (bq[annotation], optional)
    warehouse.create_table(table)
    counts: dict[datetime.date, int] = {}
    chunks = RowConverter(extractor, table).record_batches([WINDOW], counts)
    batch = DayBatch(
        table=table, windows=(WINDOW,), chunks=chunks, run_id="prop", row_counts=counts
    )
    if case.bad is not None:
        with pytest.raises(RowError):
            warehouse.replace_days(batch)
        assert fetch_rows(warehouse, table_name) == []
        assert warehouse.exported_days(table_name) == {}
        return
    warehouse.replace_days(batch)
    got = fetch_rows(warehouse, table_name, order_by=["row_no"])
    assert len(got) == len(case.rows)
    for want, back in zip(case.rows, got, strict=True):
        if case.kind is ExtractorType.date_aggregated:
            assert back["date"] == DAY
        for name, annotation, _ in [("row_no", int, False), *case.fields]:
            expected = expected_value(annotation, want[name])
            actual = back[name]
            if isinstance(actual, (bytearray, memoryview)):
                actual = bytes(actual)
            assert actual == expected, f"{name}: {actual!r} != {expected!r}"
            if expected is not None and not isinstance(expected, datetime.datetime):
                assert type(actual) is type(expected), f"{name}: {actual!r} vs {expected!r}"
        if case.kind is ExtractorType.individual_rows:
            assert back["timestamp"] == want["timestamp"]
    assert {d: e.rows for d, e in warehouse.exported_days(table_name).items()} == {
        DAY: len(case.rows)
    }


def test_generated_rows_round_trip_or_are_refused(
    warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    kind = "bigquery" if "bigquery" in request.node.name else "duckdb"

    @settings(
        max_examples=EXAMPLES[kind],
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(case=cases())
    def run(case: Case) -> None:
        check_case(warehouse, case)

    run()
