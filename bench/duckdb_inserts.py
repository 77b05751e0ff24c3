"""How fast DuckDB takes Arrow rows by size of insert (issue 16, bench/RESULTS.md).

``python -m bench.duckdb_inserts MODE [ROWS_PER_INSERT] [THREADS]``: 10M rows of the bench's
columns (random, generated in Arrow up front) inserted into a fresh DuckDB file in one
transaction, with the days filter smolqwery's inserts carry, by

* ``chunks``: one ``INSERT … SELECT`` per ROWS_PER_INSERT rows (a table of one piece);
* ``groups``: the same from 20,000-row batches gathered into tables of ROWS_PER_INSERT rows,
  not combined (a table of many small chunks);
* ``stream``: one ``INSERT`` reading every 20,000-row batch from a stream.

Prints wall and CPU seconds. THREADS sets DuckDB's ``threads`` (default: DuckDB's).
"""

from __future__ import annotations

import datetime
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

ROWS = 10_000_000
BATCH = 20_000
START = datetime.datetime(2026, 10, 31, tzinfo=datetime.timezone.utc)
FILTER = "WHERE (timestamp >= $1 AND timestamp < $2) IS NOT FALSE"


def _integers(scale: float) -> pa.Array:
    return pc.cast(pc.floor(pc.multiply(pc.random(ROWS), scale)), pa.int64())


def _rows() -> pa.Table:
    micros = pc.add(
        pc.multiply(pa.array(range(ROWS), pa.int64()), 259), int(START.timestamp() * 1e6)
    )
    kinds = pa.array(["page_view", "click", "signup", "login", "logout", "purchase", "search"])
    return pa.table(
        {
            "timestamp": micros.cast(pa.timestamp("us", tz="UTC")),
            "user_id": _integers(1e6),
            "kind": pc.take(kinds, _integers(6.99)),
            "duration": pc.random(ROWS),
            "success": pc.greater(pc.random(ROWS), 0.5),
            "country": pc.take(pa.array(["FR", "DE", "US", "GB"]), _integers(3.99)),
        }
    )


def main(argv: list[str]) -> None:
    mode = argv[0]
    size = int(argv[1]) if len(argv) > 1 else BATCH
    rows = _rows()
    bounds = [START - datetime.timedelta(days=1), START + datetime.timedelta(days=60)]
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "inserts.duckdb"))
        if len(argv) > 2:
            con.execute("SET threads = ?", [int(argv[2])])
        con.execute(
            "CREATE TABLE t (timestamp TIMESTAMPTZ NOT NULL, user_id BIGINT, kind VARCHAR, "
            "duration DOUBLE, success BOOLEAN, country VARCHAR)"
        )
        started, cpu = time.perf_counter(), time.process_time()
        con.execute("BEGIN")
        if mode == "stream":
            stream = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(BATCH))
            con.register("staged", stream)
            con.execute(f"INSERT INTO t SELECT * FROM staged {FILTER}", bounds)
        else:
            batches = rows.to_batches(BATCH if mode == "groups" else size)
            per_insert = max(1, size // BATCH) if mode == "groups" else 1
            for first in range(0, len(batches), per_insert):
                con.register("staged", pa.Table.from_batches(batches[first : first + per_insert]))
                con.execute(f"INSERT INTO t SELECT * FROM staged {FILTER}", bounds)
                con.unregister("staged")
        con.execute("COMMIT")
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        row = con.execute("SELECT count(*) FROM t").fetchone()
        con.close()
    print(f"{mode} {size:,} rows an insert: {wall:.2f} s wall, {used:.2f} s CPU, {row[0]:,} rows")


if __name__ == "__main__":
    main(sys.argv[1:])
