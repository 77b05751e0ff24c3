"""One suite, run against every warehouse backend: DuckDB on a file, BigQuery on the local
emulator, and a third backend written outside the product (:mod:`tests.thirdbackend`),
configured by its dotted path.

Every test taking ``warehouse`` runs once per backend (``[duckdb]``, ``[bigquery]``,
``[thirdbackend]``), each time on a fresh file or dataset whose ``ensure_dataset()`` already ran.
A new backend passes this suite by adding one parameter below.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from smolqwery.errors import SchemaMismatchError, WarehouseError
from smolqwery.extractor import ExtractorType
from smolqwery.rows import arrow_schema
from smolqwery.schema import Column, TableSchema
from smolqwery.warehouses.base import (
    LEDGER_TABLE,
    LEGACY_FINGERPRINT,
    Warehouse,
    ledger_table_name,
)
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.emulator import Emulator
from .fixtures.warehouses import PARIS, WAREHOUSE_PARAMS, WAREHOUSES, make_batch, record_batches
from .thirdbackend import DOTTED_PATH, EmbeddedWarehouse

D = datetime.date
UTC = datetime.timezone.utc

EVENTS = TableSchema(
    name="events",
    columns=(
        Column("timestamp", "TIMESTAMP", "REQUIRED", "When it happened"),
        Column("user_id", "INT64", "REQUIRED", "Who did it"),
        Column("kind", "STRING", "NULLABLE", "What kind; it's free text"),
    ),
    kind=ExtractorType.individual_rows,
    date_column="timestamp",
    description="One row per event",
    clustering=("user_id",),
)

DAILY = TableSchema(
    name="daily_totals",
    columns=(
        Column("date", "DATE", "REQUIRED", "Day the row describes"),
        Column("users", "INT64", "REQUIRED", "Users that day", differentiate=True),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
    description="Totals per day",
)

ALL_TYPES = TableSchema(
    name="all_types",
    columns=(
        Column("date", "DATE", "REQUIRED", "Day"),
        Column("i", "INT64", "NULLABLE"),
        Column("f", "FLOAT64", "NULLABLE"),
        Column("b", "BOOL", "NULLABLE"),
        Column("s", "STRING", "NULLABLE"),
        Column("raw", "BYTES", "NULLABLE"),
        Column("d", "DATE", "NULLABLE"),
        Column("ts", "TIMESTAMP", "NULLABLE"),
        Column("n", "NUMERIC", "NULLABLE"),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
)


def event(when: datetime.datetime, user_id: int, kind: str | None = "click") -> dict[str, Any]:
    return {"timestamp": when, "user_id": user_id, "kind": kind}


def daily(day: datetime.date, users: int) -> dict[str, Any]:
    return {"date": day, "users": users}


@pytest.fixture
def thirdbackend_warehouse(settings: Any, tmp_path: Path) -> Iterator[Warehouse]:
    """The third backend, chosen the way a project chooses it: ``SMOLQWERY_WAREHOUSE`` set to
    its dotted path."""
    from smolqwery.warehouses import get_warehouse

    settings.SMOLQWERY_WAREHOUSE = DOTTED_PATH
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "third.duckdb")
    settings.SMOLQWERY_DATASET = "smolqwery_tests"
    wh = get_warehouse()
    assert type(wh) is EmbeddedWarehouse
    wh.ensure_dataset()
    try:
        yield wh
    finally:
        wh.close()


@pytest.fixture(params=[*WAREHOUSE_PARAMS, "thirdbackend"])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """Each backend in turn (this module's tests run once per backend)."""
    wh: Warehouse = request.getfixturevalue(f"{request.param}_warehouse")
    return wh


def paris(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime.datetime:
    return datetime.datetime(y, m, d, hh, mm, tzinfo=PARIS)


def ids(wh: Warehouse) -> list[int]:
    return [r["user_id"] for r in fetch_rows(wh, "events", order_by=["timestamp", "user_id"])]


def description_of(wh: Warehouse, name: str) -> str | None:
    """A table's description, read through each warehouse's own means."""
    if isinstance(wh, DuckDBWarehouse):
        return wh.table_description(name)  # type: ignore[attr-defined,no-any-return]
    table = wh.get_table(name)  # type: ignore[attr-defined]
    return None if table is None else (table.description or "")


def fill_without_ledger(wh: Warehouse, table: TableSchema, values: list[Any]) -> None:
    """Rows written the way smolqwery 0.1.3 did: straight into the table, no ledger."""
    col = table.date_column
    other = [c for c in table.columns if c.name != col]
    if isinstance(wh, DuckDBWarehouse):
        import duckdb

        con = duckdb.connect(str(wh.path))  # type: ignore[attr-defined]
        try:
            for value in values:
                con.execute(
                    f"INSERT INTO {wh.qualified_name(table.name)} ({col}, "
                    + ", ".join(c.name for c in other)
                    + ") VALUES (?"
                    + ", 1" * len(other)
                    + ")",
                    [value],
                )
        finally:
            con.close()
        return
    from google.cloud import bigquery

    for value in values:
        kind = "TIMESTAMP" if table.date_column_type == "TIMESTAMP" else "DATE"
        wh.client.query(  # type: ignore[attr-defined]
            f"INSERT INTO {wh.qualified_name(table.name)} ({col}, "
            + ", ".join(c.name for c in other)
            + ") VALUES (@v"
            + ", 1" * len(other)
            + ")",
            job_config=bigquery.QueryJobConfig(
                query_parameters=[bigquery.ScalarQueryParameter("v", kind, value)]
            ),
        ).result()


# -- dataset ---------------------------------------------------------------------------------


def test_ensure_dataset_is_idempotent_and_creates_the_ledger(warehouse: Warehouse) -> None:
    warehouse.ensure_dataset()
    warehouse.ensure_dataset()
    # A shared ledger, or one per table, made with the table (docs/scaling.md).
    per_table = warehouse.ops.capabilities.ledger_per_table
    assert (LEDGER_TABLE in warehouse.list_tables()) != per_table
    assert warehouse.exported_days("events") == {}


# -- tables ----------------------------------------------------------------------------------


def test_create_table_then_read_the_schema_back(warehouse: Warehouse) -> None:
    assert warehouse.get_table_columns("events") is None
    assert warehouse.create_table(EVENTS) is True
    assert warehouse.get_table_columns("events") == EVENTS.columns
    assert description_of(warehouse, "events") == "One row per event"
    # Creating it again is a no-op that says so.
    assert warehouse.create_table(EVENTS) is False
    assert warehouse.get_table_columns("events") == EVENTS.columns


def test_every_type_and_mode_is_read_back_as_created(warehouse: Warehouse) -> None:
    warehouse.create_table(ALL_TYPES)
    assert warehouse.get_table_columns("all_types") == ALL_TYPES.columns


def test_changed_descriptions_are_updated_in_place(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    changed = TableSchema(
        name="events",
        columns=(
            Column("timestamp", "TIMESTAMP", "REQUIRED", "When, in UTC"),
            *EVENTS.columns[1:],
        ),
        kind=EVENTS.kind,
        date_column="timestamp",
        description="Events, described anew",
        clustering=EVENTS.clustering,
    )
    assert warehouse.create_table(changed) is False
    assert warehouse.get_table_columns("events") == changed.columns
    assert description_of(warehouse, "events") == "Events, described anew"


def test_create_table_with_another_layout_lists_the_differences(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    other = TableSchema(
        name="events",
        columns=(
            Column("timestamp", "TIMESTAMP", "REQUIRED"),
            Column("user_id", "STRING", "REQUIRED"),
            Column("extra", "INT64", "NULLABLE"),
        ),
        kind=EVENTS.kind,
        date_column="timestamp",
    )
    with pytest.raises(SchemaMismatchError) as info:
        warehouse.create_table(other)
    message = str(info.value)
    assert "'user_id' is INT64 REQUIRED, expected STRING REQUIRED" in message
    assert "'extra' (INT64 NULLABLE) is missing" in message
    assert "'kind' (STRING NULLABLE) is unexpected" in message
    assert warehouse.get_table_columns("events") == EVENTS.columns


def test_descriptions_are_stored_verbatim(warehouse: Warehouse) -> None:
    tricky = 'it\'s "quoted"; DROP TABLE events; -- é\\n'
    table = TableSchema(
        name="tricky",
        columns=(Column("date", "DATE", "REQUIRED", tricky),),
        kind=ExtractorType.date_aggregated,
        date_column="date",
        description=tricky,
    )
    warehouse.create_table(table)
    assert warehouse.get_table_columns("tricky") == table.columns
    assert description_of(warehouse, "tricky") == tricky


def test_list_tables_is_sorted_and_includes_views(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    warehouse.create_table(DAILY)
    warehouse.create_or_replace_view("daily_totals_delta", f"SELECT * FROM {_q(warehouse)}")
    ledgers = (
        [ledger_table_name("daily_totals"), ledger_table_name("events")]
        if warehouse.ops.capabilities.ledger_per_table
        else [LEDGER_TABLE]
    )
    assert warehouse.list_tables() == ["daily_totals", "daily_totals_delta", "events", *ledgers]


def test_qualified_name_is_quoted_and_names_the_dataset(warehouse: Warehouse) -> None:
    name = warehouse.qualified_name("events")
    assert warehouse.dataset in name
    assert name.endswith(('"events"', ".events`"))


def test_drop_table_removes_the_table_and_its_ledger_entries(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    warehouse.create_table(DAILY)
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), rows=[event(paris(2024, 5, 1), 1)]))
    warehouse.replace_days(
        make_batch(DAILY, D(2024, 5, 1), rows=[{"date": D(2024, 5, 1), "users": 3}])
    )
    warehouse.drop_table("events")
    assert "events" not in warehouse.list_tables()
    assert warehouse.exported_days("events") == {}
    assert list(warehouse.exported_days("daily_totals")) == [D(2024, 5, 1)]
    warehouse.drop_table("events")  # already gone: nothing to do


# -- views -----------------------------------------------------------------------------------


def _q(wh: Warehouse) -> str:
    return wh.view_reference("daily_totals")


def test_views_are_created_replaced_and_dropped(warehouse: Warehouse) -> None:
    warehouse.create_table(DAILY)
    warehouse.replace_days(
        make_batch(
            DAILY,
            D(2024, 5, 1),
            D(2024, 5, 2),
            rows=[{"date": D(2024, 5, 1), "users": 3}, {"date": D(2024, 5, 2), "users": 5}],
        )
    )
    warehouse.create_or_replace_view(
        "big_days", f"SELECT date, users FROM {_q(warehouse)} WHERE users > 4", "Busy days"
    )
    assert fetch_rows(warehouse, "big_days") == [{"date": D(2024, 5, 2), "users": 5}]
    assert description_of(warehouse, "big_days") == "Busy days"
    warehouse.create_or_replace_view(
        "big_days", f"SELECT date, users FROM {_q(warehouse)} WHERE users > 1", "Days"
    )
    assert [r["users"] for r in fetch_rows(warehouse, "big_days", order_by=["date"])] == [3, 5]
    assert description_of(warehouse, "big_days") == "Days"
    warehouse.drop_view("big_days")
    assert "big_days" not in warehouse.list_tables()
    warehouse.drop_view("big_days")  # absent: nothing to do


def test_drop_view_refuses_to_drop_a_table(warehouse: Warehouse) -> None:
    warehouse.create_table(DAILY)
    with pytest.raises(WarehouseError):
        warehouse.drop_view("daily_totals")
    assert "daily_totals" in warehouse.list_tables()


# -- replacing days --------------------------------------------------------------------------


def test_replace_days_writes_rows_and_the_ledger(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    rows = [event(paris(2024, 5, 1, 9), 1), event(paris(2024, 5, 1, 23, 59), 2)]
    rows.append(event(paris(2024, 5, 3, 0, 0), 3, None))
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 3), rows, run_id="r1"))
    got = fetch_rows(warehouse, "events", order_by=["timestamp"])
    assert got == [
        {"timestamp": r["timestamp"].astimezone(UTC), "user_id": r["user_id"], "kind": r["kind"]}
        for r in rows
    ]
    ledger = warehouse.exported_days("events")
    assert {day: e.rows for day, e in ledger.items()} == {
        D(2024, 5, 1): 2,
        D(2024, 5, 2): 0,  # a day without rows is recorded too
        D(2024, 5, 3): 1,
    }
    entry = ledger[D(2024, 5, 1)]
    assert entry.table_name == "events"
    assert entry.run_id == "r1"
    assert entry.schema_fingerprint == EVENTS.fingerprint()
    assert entry.exported_at.tzinfo is not None
    assert abs(entry.exported_at - datetime.datetime.now(UTC)) < datetime.timedelta(minutes=10)


def test_a_read_session_runs_several_reads(warehouse: Warehouse) -> None:
    """``reading()``: reads through one session (one DuckDB connection), parameters bound, a
    missing table None with ``missing_ok``, the bytes billed where the backend bills them."""
    warehouse.create_table(EVENTS)
    rows = [event(paris(2024, 5, 1, 9), 1), event(paris(2024, 5, 1, 10), 2)]
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 1), rows))
    column = warehouse.ops.column("user_id")
    with warehouse.reading("read twice") as session:
        for user in (1, 2):
            p = warehouse.ops.params()
            sql = (
                f"SELECT COUNT(*) AS n FROM {warehouse.qualified_name('events')} "
                f"WHERE {column} >= {p(user, 'INT64')}"
            )
            assert session.fetch(sql, p) == [{"n": 3 - user}]
            assert (session.bytes_billed is None) == (warehouse.vendor != "bigquery")
        absent = f"SELECT 1 AS one FROM {warehouse.qualified_name('absent')}"
        assert session.fetch(absent, missing_ok=True) is None


