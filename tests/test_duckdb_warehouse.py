"""What only the DuckDB warehouse does: its file, its types, and another process holding it."""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolqwery.errors import WarehouseError
from smolqwery.extractor import ExtractorType
from smolqwery.schema import Column, TableSchema
from smolqwery.warehouses.duckdb import DuckDBWarehouse, string_literal
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.warehouses import PARIS, make_batch, record_batches

TABLE = TableSchema(
    name="events",
    columns=(
        Column("timestamp", "TIMESTAMP", "REQUIRED", "When"),
        Column("amount", "NUMERIC", "NULLABLE", "How much"),
    ),
    kind=ExtractorType.individual_rows,
    date_column="timestamp",
    description="Events",
)

HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process opening the file for writing for a while."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_column_types_in_the_file_are_duckdb_native(duckdb_warehouse: DuckDBWarehouse) -> None:
    duckdb_warehouse.create_table(TABLE)
    con = duckdb.connect(str(duckdb_warehouse.path), read_only=True)
    try:
        rows = con.execute(
            "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE schema_name = 'smolqwery_tests' AND table_name = 'events' ORDER BY column_index"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        ("timestamp", "TIMESTAMP WITH TIME ZONE", False),
        ("amount", "DECIMAL(38,9)", True),
    ]


def test_file_is_not_held_between_operations(duckdb_warehouse: DuckDBWarehouse) -> None:
    duckdb_warehouse.create_table(TABLE)
    # Another process can open the file for writing right after an operation returned.
    proc = subprocess.run(
        [sys.executable, "-c", HOLDER, str(duckdb_warehouse.path), "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_waits_for_another_process_then_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", "ds", busy_timeout=60)
    wh.ensure_dataset()
    # Held 5 s: the backoff's attempts (jitter included) fail past the 2 s notice at least once.
    holder = _hold(wh.path, 5)
    try:
        wh.create_table(TABLE)  # blocks until the holder lets go
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0
    assert wh.get_table_columns("events") is not None
    # A wait past 2 s is never silent: one warning (shown even where logging is not
    # configured) naming the holder's PID, so that whoever waits can find it.
    waits = [r for r in caplog.records if "held by another process" in r.getMessage()]
    assert [r.levelname for r in waits] == ["WARNING"], caplog.text
    assert f"(PID {holder.pid}: " in waits[0].getMessage()


def test_gives_up_with_a_clear_error_after_its_deadline(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", "ds", busy_timeout=0.5)
    wh.ensure_dataset()
    holder = _hold(wh.path, 30)
    try:
        with pytest.raises(WarehouseError, match="held by another process") as info:
            wh.create_table(TABLE)
    finally:
        holder.kill()
        holder.wait()
    assert "create table events" in str(info.value)
    assert str(wh.path) in str(info.value)


def test_a_directory_that_cannot_be_made_is_a_setting_to_fix(tmp_path: Path) -> None:
    """Not an OSError's traceback out of ``migrate``: the message names the setting."""
    (tmp_path / "a-file").write_text("")
    wh = DuckDBWarehouse(tmp_path / "a-file" / "w.duckdb", "ds")
    with pytest.raises(WarehouseError, match="set SMOLQWERY_DUCKDB_PATH") as info:
        wh.ensure_dataset()
    assert f"cannot create the directory {tmp_path / 'a-file'}" in str(info.value)


def test_default_path_from_settings(settings: object, tmp_path: Path) -> None:
    from smolqwery.settings import get_settings

    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "sub" / "x.duckdb")  # type: ignore[attr-defined]
    wh = DuckDBWarehouse.from_settings(get_settings())
    assert wh.path == tmp_path / "sub" / "x.duckdb"
    assert wh.dataset == "smolqwery_tests"
    wh.ensure_dataset()  # creates the missing directory too
    assert wh.path.is_file()
    assert wh.memory_limit is None  # DuckDB's own default


def test_memory_limit_from_settings(settings: object, tmp_path: Path) -> None:
    from smolqwery.settings import get_settings

    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "x.duckdb")  # type: ignore[attr-defined]
    settings.SMOLQWERY_DUCKDB_MEMORY_LIMIT = " 200MiB "  # type: ignore[attr-defined]
    wh = DuckDBWarehouse.from_settings(get_settings())
    with wh._connect("test") as con:
        row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None and row[0] in ("200.0 MiB", "209.7 MB", "200 MiB")


