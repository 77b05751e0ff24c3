"""The queryset extractor, end to end on the source database of the run (SQLite, PostgreSQL,
MariaDB) into DuckDB: the Arrow path writes exactly what the row path writes, refuses what it
refuses with the same message, and writes nothing when it refuses.

With ``db`` (the test inside a transaction) the rows are read through Django's own DB-API
cursor; with ``transactional_db`` (committed rows) through ADBC on PostgreSQL (SQLite's test
database is in memory, private to Django's connection: DB-API again; the benchmark covers ADBC
on a SQLite file). MariaDB always reads through the DB-API cursor.
"""

from __future__ import annotations

import datetime
import decimal
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import F

from smolqwery.arrow_source import numbered_placeholders
from smolqwery.runner import export
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.arrowapp.extractors import ReadingExtractor, ReadingRowsExtractor
from tests.arrowapp.models import Reading
from tests.exportapp.testing import PARIS, YEAR, at, configurer, create_tables

pytestmark = pytest.mark.source_db

ARROW = "tests.arrowapp.extractors.ReadingExtractor"
ROWS = "tests.arrowapp.extractors.ReadingRowsExtractor"
FIRST = datetime.date(YEAR, 3, 29)  # the spring DST change in Paris: a 23-hour day
LAST = datetime.date(YEAR, 3, 31)
D = decimal.Decimal


def add_readings(using: str = "default") -> int:
    """Readings over three days (one a DST day), nulls and edge values included."""
    rows = []
    for day_index in range(3):
        day = FIRST + datetime.timedelta(days=day_index)
        start = datetime.datetime.combine(day, datetime.time(), PARIS)
        for i in range(40):
            moment = start + datetime.timedelta(minutes=35 * i + day_index)
            rows.append(
                Reading(
                    created_at=moment,
                    user_id=(i * 7919 + day_index) % 5000 - 100 if i else 2**62,
                    score=i / 3 if i % 5 else -0.0,
                    ok=i % 3 != 0,
                    title=None if i % 4 == 0 else f"Label {i}% ÉTÉ",
                    price=None if i % 6 == 0 else D(f"{i * 1234.567:.3f}"),
                    taken_on=day,
                )
            )
    Reading.objects.using(using).bulk_create(rows)
    return len(rows)


def table_rows(warehouse: Warehouse, table: str) -> list[dict[str, Any]]:
    return fetch_rows(warehouse, table, order_by=["timestamp", "user_id"])


def run(settings: Any, warehouse: Warehouse, *paths: str) -> Any:
    configurer(settings)(list(paths), first=FIRST)
    with at(datetime.datetime.combine(LAST + datetime.timedelta(days=1), datetime.time(3), PARIS)):
        return export(date_from=FIRST, date_to=LAST, warehouse=warehouse)