def test_replacing_the_same_days_twice_leaves_one_copy(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    rows = [event(paris(2024, 5, 1), 1), event(paris(2024, 5, 2), 2)]
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), rows, run_id="r1"))
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), rows, run_id="r2"))
    assert ids(warehouse) == [1, 2]
    ledger = warehouse.exported_days("events")
    assert [(d, e.rows, e.run_id) for d, e in ledger.items()] == [
        (D(2024, 5, 1), 1, "r2"),
        (D(2024, 5, 2), 1, "r2"),
    ]


def test_replace_touches_only_the_batch_days_in_local_time(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    # 23:30 and 00:30 in Paris: the second is on 2 May locally but on 1 May in UTC.
    first = [event(paris(2024, 5, 1, 23, 30), 1), event(paris(2024, 5, 2, 0, 30), 2)]
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), first))
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 2), rows=[event(paris(2024, 5, 2, 8), 3)]))
    assert ids(warehouse) == [1, 3]
    assert {d: e.rows for d, e in warehouse.exported_days("events").items()} == {
        D(2024, 5, 1): 1,
        D(2024, 5, 2): 1,
    }


def test_replace_a_day_with_no_rows_empties_it(warehouse: Warehouse) -> None:
    warehouse.create_table(DAILY)
    warehouse.replace_days(
        make_batch(DAILY, D(2024, 5, 1), rows=[{"date": D(2024, 5, 1), "users": 3}])
    )
    warehouse.replace_days(make_batch(DAILY, D(2024, 5, 1)))
    assert fetch_rows(warehouse, "daily_totals") == []
    assert warehouse.exported_days("daily_totals")[D(2024, 5, 1)].rows == 0