@pytest.mark.parametrize(
    "text", ["", "plain", "it's", "'; DROP TABLE x; --", "back\\slash", "é ☃ \n newline"]
)
def test_string_literal_round_trips_through_duckdb(text: str) -> None:
    con = duckdb.connect(":memory:")
    try:
        assert con.execute(f"SELECT {string_literal(text)}").fetchone() == (text,)
    finally:
        con.close()


def test_string_literal_refuses_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        string_literal("a\x00b")


def test_ledger_survives_reopening_the_file(duckdb_warehouse: DuckDBWarehouse) -> None:
    duckdb_warehouse.create_table(TABLE)
    day = datetime.date(2024, 5, 1)
    duckdb_warehouse.replace_days(make_batch(TABLE, day, run_id="r1"))
    again = DuckDBWarehouse(duckdb_warehouse.path, duckdb_warehouse.dataset)
    assert list(again.exported_days("events")) == [day]


DAILY = TableSchema(
    name="user",
    columns=(Column("date", "DATE", "REQUIRED"), Column("users", "INT64", differentiate=True)),
    kind=ExtractorType.date_aggregated,
    date_column="date",
)


@pytest.mark.parametrize(
    ("filename", "dataset"),
    [
        ("smolqwery.duckdb", "smolqwery"),  # the defaults (issue 14)
        ("analytics.duckdb", "analytics"),
        ("main.duckdb", "main"),  # DuckDB names that catalog main_db
        ('we"ird.duckdb', "we"),
    ],
)
def test_a_schema_named_like_the_file_is_not_ambiguous(
    tmp_path: Path, filename: str, dataset: str
) -> None:
    from smolqwery.operations import create_view

    wh = DuckDBWarehouse(tmp_path / filename, dataset, busy_timeout=10)
    wh.ensure_dataset()
    wh.create_table(DAILY)
    wh.create_table(TABLE)
    create_view(wh, "user_delta", "delta", DAILY)
    day = datetime.date(2024, 5, 1)
    wh.replace_days(make_batch(DAILY, day, rows=[{"date": day, "users": 3}]))
    assert fetch_rows(wh, "user_delta") == [{"date": day, "users": 3}]
    assert wh.get_table_columns("user") is not None
    assert wh.table_description("user_delta") is not None
    assert set(wh.list_tables()) >= {"user", "user_delta", "events"}
    assert list(wh.exported_days("user")) == [day]
    assert wh.legacy_days(DAILY, datetime.timezone.utc, day, day) == [day]
    assert wh.qualified_name("user").endswith(f'"{dataset}"."user"')
    wh.drop_table("events")
    assert "events" not in wh.list_tables()
    wh.close()


def test_views_survive_a_renamed_file(duckdb_warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    """View SQL names tables relative to the view's schema: a copy under any name works."""
    import shutil

    from smolqwery.operations import create_view

    duckdb_warehouse.create_table(DAILY)
    create_view(duckdb_warehouse, "user_delta", "delta", DAILY)
    day = datetime.date(2024, 5, 1)
    duckdb_warehouse.replace_days(make_batch(DAILY, day, rows=[{"date": day, "users": 3}]))
    copy = shutil.copy(duckdb_warehouse.path, tmp_path / "backup.duckdb")
    moved = DuckDBWarehouse(copy, duckdb_warehouse.dataset)
    assert moved.catalog == "backup"
    assert fetch_rows(moved, "user_delta") == [{"date": day, "users": 3}]


def test_rows_are_produced_in_the_calling_thread(duckdb_warehouse: DuckDBWarehouse) -> None:
    """extract() uses Django's per-thread connections: DuckDB must never pull the rows from a
    worker thread (DuckDB before 2.0 does so for an Arrow stream, issue 14)."""
    import threading

    from .fixtures.warehouses import record_batches

    day = datetime.date(2024, 5, 1)
    rows = [{"date": day, "users": n} for n in (1,)]
    threads: set[int] = set()

    def chunks():  # type: ignore[no-untyped-def]
        for chunk in record_batches(DAILY, rows):
            threads.add(threading.get_ident())
            yield chunk

    duckdb_warehouse.create_table(DAILY)
    duckdb_warehouse.replace_days(make_batch(DAILY, day, rows=rows, chunks=chunks()))
    assert threads == {threading.get_ident()}
    assert fetch_rows(duckdb_warehouse, "user") == rows


def test_a_batch_keeps_no_chunk_alive_once_read(duckdb_warehouse: DuckDBWarehouse) -> None:
    """Memory is bounded by one insert's rows, whatever the batch's size (issue 16): DuckDB
    keeps objects registered in a transaction until it ends, so each group of chunks must not
    be registered."""
    import pyarrow as pa

    from smolqwery.schema import arrow_schema
    from smolqwery.warehouses.duckdb import _INSERT_ROWS, _rescans_streams

    if not _rescans_streams():
        pytest.skip("DuckDB before 1.5 registers each chunk (the batch stays in memory)")
    day = datetime.date(2024, 5, 1)
    noon = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)
    size, count = 20_000, 60  # 480 kB of Arrow buffers a chunk; 1.2M rows, ~5 inserts
    schema = arrow_schema(TABLE)
    allocated: list[int] = []

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(count):
            allocated.append(pa.total_allocated_bytes())
            stamps = pa.array([noon] * size, schema.field("timestamp").type)
            yield pa.record_batch([stamps, pa.nulls(size, schema.field("amount").type)], schema)

    duckdb_warehouse.create_table(TABLE)
    rows = [{"timestamp": noon}] * (size * count)
    duckdb_warehouse.replace_days(make_batch(TABLE, day, rows=rows, chunks=chunks()))
    assert duckdb_warehouse.exported_days("events")[day].rows == size * count
    assert max(allocated) - allocated[0] < (_INSERT_ROWS + 4 * size) * 24  # one insert's rows