def paths_used(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {
        r.getMessage().rsplit(" ", 1)[-1]
        for r in caplog.records
        if r.name == "smolqwery.arrow_source" and "read through" in r.getMessage()
    }


def _same_tables(warehouse: Warehouse, settings: Any, using: str = "default") -> None:
    count = add_readings(using)
    create_tables(warehouse, ReadingExtractor, ReadingRowsExtractor)
    report = run(settings, warehouse, ARROW, ROWS)
    assert report.ok, [r.error for r in report.results]
    arrow = table_rows(warehouse, "reading")
    rows = table_rows(warehouse, "reading_rows")
    assert len(arrow) == count
    assert arrow == rows
    assert {r.rows for r in report.results} == {count}
    first = arrow[0]
    assert first["price"] is None and first["label"] is None
    assert any((r["label"] or "").startswith("label 1% ") for r in arrow)


@pytest.mark.django_db
def test_arrow_path_writes_what_the_row_path_writes(
    duckdb_warehouse: Warehouse, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="smolqwery.arrow_source")
    _same_tables(duckdb_warehouse, settings)
    assert paths_used(caplog) == {"dbapi"}  # inside the test's transaction


@pytest.mark.django_db(transaction=True)
def test_committed_rows_are_read_through_adbc_where_it_applies(
    duckdb_warehouse: Warehouse, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="smolqwery.arrow_source")
    _same_tables(duckdb_warehouse, settings)
    expected = "adbc" if connection.vendor == "postgresql" else "dbapi"
    assert paths_used(caplog) == {expected}
    # On PostgreSQL each day after the first was opened while the one before was read.
    ahead = [r for r in caplog.records if "the cursor was opened ahead" in r.getMessage()]
    assert len(ahead) == (2 if connection.vendor == "postgresql" else 0)


@pytest.fixture
def sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A SQLite file database beside the test's own (in memory, which ADBC cannot open), with
    the readings table: the alias the extractors read."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    if connection.vendor != "sqlite":
        pytest.skip("a SQLite file: the SQLite run only")
    alias = "arrow_file"
    wrapper = DatabaseWrapper(
        {**connection.settings_dict, "NAME": str(tmp_path / "source.sqlite3")}, alias
    )
    connections[alias] = wrapper
    monkeypatch.setattr(ReadingExtractor, "using", alias)
    try:
        with wrapper.schema_editor() as editor:
            editor.create_model(Reading)
        yield alias
    finally:
        wrapper.close()
        del connections[alias]


@pytest.mark.django_db
def test_a_sqlite_file_is_read_through_adbc(
    duckdb_warehouse: Warehouse,
    settings: Any,
    sqlite_file: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Text datetimes and integer booleans cast in Arrow, as Django's converters would.
    caplog.set_level(logging.DEBUG, logger="smolqwery.arrow_source")
    _same_tables(duckdb_warehouse, settings, sqlite_file)
    assert paths_used(caplog) == {"adbc"}


@pytest.mark.django_db
def test_a_sqlite_file_queryset_calling_djangos_sqlite_functions_is_read(
    duckdb_warehouse: Warehouse,
    settings: Any,
    sqlite_file: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ``__date`` lookup (as TruncDate, ExtractHour, ``__year``...) is SQL calling a Python
    function that Django registers on its own SQLite connection: a common queryset, exported
    like any other (through Django's cursor; ADBC asked for says why it cannot)."""
    from smolqwery.arrow_source import SourceReader
    from smolqwery.errors import SmolqweryError
    from smolqwery.queryset_extractor import compile_queryset

    monkeypatch.setattr(ReadingExtractor, "mode", "date_lookup")
    caplog.set_level(logging.DEBUG, logger="smolqwery.arrow_source")
    _same_tables(duckdb_warehouse, settings, sqlite_file)
    assert paths_used(caplog) == {"dbapi"}
    assert "only Django's connection has" in caplog.text
    start = datetime.datetime.combine(FIRST, datetime.time(), PARIS)
    extractor = ReadingExtractor()
    queryset = extractor.get_queryset(start, start + datetime.timedelta(days=1))
    query = compile_queryset(queryset, extractor.get_field_names())
    reader = SourceReader("adbc")
    try:
        with pytest.raises(SmolqweryError, match=r"cannot read through ADBC: .*no such function"):
            list(reader.read(query))
    finally:
        reader.close()


@pytest.mark.django_db
def test_values_list_in_dataclass_order_gives_each_field_its_own_column(
    duckdb_warehouse: Warehouse, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``.annotate(...).values_list(<the dataclass's fields>)``, fields and annotations
    interleaved, writes what ``.values(*fields, **annotations)`` writes."""
    monkeypatch.setattr(ReadingExtractor, "mode", "values_list")
    monkeypatch.setattr(ReadingRowsExtractor, "mode", "")
    _same_tables(duckdb_warehouse, settings)


@pytest.mark.django_db
def test_each_name_reads_the_column_django_selects_under_it() -> None:
    """Two integer columns swapped would be written without a refusal: the positions must be
    those of Django's SELECT list (``extra(select=)`` and interleaved ``values_list()``)."""
    from smolqwery.queryset_extractor import compile_queryset

    add_readings()
    readings = Reading.objects.filter(user_id__lt=10**6).order_by("id")
    shapes = [
        readings.annotate(bucket=F("user_id") % 7).values_list("user_id", "bucket", "id"),
        readings.extra(select={"bucket": "id + 1"}).values_list("user_id", "bucket", "id"),
    ]
    for queryset in shapes:
        names = ["id", "bucket", "user_id"]
        compiled = compile_queryset(queryset, names)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, compiled.params)
            read = [tuple(row[p] for p in compiled.positions) for row in cursor.fetchall()]
        assert read == [(i, bucket, user) for user, bucket, i in queryset]


def _one_column(reader: Any, queryset: Any, name: str) -> list[Any]:
    """The values of a one-column queryset as ``reader`` reads them (then closed)."""
    from smolqwery.queryset_extractor import compile_queryset

    try:
        return [
            value
            for columns, _ in reader.read(compile_queryset(queryset, [name]))
            for value in (columns[0] if isinstance(columns[0], list) else columns[0].to_pylist())
        ]
    finally:
        reader.close()


@pytest.mark.django_db
def test_a_float_field_over_a_numeric_expression_is_the_float_of_djangos_decimal() -> None:
    """``ExpressionWrapper(<NUMERIC> / 3000, output_field=FloatField())``: PostgreSQL gives
    a NUMERIC whose scale varies with the value, Django ``float(value)``; so must the DB-API
    path (the one of a queryset with a Decimal parameter, or inside a transaction)."""
    from django.db.models import DecimalField, ExpressionWrapper, FloatField
    from django.db.models.functions import Cast

    from smolqwery.arrow_source import SourceReader

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's NUMERIC division")
    add_readings()
    queryset = (
        Reading.objects.filter(user_id__lt=10**6)
        .order_by("id")
        .values(
            ratio=ExpressionWrapper(
                Cast("user_id", DecimalField(max_digits=20, decimal_places=1)) / 3000,
                output_field=FloatField(),
            )
        )
    )
    expected = [float(row["ratio"]) for row in queryset]
    assert _one_column(SourceReader("dbapi"), queryset, "ratio") == expected


@pytest.mark.django_db(transaction=True)
def test_adbc_reads_in_the_session_time_zone_django_sets() -> None:
    """A database whose default TimeZone is not UTC (initdb takes the system's): ``Cast(
    "created_at", DateField())`` gives what Django gives, the UTC date."""
    from django.db.models import DateField
    from django.db.models.functions import Cast

    from smolqwery.arrow_source import SourceReader

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's session TimeZone")
    add_readings()
    name = connection.settings_dict["NAME"]
    queryset = Reading.objects.order_by("id").values(day=Cast("created_at", DateField()))
    expected = [row["day"] for row in queryset]
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER DATABASE \"{name}\" SET timezone = 'America/New_York'")
    try:
        read = _one_column(SourceReader("adbc"), queryset, "day")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" RESET timezone')
    assert read == expected


@pytest.mark.django_db
def test_the_parquet_load_into_bigquery_carries_the_same_rows(
    bigquery_warehouse: Warehouse, settings: Any
) -> None:
    _same_tables(bigquery_warehouse, settings)


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["null", "early"])
def test_refusals_match_the_row_path_and_write_nothing(
    duckdb_warehouse: Warehouse, settings: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_readings()
    monkeypatch.setattr(ReadingExtractor, "mode", mode)
    create_tables(duckdb_warehouse, ReadingExtractor, ReadingRowsExtractor)
    report = run(settings, duckdb_warehouse, ARROW, ROWS)
    arrow, rows = report.results
    assert arrow.failed and rows.failed
    assert arrow.error == rows.error.replace(ROWS, ARROW)
    expected = {
        "null": "field 'bucket' (INT64) is None but the column is REQUIRED (not Optional): None",
        "early": "field 'timestamp' (TIMESTAMP) is outside the day being exported",
    }[mode]
    assert expected in arrow.error
    day = FIRST if mode == "null" else FIRST + datetime.timedelta(days=1)
    assert f": day {day.isoformat()}, row 1: " in arrow.error
    assert table_rows(duckdb_warehouse, "reading") == []
    assert duckdb_warehouse.exported_days("reading") == {}


@pytest.mark.django_db
def test_a_queryset_of_other_columns_or_a_raising_one_is_the_extractors_error(
    duckdb_warehouse: Warehouse, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    Reading.objects.create(
        created_at=datetime.datetime.combine(FIRST, datetime.time(12), PARIS),
        user_id=1,
        score=1.0,
        taken_on=FIRST,
    )
    create_tables(duckdb_warehouse, ReadingExtractor)
    monkeypatch.setattr(ReadingExtractor, "mode", "shape")
    (result,) = run(settings, duckdb_warehouse, ARROW).results
    assert result.failed
    assert "get_queryset() selects ['user_id', 'score'], the dataclass declares" in result.error
    assert "; missing: ['timestamp', 'ok', 'label', 'price', 'taken_on', 'bucket']:" in result.error
    monkeypatch.setattr(ReadingExtractor, "mode", "raise")
    (result,) = run(settings, duckdb_warehouse, ARROW).results
    assert result.error == (
        f"{ARROW}: day {FIRST.isoformat()}: get_queryset() raised LookupError: no such thing"
    )


def test_a_model_queryset_without_the_dataclass_fields_says_how_to_select_them() -> None:
    from smolqwery.queryset_extractor import QueryShapeError, compile_queryset

    with pytest.raises(QueryShapeError, match=r"return \.values\(\) naming each of them") as info:
        compile_queryset(Reading.objects.all(), ["timestamp", "score"])
    assert "returned Reading objects" in str(info.value) and "'timestamp'" in str(info.value)
    with pytest.raises(QueryShapeError, match=r"; missing: \['ok'\]; not in the dataclass: "):
        compile_queryset(Reading.objects.values("user_id", "title"), ["user_id", "ok"])


def test_placeholders_follow_djangos_format_paramstyle() -> None:
    sql = "SELECT a %% 7, 'x%%' FROM t WHERE b = %s AND c LIKE %s"
    assert numbered_placeholders(sql, "$") == "SELECT a % 7, 'x%' FROM t WHERE b = $1 AND c LIKE $2"
    assert numbered_placeholders(sql, "?") == "SELECT a % 7, 'x%' FROM t WHERE b = ? AND c LIKE ?"
    with pytest.raises(ValueError, match="unexpected '%d'"):
        numbered_placeholders("SELECT %d", "?")


DAILY = "tests.arrowapp.extractors.DailyReadingExtractor"
DAILY_ROWS = "tests.arrowapp.extractors.DailyReadingRowsExtractor"


@pytest.mark.django_db(transaction=True)
def test_a_date_aggregated_queryset_writes_what_the_row_path_writes(
    duckdb_warehouse: Warehouse, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``.values("day").annotate(Count(...), Sum(...), Max(...))``: one row a day, aggregated
    by the source database, through the Arrow path (ADBC on PostgreSQL) as through the row
    path."""
    from tests.arrowapp.extractors import DailyReadingExtractor, DailyReadingRowsExtractor

    caplog.set_level(logging.DEBUG, logger="smolqwery.arrow_source")
    add_readings()
    create_tables(duckdb_warehouse, DailyReadingExtractor, DailyReadingRowsExtractor)
    report = run(settings, duckdb_warehouse, DAILY, DAILY_ROWS)
    assert report.ok, [r.error for r in report.results]
    arrow = fetch_rows(duckdb_warehouse, "daily_reading", order_by=["date"])
    assert arrow == fetch_rows(duckdb_warehouse, "daily_reading_rows", order_by=["date"])
    assert [(r["date"], r["day"], r["readings"]) for r in arrow] == [
        (FIRST + datetime.timedelta(days=i), FIRST + datetime.timedelta(days=i), 40)
        for i in range(3)
    ]
    assert arrow[0]["top_price"] == D("48148.113")
    assert paths_used(caplog) == {"adbc" if connection.vendor == "postgresql" else "dbapi"}
    # A day without rows has no group: refused by both paths alike (one row a day, always).
    configurer(settings)([DAILY, DAILY_ROWS], first=FIRST)
    after = LAST + datetime.timedelta(days=1)
    with at(datetime.datetime.combine(after + datetime.timedelta(days=1), datetime.time(3), PARIS)):
        results = export(date_from=after, date_to=after, warehouse=duckdb_warehouse).results
    assert all(r.failed and "exactly one row per day" in r.error for r in results)
    arrow = next(r for r in results if r.extractor == DAILY)
    assert "get_queryset() returned 0 (a day without source rows has no group" in arrow.error


def _pg_read(reader: Any, queryset: Any, names: list[str]) -> Iterator[tuple[list[Any], int]]:
    from smolqwery.queryset_extractor import compile_queryset

    return reader.read(compile_queryset(queryset, names))


def _fetch_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("smolqwery-fetch")]


@pytest.fixture
def pg_reader() -> Iterator[Any]:
    """A reader of small FETCHes (16 rows at most: 2, 4, 8, 16, 16...) over committed rows."""
    from smolqwery.arrow_source import SourceReader

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's server-side cursor")
    add_readings()
    reader = SourceReader("adbc", pg_fetch_rows=16)
    try:
        yield reader
    finally:
        reader.close()


def _open_cursors(reader: Any) -> int:
    cursor = reader._adbc["default"].cursor()
    try:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'smolqwery%'")
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


@pytest.mark.django_db(transaction=True)
def test_fetches_ahead_read_every_row_once_in_order(pg_reader: Any) -> None:
    rows = Reading.objects.order_by("id").values_list("id", "score")
    read: list[tuple[int, float]] = []
    for columns, count in _pg_read(pg_reader, rows.values("id", "score"), ["id", "score"]):
        read += zip(columns[0].to_pylist(), columns[1].to_pylist(), strict=True)
        assert count == len(columns[0])
    assert read == list(rows)
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0


@pytest.mark.django_db(transaction=True)
def test_a_query_failing_mid_stream_fails_the_read_and_leaves_nothing_open(
    pg_reader: Any,
) -> None:
    """Row 60 divides by zero in a FETCH run ahead, in the other thread: the error reaches the
    reader's caller after the rows before it; the thread is joined, the aborted transaction
    rolled back, and the next read works."""
    from django.db.models import ExpressionWrapper, F, IntegerField, Value

    pivot = Reading.objects.order_by("id").values_list("id", flat=True)[59]
    boom = ExpressionWrapper(Value(100) / (F("id") - pivot), output_field=IntegerField())
    failing = Reading.objects.order_by("id").values("id", ratio=boom)
    seen = 0
    with pytest.raises(Exception, match="division by zero"):
        for _columns, count in _pg_read(pg_reader, failing, ["id", "ratio"]):
            seen += count
    assert 0 < seen < 60
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0
    again = sum(c for _, c in _pg_read(pg_reader, Reading.objects.values("id"), ["id"]))
    assert again == Reading.objects.count()


@pytest.mark.django_db(transaction=True)
def test_a_read_left_early_ends_its_fetch_and_closes_its_cursor(pg_reader: Any) -> None:
    pieces = _pg_read(pg_reader, Reading.objects.order_by("id").values("id"), ["id"])
    assert sum(next(pieces)[1] for _ in range(3)) == 2 + 4 + 8
    assert _fetch_threads() != []  # the 4th FETCH is under way
    pieces.close()  # type: ignore[attr-defined]
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0
    again = sum(c for _, c in _pg_read(pg_reader, Reading.objects.values("id"), ["id"]))
    assert again == Reading.objects.count()


def _day_query(day: datetime.date, **annotations: Any) -> Any:
    """A day's readings (40 rows: FETCHes of 2, 4, 8, 16, then the last 10), compiled."""
    from smolqwery.queryset_extractor import compile_queryset

    rows = Reading.objects.filter(taken_on=day).order_by("id").values("id", **annotations)
    return compile_queryset(rows, ["id", *annotations])


def _ids(pieces: Iterator[tuple[list[Any], int]]) -> list[int]:
    return [i for columns, _ in pieces for i in columns[0].to_pylist()]


def _ahead_started(reader: Any, query: Any) -> bool:
    """Whether the reader holds ``query``'s cursor, opened ahead (its start is awaited)."""
    if reader._ahead is None or reader._ahead.query is not query:
        return False
    reader._ahead.first.exception()  # the connection is free again (one user at a time)
    return True


def _following(queries: list[Any], index: int, asked: list[int]) -> Any:
    """A reader's ``following``: ``queries[index]`` (None past the end), each ask noted."""

    def following() -> Any:
        asked.append(index)
        return queries[index] if index < len(queries) else None

    return following


@pytest.mark.django_db(transaction=True)
def test_the_next_days_cursor_opens_while_the_last_rows_are_used(pg_reader: Any) -> None:
    """Once a day's last FETCH is back, the thread closes its cursor and opens the next
    day's, with its first FETCH; the next read takes them over. Every row once, in order."""
    days = [FIRST + datetime.timedelta(days=i) for i in range(3)]
    queries = [_day_query(day) for day in days]
    asked: list[int] = []
    read: list[int] = []
    for index, query in enumerate(queries):
        read += _ids(pg_reader.read(query, _following(queries, index + 1, asked)))
        if index + 1 < len(queries):
            assert _ahead_started(pg_reader, queries[index + 1])
            assert _open_cursors(pg_reader) == 1  # this day's closed, the next one's open
            assert _fetch_threads() != []
    assert asked == [1, 2, 3]  # once a day
    assert read == list(Reading.objects.order_by("id").values_list("id", flat=True))
    assert pg_reader._ahead is None
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0


@pytest.mark.django_db(transaction=True)
def test_a_next_day_failing_ahead_is_that_days_error(pg_reader: Any) -> None:
    """The next day's query divides by zero at its first row, in the thread, while this day
    is used: this day reads whole; the error is the next day's read's; nothing stays open."""
    from django.db.models import ExpressionWrapper, F, IntegerField, Value

    second = FIRST + datetime.timedelta(days=1)
    pivot = Reading.objects.filter(taken_on=second).order_by("id").values_list("id")[0][0]
    boom = ExpressionWrapper(Value(100) / (F("id") - pivot), output_field=IntegerField())
    first, failing = _day_query(FIRST), _day_query(second, ratio=boom)
    assert len(_ids(pg_reader.read(first, lambda: failing))) == 40
    with pytest.raises(Exception, match="division by zero"):
        _ids(pg_reader.read(failing))
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0
    assert len(_ids(pg_reader.read(_day_query(second)))) == 40


@pytest.mark.django_db(transaction=True)
def test_a_next_day_left_unread_is_ended(pg_reader: Any) -> None:
    """Started ahead, then not read (another query, the reader closed, or this day's read
    left after its last FETCH): the FETCH ends, its cursor is closed, the thread joined."""
    days = [FIRST + datetime.timedelta(days=i) for i in range(3)]
    one, two, three = (_day_query(day) for day in days)
    assert len(_ids(pg_reader.read(one, lambda: two))) == 40
    assert _ahead_started(pg_reader, two)
    assert len(_ids(pg_reader.read(three))) == 40  # not the one started: it is ended first
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0
    pieces = pg_reader.read(one, lambda: two)
    assert [next(pieces)[1] for _ in range(5)] == [2, 4, 8, 16, 10]  # the last: two started
    pieces.close()
    assert pg_reader._ahead is None
    assert _fetch_threads() == [] and _open_cursors(pg_reader) == 0
    assert len(_ids(pg_reader.read(one, lambda: two))) == 40
    pg_reader.close()
    assert _fetch_threads() == []


@pytest.mark.django_db(transaction=True)
def test_a_get_queryset_failing_ahead_is_that_days_error(
    duckdb_warehouse: Warehouse, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next day's queryset is built while this day is read: its failure is still told as
    that day's, and the batch writes nothing (PostgreSQL: built ahead; elsewhere as before)."""
    add_readings()
    after = datetime.datetime.combine(FIRST, datetime.time(), PARIS)
    monkeypatch.setattr(ReadingExtractor, "raise_after", after)
    create_tables(duckdb_warehouse, ReadingExtractor)
    (result,) = run(settings, duckdb_warehouse, ARROW).results
    second = FIRST + datetime.timedelta(days=1)
    assert result.error == (
        f"{ARROW}: day {second.isoformat()}: get_queryset() raised LookupError: no such thing"
    )
    assert table_rows(duckdb_warehouse, "reading") == []


# -- SQLite: each next batch read in a thread, the next day run ahead ----------------------


def _read_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("smolqwery-read")]


@pytest.fixture
def sqlite_reader(sqlite_file: str) -> Iterator[Any]:
    """A reader of batches of 8 rows (a day: 5 batches) over a SQLite file's readings."""
    from smolqwery.arrow_source import SourceReader

    add_readings(sqlite_file)
    reader = SourceReader("adbc", sqlite_batch_rows=8)
    try:
        yield reader
    finally:
        reader.close()


def _file_day_query(alias: str, day: datetime.date, **annotations: Any) -> Any:
    from smolqwery.queryset_extractor import compile_queryset

    rows = Reading.objects.using(alias).filter(taken_on=day).order_by("id")
    return compile_queryset(rows.values("id", **annotations), ["id", *annotations])


def _overflow_at(alias: str, day: datetime.date, row: int) -> Any:
    """``id`` of a day's query, and a column that fails at its ``row``-th row (SQLite's
    ``abs()`` of the smallest integer: "integer overflow"), the value a parameter."""
    from django.db.models import Case, IntegerField, Value, When
    from django.db.models.expressions import RawSQL

    pivot = Reading.objects.using(alias).filter(taken_on=day).order_by("id")[row].id
    boom = RawSQL("abs(%s)", (-(2**63),), output_field=IntegerField())
    failing = Case(When(id=pivot, then=boom), default=Value(1), output_field=IntegerField())
    return _file_day_query(alias, day, flag=failing)


@pytest.mark.django_db
def test_sqlite_reads_every_row_once_in_order_the_next_day_run_ahead(
    sqlite_reader: Any, sqlite_file: str
) -> None:
    """While a day's batches are used, the thread reads the next batch; once the day is read
    it runs the next day's query, which the next read takes over."""
    days = [FIRST + datetime.timedelta(days=i) for i in range(3)]
    queries = [_file_day_query(sqlite_file, day) for day in days]
    asked: list[int] = []
    read: list[int] = []
    for index, query in enumerate(queries):
        pieces = list(sqlite_reader.read(query, _following(queries, index + 1, asked)))
        assert [count for _, count in pieces] == [8] * 5
        read += [i for columns, _ in pieces for i in columns[0].to_pylist()]
        if index + 1 < len(queries):
            ahead = sqlite_reader._ahead
            assert ahead.query is queries[index + 1] and ahead.reader is not None
        assert _read_threads() != []  # the reader's thread lives as long as the reader
    assert asked == [1, 2, 3]
    assert read == list(
        Reading.objects.using(sqlite_file).order_by("id").values_list("id", flat=True)
    )
    assert sqlite_reader._ahead is None
    sqlite_reader.close()
    assert _read_threads() == []


@pytest.mark.django_db
def test_sqlite_a_query_failing_mid_stream_fails_the_read_after_the_rows_before(
    sqlite_reader: Any, sqlite_file: str
) -> None:
    """Row 20 fails, in the thread: the read raises after the rows before it were used, and
    the next read works."""
    seen = 0
    with pytest.raises(Exception, match="integer overflow"):
        for _columns, count in sqlite_reader.read(_overflow_at(sqlite_file, FIRST, 20)):
            seen += count
    assert seen == 16
    assert len(_ids(sqlite_reader.read(_file_day_query(sqlite_file, FIRST)))) == 40


@pytest.mark.django_db
def test_sqlite_a_next_day_failing_ahead_is_that_days_error(
    sqlite_reader: Any, sqlite_file: str
) -> None:
    """The next day fails at its first row, run ahead: this day reads whole, the error is the
    next day's read's, and the reader goes on."""
    second = FIRST + datetime.timedelta(days=1)
    first, failing = _file_day_query(sqlite_file, FIRST), _overflow_at(sqlite_file, second, 0)
    assert len(_ids(sqlite_reader.read(first, lambda: failing))) == 40
    assert sqlite_reader._ahead.query is failing and sqlite_reader._ahead.error is not None
    with pytest.raises(Exception, match="integer overflow"):
        _ids(sqlite_reader.read(failing))
    assert sqlite_reader._ahead is None
    assert len(_ids(sqlite_reader.read(_file_day_query(sqlite_file, second)))) == 40


@pytest.mark.django_db
def test_sqlite_a_read_left_early_or_a_next_day_left_unread_frees_everything(
    sqlite_reader: Any, sqlite_file: str
) -> None:
    days = [FIRST + datetime.timedelta(days=i) for i in range(3)]
    one, two, three = (_file_day_query(sqlite_file, day) for day in days)
    pieces = sqlite_reader.read(one, lambda: two)
    assert [next(pieces)[1] for _ in range(2)] == [8, 8]
    pieces.close()  # the batch read ahead is awaited; two was never run
    assert sqlite_reader._ahead is None
    assert len(_ids(sqlite_reader.read(one, lambda: two))) == 40
    started = sqlite_reader._ahead
    assert started.query is two and started.reader is not None
    assert len(_ids(sqlite_reader.read(three))) == 40  # not the one run ahead: it is ended
    assert started.reader is None and started.cursor is None
    assert sqlite_reader._ahead is None