def test_dst_days_of_23_and_25_hours(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    rows = [
        event(paris(2024, 3, 31, 0, 30), 1),
        event(paris(2024, 3, 31, 23, 30), 2),
        event(datetime.datetime(2024, 10, 27, 0, 30, tzinfo=UTC), 3),  # 02:30 CEST, 27 Oct
        event(paris(2024, 10, 27, 23, 59), 4),
    ]
    warehouse.replace_days(make_batch(EVENTS, D(2024, 3, 31), rows=rows[:2]))
    warehouse.replace_days(make_batch(EVENTS, D(2024, 10, 27), rows=rows[2:]))
    warehouse.replace_days(make_batch(EVENTS, D(2024, 3, 31), rows=rows[:1]))
    assert ids(warehouse) == [1, 3, 4]


def _failing_chunks(table: TableSchema, rows: list[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    yield from record_batches(table, rows)
    raise RuntimeError("the producer broke mid-way")


def test_failure_in_the_producer_changes_nothing(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    before = [event(paris(2024, 5, 1), 1), event(paris(2024, 5, 2), 2)]
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), before, run_id="r1"))
    ledger = warehouse.exported_days("events")
    new = [event(paris(2024, 5, 1), 10), event(paris(2024, 5, 2), 20)]
    batch = make_batch(
        EVENTS, D(2024, 5, 1), D(2024, 5, 2), run_id="r2", chunks=_failing_chunks(EVENTS, new)
    )
    with pytest.raises(RuntimeError, match="broke mid-way"):
        warehouse.replace_days(batch)
    assert ids(warehouse) == [1, 2]
    assert warehouse.exported_days("events") == ledger
    assert [t for t in warehouse.list_tables() if "staging" in t] == []


def test_failure_inside_the_transaction_changes_nothing(warehouse: Warehouse) -> None:
    """A NULL in a REQUIRED column is refused by the table itself, after the day was deleted."""
    warehouse.create_table(EVENTS)
    before = [event(paris(2024, 5, 1), 1), event(paris(2024, 5, 2), 2)]
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), before, run_id="r1"))
    ledger = warehouse.exported_days("events")
    relaxed = pa.schema([f.with_nullable(True) for f in arrow_schema(EVENTS)])
    bad = pa.RecordBatch.from_pylist(
        [event(paris(2024, 5, 1), 10), {"timestamp": paris(2024, 5, 2), "user_id": None}],
        schema=relaxed,
    )
    batch = make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), run_id="r2", chunks=[bad])
    with pytest.raises(WarehouseError, match=r"replace days 2024-05-01\.\.2024-05-02 of events"):
        warehouse.replace_days(batch)
    assert ids(warehouse) == [1, 2]
    assert warehouse.exported_days("events") == ledger
    assert [t for t in warehouse.list_tables() if "staging" in t] == []


