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
from pathlib import Path
from zoneinfo import ZoneInfo

CHUNK_ROWS = 20_000
DAYS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
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
    step = (windows[-1].end - windows[0].start) / args.rows
    schema = arrow_schema(table)
    chunks = [
        pa.RecordBatch.from_pylist(
            [
                {
                    "timestamp": windows[0].start + step * (start + i),
                    "user_id": start + i,
                    "kind": "click",
                    "amount": decimal.Decimal("1.5"),
                    "duration": 0.5,
                    "ok": True,
                }
                for i in range(min(CHUNK_ROWS, args.rows - start))
            ],
            schema=schema,
        )
        for start in range(0, args.rows, CHUNK_ROWS)
    ]
    best: tuple[float, float] | None = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as directory:
            warehouse = DuckDBWarehouse(Path(directory) / "bench.duckdb", "bench")
            warehouse.ensure_dataset()
            warehouse.create_table(table)
            cpu, wall = time.process_time(), time.perf_counter()
            warehouse.replace_days(
                DayBatch(table=table, windows=windows, chunks=iter(chunks), run_id="bench")
            )
            run = (time.perf_counter() - wall, time.process_time() - cpu)
        best = run if best is None or run[1] < best[1] else best
    assert best is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows={args.rows} wall={best[0]:.2f}s cpu={best[1]:.2f}s peak_rss={peak:.0f}MB")


if __name__ == "__main__":
    main()
