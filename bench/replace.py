"""``python -m bench.replace [--rows N] [--repeat R]``: DuckDB's ``replace_days`` alone.

One batch of 30 days of N event rows (TIMESTAMP, INT64, STRING, NUMERIC, FLOAT64, BOOL), made
into Arrow record batches of 20,000 rows before timing, replaced into a fresh DuckDB file; the
fastest of R runs by CPU seconds (this process, DuckDB's threads included), and the process's
peak RSS. Compares warehouse implementations: run it from two checkouts (issue 15: the shared
replace algorithm against the former DuckDB-only one). Figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

CHUNK_ROWS = 20_000
DAYS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit (default: smolqwery's); 'duckdb': DuckDB's own configuration "
        "(80%% of RAM, insertion order kept), as before issue 16",
    )
    args = parser.parse_args()

    import django
    from django.conf import settings

    settings.configure(USE_TZ=True, TIME_ZONE="Europe/Paris")
    django.setup()
    import pyarrow as pa

    from smolqwery.schema import Column, TableSchema
    from smolqwery.warehouses.base import DayBatch, DayWindow
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    try:  # where they live since issue 15; before, the same names in other modules
        from smolqwery.schema import arrow_schema
        from smolqwery.vocabulary import ExtractorType
    except ImportError:
        from smolqwery.extractor import ExtractorType  # type: ignore[no-redef]
        from smolqwery.rows import arrow_schema  # type: ignore[no-redef,attr-defined]

    table = TableSchema(
        name="events",
        columns=(
            Column("timestamp", "TIMESTAMP", "REQUIRED"),
            Column("user_id", "INT64", "REQUIRED"),
            Column("kind", "STRING", "NULLABLE"),
            Column("amount", "NUMERIC", "NULLABLE"),
            Column("duration", "FLOAT64", "NULLABLE"),
            Column("ok", "BOOL", "NULLABLE"),
        ),
        kind=ExtractorType.individual_rows,
        date_column="timestamp",
    )
    tz = ZoneInfo("Europe/Paris")
    first = datetime.date(2024, 5, 1)

    def midnight(day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time(), tz)

    windows = tuple(
        DayWindow(
            first + datetime.timedelta(days=i),
            midnight(first + datetime.timedelta(days=i)),
            midnight(first + datetime.timedelta(days=i + 1)),
        )
        for i in range(DAYS)
    )
    schema = arrow_schema(table)
    template = pa.RecordBatch.from_pylist(
        [
            {
                "timestamp": windows[0].start,
                "user_id": i,
                "kind": "click",
                "amount": decimal.Decimal("1.5"),
                "duration": 0.5,
                "ok": True,
            }
            for i in range(CHUNK_ROWS)
        ],
        schema=schema,
    )
    origin = int(windows[0].start.timestamp() * 1_000_000)
    step_us = int((windows[-1].end - windows[0].start).total_seconds() * 1_000_000) // args.rows

    def chunks() -> Iterator[pa.RecordBatch]:
        """Made while they are read (so the input never holds the whole batch, whose memory
        would hide the warehouse's): the template's columns, the timestamps spread evenly."""
        for start in range(0, args.rows, CHUNK_ROWS):
            size = min(CHUNK_ROWS, args.rows - start)
            stamps = pa.array(
                range(origin + start * step_us, origin + (start + size) * step_us, step_us),
                pa.int64(),
            ).cast(schema.field("timestamp").type)
            user_ids = pa.array(range(start, start + size), pa.int64())
            yield (
                template.slice(0, size)
                .set_column(0, "timestamp", stamps)
                .set_column(1, "user_id", user_ids)
            )

    best: tuple[float, float] | None = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as directory:
            warehouse = DuckDBWarehouse(Path(directory) / "bench.duckdb", "bench")
            if args.memory_limit == "duckdb":
                warehouse._config = dict  # type: ignore[method-assign]
            elif args.memory_limit is not None:
                warehouse.memory_limit = args.memory_limit
            warehouse.ensure_dataset()
            warehouse.create_table(table)
            cpu, wall = time.process_time(), time.perf_counter()
            warehouse.replace_days(
                DayBatch(table=table, windows=windows, chunks=chunks(), run_id="bench")
            )
            run = (time.perf_counter() - wall, time.process_time() - cpu)
        best = run if best is None or run[1] < best[1] else best
    assert best is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows={args.rows} wall={best[0]:.2f}s cpu={best[1]:.2f}s peak_rss={peak:.0f}MB")


if __name__ == "__main__":
    main()