def test_a_batch_keeps_no_written_block_cached(
    duckdb_warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's cache of the blocks a batch already wrote to the file stays bounded, whatever
    the batch's size (issue 16: it grew ~7 bytes a row, +70 MB from 1M to 10M rows); the rows
    all land."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from smolqwery.schema import arrow_schema
    from smolqwery.warehouses import duckdb as backend

    # An insert and a look after every chunk, and a small cache: the blocks of ~5 row groups
    # exceed it.
    monkeypatch.setattr(backend, "_INSERT_ROWS", 1)
    monkeypatch.setattr(backend, "_TRIM_EVERY_ROWS", 1)
    monkeypatch.setattr(backend, "_WRITTEN_CACHE_BYTES", 1 << 20)
    table = TableSchema(
        name="measures",
        columns=(
            Column("timestamp", "TIMESTAMP", "REQUIRED", "When"),
            Column("user_id", "INT64", "NULLABLE", "Who"),
            Column("kind", "STRING", "NULLABLE", "What"),
            Column("duration", "FLOAT64", "NULLABLE", "How long"),
            Column("score", "FLOAT64", "NULLABLE", "How well"),
        ),
        kind=ExtractorType.individual_rows,
        date_column="timestamp",
        description="Random values: blocks DuckDB cannot compress",
    )
    day = datetime.date(2024, 5, 1)
    noon = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)
    size, count = 20_000, 60
    schema = arrow_schema(table)
    cached: list[int] = []
    observer = duckdb.connect(str(duckdb_warehouse.path))  # the same database instance

    def chunks():  # type: ignore[no-untyped-def]
        stamps = pa.array([noon] * size, schema.field("timestamp").type)
        for _ in range(count):
            row = observer.execute(
                "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
                "WHERE tag = 'BASE_TABLE'"
            ).fetchone()
            cached.append(int(row[0]) if row else 0)
            noise = pc.random(size)
            users = pc.floor(pc.multiply(noise, 50_000)).cast(pa.int64())
            kinds = pc.take(pa.array(["view", "click", "login"]), pc.bit_wise_and(users, 1))
            yield pa.record_batch([stamps, users, kinds, pc.random(size), pc.random(size)], schema)

    duckdb_warehouse.create_table(table)
    try:
        batch = make_batch(table, day, chunks=chunks())
        batch.row_counts[day] = size * count
        duckdb_warehouse.replace_days(batch)
    finally:
        observer.close()
    assert duckdb_warehouse.exported_days("measures")[day].rows == size * count
    # Each chunk is pulled right after a look: the cache is within the bound (2 blocks a
    # column: 2.5 MiB here); it held 7-17 MiB without the looks.
    bound = 2 * len(table.columns) * backend._DUCKDB_BLOCK_BYTES
    assert max(cached) <= bound, [round(c / 2**20, 1) for c in cached]
    assert max(cached) > 0  # DuckDB did write blocks of the batch to the file


def _batch_rows(offsets: list[int]) -> list[dict[str, object]]:
    """Rows at ``offsets`` seconds from midnight of 2024-03-31 in Paris (a 23-hour day)."""
    start = datetime.datetime(2024, 3, 31, tzinfo=PARIS).astimezone(datetime.timezone.utc)
    return [{"timestamp": start + datetime.timedelta(seconds=s), "amount": None} for s in offsets]