def test_rows_outside_the_batch_days_are_refused(warehouse: Warehouse) -> None:
    """They would survive the next replacement of their own day, as duplicates."""
    warehouse.create_table(EVENTS)
    warehouse.replace_days(make_batch(EVENTS, D(2024, 5, 5), rows=[event(paris(2024, 5, 5), 5)]))
    ledger = warehouse.exported_days("events")
    batch = make_batch(EVENTS, D(2024, 5, 1), D(2024, 5, 2), run_id="r2")
    batch.chunks = record_batches(
        EVENTS, [event(paris(2024, 5, 1), 1), event(paris(2024, 5, 5), 9)]
    )
    with pytest.raises(WarehouseError, match="outside the days of the batch"):
        warehouse.replace_days(batch)
    assert ids(warehouse) == [5]
    assert warehouse.exported_days("events") == ledger


def test_fetch_rows_of_a_missing_table_names_it(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="read rows of no_such_table"):
        fetch_rows(warehouse, "no_such_table")


def test_many_rows_in_many_chunks(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    start = paris(2024, 1, 1, 0, 0)
    rows = [event(start + datetime.timedelta(minutes=7 * i), i) for i in range(5000)]
    batch = make_batch(EVENTS, D(2024, 1, 1), D(2024, 1, 31), rows)
    warehouse.replace_days(batch)
    ledger = warehouse.exported_days("events")
    assert len(ledger) == 31
    assert sum(e.rows for e in ledger.values()) == 5000
    assert ledger[D(2024, 1, 1)].rows == 206  # 24 * 60 / 7 -> minutes 0 .. 1435
    assert ids(warehouse) == list(range(5000))


# -- types -----------------------------------------------------------------------------------

EXACT_VALUES: list[dict[str, Any]] = [
    {
        "date": D(1960, 2, 29),
        "i": -(2**63),
        "f": 0.1,
        "b": True,
        "s": "é ☃ 'quoted' \"double\" \\ \n newline",
        "raw": b"\x00\xff\xfe binary \x80",
        "d": D(1, 1, 1),
        "ts": datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "n": decimal.Decimal("12345678901234567890123456789.123456789"),
    },
    {
        "date": D(1960, 3, 1),
        "i": 2**63 - 1,
        "f": -1.7976931348623157e308,
        "b": False,
        "s": "",
        "raw": b"",
        "d": D(9999, 12, 31),
        "ts": datetime.datetime(2024, 7, 1, 13, 14, 15, 123456, tzinfo=PARIS),
        "n": decimal.Decimal("-99999999999999999999999999999.999999999"),
    },
    {
        "date": D(1960, 3, 2),
        "i": None,
        "f": None,
        "b": None,
        "s": None,
        "raw": None,
        "d": None,
        "ts": None,
        "n": None,
    },
    {
        "date": D(1960, 3, 3),
        "i": 0,
        "f": 5e-324,
        "b": True,
        "s": "x" * 10000,
        "raw": bytes(range(256)),
        "d": D(1970, 1, 1),
        "ts": datetime.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        "n": decimal.Decimal("0.000000001"),
    },
]


def test_all_eight_types_round_trip_exactly(warehouse: Warehouse) -> None:
    warehouse.create_table(ALL_TYPES)
    warehouse.replace_days(make_batch(ALL_TYPES, D(1960, 2, 29), D(1960, 3, 3), EXACT_VALUES))
    got = fetch_rows(warehouse, "all_types", order_by=["date"])
    assert len(got) == len(EXACT_VALUES)
    for row, expected in zip(got, EXACT_VALUES, strict=True):
        assert set(row) == set(expected)
        for key, value in expected.items():
            assert type(row[key]) is type(value), key
            assert row[key] == value, key
            if isinstance(value, datetime.datetime):
                assert row[key].utcoffset() == datetime.timedelta(0)
    ledger = warehouse.exported_days("all_types")
    assert sorted(ledger) == [D(1960, 2, 29), D(1960, 3, 1), D(1960, 3, 2), D(1960, 3, 3)]


# -- identifiers -----------------------------------------------------------------------------

BAD_NAMES = ["x; DROP TABLE events", "a`b", 'a"b', "events--", "1abc", "", "a b", "a.b"]


@pytest.fixture(params=WAREHOUSES)
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A warehouse that fails if anything reaches it: proof that a check came first."""
    if request.param == "duckdb":
        from smolqwery.warehouses.duckdb import DuckDBWarehouse

        wh: Warehouse = DuckDBWarehouse(tmp_path / "never" / "w.duckdb", "ds", busy_timeout=0.1)
        yield wh
        assert not (tmp_path / "never").exists(), "the DuckDB file was opened"
        return
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from smolqwery.warehouses.bigquery import BigQueryWarehouse

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = bigquery.Client(
        project="test-project",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": f"http://127.0.0.1:{port}"},
    )
    yield BigQueryWarehouse(client, "ds", retry_deadline=0.1)


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_identifiers_that_inject_sql_are_rejected_before_any_call(
    unreachable: Warehouse, bad: str
) -> None:
    bad_table = TableSchema(
        name=bad,
        columns=(Column("date", "DATE"),),
        kind=ExtractorType.date_aggregated,
        date_column="date",
    )
    bad_column = TableSchema(
        name="ok",
        columns=(Column("date", "DATE"), Column(bad, "INT64")),
        kind=ExtractorType.date_aggregated,
        date_column="date",
    )
    bad_cluster = TableSchema(
        name="ok",
        columns=(Column("date", "DATE"),),
        kind=ExtractorType.date_aggregated,
        date_column="date",
        clustering=(bad,),
    )
    calls = [
        lambda: unreachable.create_table(bad_table),
        lambda: unreachable.create_table(bad_column),
        lambda: unreachable.create_table(bad_cluster),
        lambda: unreachable.get_table_columns(bad),
        lambda: unreachable.qualified_name(bad),
        lambda: unreachable.drop_table(bad),
        lambda: unreachable.create_or_replace_view(bad, "SELECT 1"),
        lambda: unreachable.drop_view(bad),
        lambda: unreachable.exported_days(bad),
        lambda: fetch_rows(unreachable, bad),
        lambda: fetch_rows(unreachable, "ok", order_by=[bad]),
        lambda: unreachable.replace_days(make_batch(bad_column, D(2024, 1, 1))),
        lambda: unreachable.legacy_days(bad_table, PARIS, D(2024, 1, 1), D(2024, 1, 2)),
        lambda: unreachable.adopt_legacy_days(bad_table, D(2024, 1, 1), D(2024, 1, 2), PARIS, "r"),
        lambda: unreachable.adopt_legacy_days(bad_column, D(2024, 1, 1), D(2024, 1, 2), PARIS, "r"),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize("bad", ["x; DROP SCHEMA s", "a`b", 'a"b', "a-b", ""])
def test_bad_dataset_names_are_rejected(bad: str, tmp_path: Path) -> None:
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    with pytest.raises(ValueError, match="dataset name"):
        DuckDBWarehouse(tmp_path / "w.duckdb", bad)


def test_bad_dataset_names_are_rejected_by_bigquery(bigquery_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="dataset name"):
        bigquery_emulator.warehouse("x`; DROP")


# -- resuming --------------------------------------------------------------------------------


def test_exported_days_of_an_unknown_table_is_empty(warehouse: Warehouse) -> None:
    assert warehouse.exported_days("nothing_here") == {}


def test_legacy_days_of_an_empty_table_is_empty(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    assert warehouse.legacy_days(EVENTS, PARIS, D(2000, 1, 1), D(2100, 1, 1)) == []


def test_d04_legacy_days_are_local_days_holding_rows(warehouse: Warehouse) -> None:
    """0.1.3 took the UTC date of the newest timestamp; 00:30 in Paris is the day before in UTC.

    Only days holding rows are listed, within the range asked.
    """
    warehouse.create_table(EVENTS)
    fill_without_ledger(
        warehouse,
        EVENTS,
        [paris(2024, 4, 28, 10), paris(2024, 4, 30, 10), paris(2024, 5, 2, 0, 30)],
    )
    assert warehouse.exported_days("events") == {}
    assert warehouse.legacy_days(EVENTS, PARIS, D(2024, 4, 29), D(2024, 5, 9)) == [
        D(2024, 4, 30),
        D(2024, 5, 2),
    ]
    assert warehouse.legacy_days(EVENTS, UTC, D(2024, 4, 29), D(2024, 5, 9)) == [
        D(2024, 4, 30),
        D(2024, 5, 1),
    ]


def test_legacy_days_of_a_date_table(warehouse: Warehouse) -> None:
    warehouse.create_table(DAILY)
    fill_without_ledger(warehouse, DAILY, [D(2023, 12, 30), D(2023, 12, 31), D(2023, 6, 1)])
    assert warehouse.legacy_days(DAILY, PARIS, D(2023, 12, 1), D(2024, 1, 1)) == [
        D(2023, 12, 30),
        D(2023, 12, 31),
    ]


def ledger_of(wh: Warehouse, table: str) -> dict[datetime.date, tuple[int, str, str]]:
    return {
        day: (e.rows, e.schema_fingerprint, e.run_id) for day, e in wh.exported_days(table).items()
    }


def test_d20_adopt_legacy_days_counts_rows_per_local_day(warehouse: Warehouse) -> None:
    """A 0.1.3 table's days holding rows go into the ledger once, counted per Paris day.

    Days without rows are not adopted: they are missing, and their export can only add rows.
    """
    warehouse.create_table(EVENTS)
    fill_without_ledger(
        warehouse,
        EVENTS,
        [
            paris(2024, 4, 28, 10),  # before the first day: not adopted
            paris(2024, 4, 30, 10),
            paris(2024, 5, 2, 0, 30),  # 22:30 UTC on the 1st: a Paris day of the 2nd
            paris(2024, 5, 2, 23, 30),  # 21:30 UTC on the 2nd
            paris(2024, 5, 4, 9),  # after the last day: not adopted
        ],
    )

    adopted = warehouse.adopt_legacy_days(EVENTS, D(2024, 4, 29), D(2024, 5, 2), PARIS, "adopt")

    assert adopted == 2
    assert ledger_of(warehouse, "events") == {
        D(2024, 4, 30): (1, LEGACY_FINGERPRINT, "adopt"),
        D(2024, 5, 2): (2, LEGACY_FINGERPRINT, "adopt"),
    }
    # Rows are only counted, never changed.
    assert len(fetch_rows(warehouse, "events")) == 5
    # Twice is harmless: the ledger knows the table now, nothing is adopted again.
    assert warehouse.adopt_legacy_days(EVENTS, D(2024, 4, 1), D(2024, 5, 9), PARIS, "x") == 0
    assert {e.run_id for e in warehouse.exported_days("events").values()} == {"adopt"}


def test_d20_no_adoption_once_the_ledger_knows_the_table(warehouse: Warehouse) -> None:
    """A table with any ledger entry of ours is never adopted: its other days are missing."""
    warehouse.create_table(EVENTS)
    warehouse.replace_days(
        make_batch(EVENTS, D(2024, 5, 1), rows=[event(paris(2024, 5, 1, 12), 7)], run_id="own")
    )
    own = warehouse.exported_days("events")
    fill_without_ledger(warehouse, EVENTS, [paris(2024, 4, 30, 10)])
    assert warehouse.adopt_legacy_days(EVENTS, D(2024, 4, 1), D(2024, 5, 9), PARIS, "x") == 0
    assert warehouse.exported_days("events") == own


def test_d20_adopt_legacy_days_in_utc_uses_utc_days(warehouse: Warehouse) -> None:
    warehouse.create_table(EVENTS)
    fill_without_ledger(warehouse, EVENTS, [paris(2024, 5, 2, 0, 30), paris(2024, 5, 2, 23, 30)])
    assert warehouse.adopt_legacy_days(EVENTS, D(2024, 5, 1), D(2024, 5, 2), UTC, "a") == 2
    assert {d: e.rows for d, e in warehouse.exported_days("events").items()} == {
        D(2024, 5, 1): 1,
        D(2024, 5, 2): 1,
    }


def test_d20_adopt_legacy_days_of_a_date_table(warehouse: Warehouse) -> None:
    warehouse.create_table(DAILY)
    fill_without_ledger(
        warehouse, DAILY, [D(2023, 12, 30), D(2023, 12, 31), D(2023, 12, 31), D(2024, 1, 1)]
    )
    assert warehouse.adopt_legacy_days(DAILY, D(2023, 12, 29), D(2023, 12, 31), PARIS, "a") == 2
    assert ledger_of(warehouse, "daily_totals") == {
        D(2023, 12, 30): (1, LEGACY_FINGERPRINT, "a"),
        D(2023, 12, 31): (2, LEGACY_FINGERPRINT, "a"),
    }
    assert warehouse.exported_days("events") == {}


# -- the code base ---------------------------------------------------------------------------


def test_no_code_uses_streaming_inserts() -> None:
    """Streaming inserts are billed, refused on the free tier and duplicate on retry.

    Every attribute, name and string of the package is inspected (so ``getattr(client,
    "insert_rows")`` is caught too); prose in comments may still mention them.
    """
    forbidden = {"insert_rows", "insert_rows_json", "insert_rows_from_dataframe", "insertAll"}
    root = Path(__file__).resolve().parent.parent / "smolqwery"
    files = sorted(root.rglob("*.py"))
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            found = (
                (isinstance(node, ast.Attribute) and node.attr in forbidden)
                or (isinstance(node, ast.Name) and node.id in forbidden)
                or (isinstance(node, ast.Constant) and node.value in forbidden)
                or (isinstance(node, ast.alias) and node.name in forbidden)
            )
            if found:
                offenders.append(f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', '?')}")
    assert len(files) > 10
    assert offenders == []
    # The check itself finds a call written the usual way.
    sample = ast.parse("client.insert_rows_json(table, rows)")
    assert any(isinstance(n, ast.Attribute) and n.attr in forbidden for n in ast.walk(sample))
