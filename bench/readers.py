"""Which library reads a day fastest into Arrow? The measurement behind smolqwery's choice
(issue 16; figures in bench/RESULTS.md). Run with the peers' interpreter, after ``bench/run``
has left a source database (or point it at one of yours with the same ``bench_event`` table):

    $(bench/peers-venv) -m bench.readers adbc_pg|cx_pg|copy_pg|adbc_sqlite|dbapi_sqlite|cx_sqlite

Each reads the last ``BENCH_DAYS`` (30) local days, one query per day, and prints rows, wall and
CPU seconds and peak RSS. ``copy_pg`` only receives psycopg's binary COPY bytes (no Arrow yet);
connectorx and COPY take no query parameters, so their day bounds are written into the SQL
text here, which smolqwery never does.
"""

from __future__ import annotations

import datetime
import os
import resource
import sys
import time
from zoneinfo import ZoneInfo

COLS = '"timestamp", "user_id", "kind", "duration", "success", "country"'
UTC = datetime.timezone.utc


def windows() -> list[tuple[datetime.datetime, datetime.datetime]]:
    tz = ZoneInfo(os.environ.get("BENCH_TIME_ZONE", "Europe/Paris"))
    last = datetime.datetime.now(tz).date() - datetime.timedelta(days=1)
    days = int(os.environ.get("BENCH_DAYS", "30"))
    out = []
    for i in range(days):
        day = last - datetime.timedelta(days=days - 1 - i)
        start = datetime.datetime.combine(day, datetime.time(), tz)
        end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tz)
        out.append((start, end))
    return out


def text(moment: datetime.datetime) -> str:
    """Django's SQLite form of an aware datetime: naive UTC text."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def main(which: str) -> None:
    import pyarrow as pa

    pg = "postgresql://postgres@127.0.0.1:5432/" + os.environ.get(
        "BENCH_PG_NAME", "smolqwery_bench"
    )
    lite = os.environ.get("BENCH_SQLITE_PATH", "/tmp/smolqwery-bench.sqlite3")
    where = 'WHERE "timestamp" >= {} AND "timestamp" < {}'
    rows = 0
    started = time.perf_counter(), time.process_time()
    if which == "adbc_pg":
        import adbc_driver_postgresql.dbapi

        cursor = adbc_driver_postgresql.dbapi.connect(pg).cursor()
        for start, end in windows():
            cursor.execute(
                f"SELECT {COLS} FROM bench_event {where.format('$1', '$2')}", (start, end)
            )
            rows += sum(b.num_rows for b in cursor.fetch_record_batch())
    elif which == "cx_pg":
        import connectorx

        for start, end in windows():
            sql = f"SELECT {COLS} FROM bench_event " + where.format(
                f"'{start.isoformat()}'", f"'{end.isoformat()}'"
            )
            rows += connectorx.read_sql(pg, sql, return_type="arrow").num_rows
    elif which == "copy_pg":
        import psycopg
        from psycopg import sql as psql

        with psycopg.connect(pg) as con, con.cursor() as cursor:
            for start, end in windows():
                query = psql.SQL(
                    f"COPY (SELECT {COLS} FROM bench_event {where}) TO STDOUT (FORMAT BINARY)"
                ).format(start, end)
                with cursor.copy(query) as copy:
                    for block in copy:
                        rows += len(block)  # bytes, not rows: nothing parsed
    elif which == "adbc_sqlite":
        import adbc_driver_sqlite.dbapi

        cursor = adbc_driver_sqlite.dbapi.connect(lite).cursor()
        for start, end in windows():
            cursor.execute(
                f"SELECT {COLS} FROM bench_event {where.format('?', '?')}", (text(start), text(end))
            )
            rows += sum(b.num_rows for b in cursor.fetch_record_batch())
    elif which == "dbapi_sqlite":
        import sqlite3

        con = sqlite3.connect(lite)
        for start, end in windows():
            cur = con.execute(
                f"SELECT {COLS} FROM bench_event {where.format('?', '?')}", (text(start), text(end))
            )
            while chunk := cur.fetchmany(20_000):
                [pa.array([r[i] for r in chunk]) for i in range(6)]
                rows += len(chunk)
    elif which == "cx_sqlite":
        import connectorx

        for start, end in windows():
            sql = f"SELECT {COLS} FROM bench_event " + where.format(
                f"'{text(start)}'", f"'{text(end)}'"
            )
            rows += connectorx.read_sql(f"sqlite://{lite}", sql, return_type="arrow").num_rows
    else:
        raise SystemExit(f"unknown reader {which!r}")
    wall = time.perf_counter() - started[0]
    cpu = time.process_time() - started[1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"{which}: {rows:,} {'bytes' if which == 'copy_pg' else 'rows'}, wall {wall:.2f} s, "
        f"CPU {cpu:.2f} s, peak RSS {rss} MB"
    )


if __name__ == "__main__":
    main(sys.argv[1])