@settings(max_examples=10, deadline=None)
@given(
    offsets=st.lists(
        # around both edges of the days 03-31..04-01: the last second before, the first after
        st.sampled_from([-1, 0, 1, 3600, 82799, 82800, 169199, 169200, 169201]),
        min_size=1,
        max_size=12,
    ),
    chunk_size=st.integers(1, 5),
)
def test_the_insert_refuses_a_batch_exactly_when_a_row_is_outside_its_days(
    tmp_path_factory: pytest.TempPathFactory, offsets: list[int], chunk_size: int
) -> None:
    """The days check folded into the insert (issue 16): a row outside the batch's days, in
    any chunk, refuses the whole batch and changes nothing; otherwise every row is written."""
    global _FOLD_WAREHOUSE
    if _FOLD_WAREHOUSE is None:  # one file for all the examples (a new file costs ~0.2 s)
        path = tmp_path_factory.mktemp("fold") / "warehouse.duckdb"
        _FOLD_WAREHOUSE = DuckDBWarehouse(path, "smolqwery_tests", busy_timeout=10)
        _FOLD_WAREHOUSE.ensure_dataset()
    wh = _FOLD_WAREHOUSE
    wh.drop_table("events")
    wh.create_table(TABLE)
    earlier = _batch_rows([7200])
    wh.replace_days(make_batch(TABLE, datetime.date(2024, 3, 31), rows=earlier))
    ledger = wh.exported_days("events")
    rows = _batch_rows(offsets)
    # 03-31 is 23 hours long in Paris: 03-31 00:00 .. 04-02 00:00 is 0 .. 169200 seconds
    outside = any(not 0 <= s < 169200 for s in offsets)
    batch = make_batch(TABLE, datetime.date(2024, 3, 31), datetime.date(2024, 4, 1), run_id="r2")
    batch.chunks = record_batches(TABLE, rows, chunk_size)
    if outside:
        with pytest.raises(WarehouseError, match=r"\.\.2024-04-01 of events: some rows fall"):
            wh.replace_days(batch)
        assert [r["timestamp"] for r in fetch_rows(wh, "events")] == [
            r["timestamp"] for r in earlier
        ]
        assert wh.exported_days("events") == ledger
    else:
        wh.replace_days(batch)
        written = sorted(r["timestamp"] for r in fetch_rows(wh, "events"))
        assert written == sorted(r["timestamp"] for r in rows)


_FOLD_WAREHOUSE: DuckDBWarehouse | None = None


@pytest.mark.parametrize("outside", [False, True])
def test_inserts_of_gathered_chunks_run_on_one_thread_and_the_setting_comes_back(
    duckdb_warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch, outside: bool
) -> None:
    """Chunks are inserted in groups (here of 3 rows or more, from chunks of 2): every row
    lands once, or none when one row of a later group is outside the batch's days; DuckDB
    runs the replacement on one thread, and its ``threads`` setting is back afterwards, even
    after the failed transaction."""
    from smolqwery.warehouses import duckdb as backend

    monkeypatch.setattr(backend, "_INSERT_ROWS", 3)
    seen: list[int] = []
    observer = duckdb.connect(str(duckdb_warehouse.path))
    observer.execute("SET threads = 3")
    duckdb_warehouse.create_table(TABLE)
    day = datetime.date(2024, 3, 31)
    rows = _batch_rows([3600 * hour for hour in range(1, 10)])  # 01:00..09:00 in Paris
    if outside:
        rows[-1] = {**rows[-1], "timestamp": rows[-1]["timestamp"] + datetime.timedelta(days=1)}
    batch = make_batch(TABLE, day, rows=rows)
    chunks = record_batches(TABLE, rows, 2)

    def watched():  # type: ignore[no-untyped-def]
        for chunk in chunks:
            row = observer.execute("SELECT current_setting('threads')").fetchone()
            seen.append(int(row[0]) if row else 0)
            yield chunk

    batch.chunks = watched()
    try:
        if outside:
            with pytest.raises(WarehouseError, match="some rows fall"):
                duckdb_warehouse.replace_days(batch)
            assert fetch_rows(duckdb_warehouse, "events") == []
        else:
            duckdb_warehouse.replace_days(batch)
            written = sorted(r["timestamp"] for r in fetch_rows(duckdb_warehouse, "events"))
            assert written == sorted(r["timestamp"] for r in rows)
        assert seen and set(seen) == {1}
        assert observer.execute("SELECT current_setting('threads')").fetchone() == (3,)
    finally:
        observer.close()
