"""One benchmark step, run in a subprocess of its own: ``python -m bench.worker STEP ...``.

Each measurement runs alone in a fresh interpreter so that its peak RSS (read by the parent
through ``os.wait4``) is its own. The timed section excludes interpreter start-up, Django
set-up and table creation; the step prints one ``BENCH_RESULT {json}`` line on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "
#: Rows per ``insert_rows_json`` request, as smolqwery 0.1.3 sent them.
LEGACY_CHUNK = 1000

KINDS = ("page_view", "click", "signup", "login", "logout", "purchase", "search", "share")
COUNTRIES = ("FR", "DE", "US", "GB", "ES", "IT", "NL", "BE", None)


def emit(**fields: Any) -> None:
    print(RESULT_PREFIX + json.dumps(fields, default=str), flush=True)


def clock() -> tuple[float, float]:
    """Start a timed section."""
    return time.perf_counter(), time.process_time()


def since(mark: tuple[float, float]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process (all its threads), since ``mark``.

    CPU time is reported next to wall time because this machine is shared: it is the steadier
    figure for (1) and (2), which do all their work in this process.
    """
    return time.perf_counter() - mark[0], time.process_time() - mark[1]


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def windows(first: datetime.date, last: datetime.date) -> list[Any]:
    """The local day windows smolqwery itself uses, so every step reads the same rows."""
    from django.utils import timezone

    from smolqwery.days import day_window

    tz = timezone.get_current_timezone()
    days = (last - first).days + 1
    return [day_window(first + datetime.timedelta(days=i), tz) for i in range(days)]


# -- data -----------------------------------------------------------------------------------


def _day_rows(rng: random.Random, window: Any, count: int) -> Iterator[tuple[Any, ...]]:
    """``count`` events of one day, in time order (an event log is appended chronologically)."""
    start = window.start.astimezone(datetime.timezone.utc)
    span = int((window.end - window.start).total_seconds() * 1_000_000)
    offsets = sorted(rng.randrange(span) for _ in range(count))
    step = datetime.timedelta(microseconds=1)
    for offset in offsets:
        yield (
            start + offset * step,
            rng.randrange(1, 50_000),
            rng.choice(KINDS),
            round(rng.random() * 120, 3),
            rng.random() < 0.95,
            rng.choice(COUNTRIES),
        )


def step_prepare(args: argparse.Namespace) -> None:
    """Create the source table (empty) and fill it with ``--rows`` events over the days."""
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from .models import Event

    call_command("migrate", run_syncdb=True, verbosity=0)
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
    wins = windows(args.first, args.last)
    per_day, extra = divmod(args.rows, len(wins))
    rng = random.Random(args.seed)
    cols = [quote(c) for c in ("timestamp", "user_id", "kind", "duration", "success", "country")]
    started = clock()
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "postgresql":
        with raw.cursor() as cur:
            copy_sql = f"COPY {table} ({', '.join(cols)}) FROM STDIN"
            with cur.copy(copy_sql) as copy:
                for i, window in enumerate(wins):
                    for row in _day_rows(rng, window, per_day + (i < extra)):
                        copy.write_row(row)
        raw.commit()
        raw.autocommit = True
        with raw.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {table}")
    else:
        raw.execute("PRAGMA synchronous = OFF")
        insert = f"INSERT INTO {table} ({', '.join(cols)}) VALUES (?, ?, ?, ?, ?, ?)"
        for i, window in enumerate(wins):
            rows = [
                # Django stores aware datetimes on SQLite as naive UTC text.
                (ts.replace(tzinfo=None).isoformat(" "), *rest)
                for ts, *rest in _day_rows(rng, window, per_day + (i < extra))
            ]
            raw.execute("BEGIN")
            raw.executemany(insert, rows)
            raw.execute("COMMIT")
        raw.execute("ANALYZE")
    seconds, cpu = since(started)
    emit(rows=Event.objects.count(), seconds=seconds, cpu=cpu)


# -- the measurements -----------------------------------------------------------------------


def step_floor(args: argparse.Namespace) -> None:
    """(1) The floor: the extractor's queryset iterated into tuples, nothing else."""
    setup_django()
    from .extractors import ITERATOR_CHUNK, day_queryset

    wins = windows(args.first, args.last)
    rows = 0
    started = clock()
    for window in wins:
        for _row in day_queryset(window.start, window.end).iterator(chunk_size=ITERATOR_CHUNK):
            rows += 1
    seconds, cpu = since(started)
    emit(rows=rows, seconds=seconds, cpu=cpu)


def _prepare_warehouse(extractor_paths: list[str]) -> Any:
    """Dataset and tables, created the way ``migrate`` would (outside the timed section)."""
    from smolqwery.models import WarehouseRecord
    from smolqwery.registry import load_extractor_class
    from smolqwery.warehouses import get_warehouse

    # Each measurement writes to a new warehouse on purpose: forget the previous one's place.
    WarehouseRecord.objects.all().delete()
    warehouse = get_warehouse()
    warehouse.ensure_dataset()
    for path in extractor_paths:
        warehouse.create_table(load_extractor_class(path)().get_schema())
    return warehouse


def bq_client() -> Any:
    """The real BigQuery client pointed at the emulator, as smolqwery's settings describe it."""
    from django.conf import settings
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=settings.SMOLQWERY_BIGQUERY_PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": settings.SMOLQWERY_BIGQUERY_API_ENDPOINT},
    )


def _count_rows(table: str) -> int:
    """Rows in an export table, read back from the warehouse (outside the timed section)."""
    from django.conf import settings

    from smolqwery.warehouses import get_warehouse

    warehouse = get_warehouse()
    try:
        name = warehouse.qualified_name(table)  # validated and quoted by the warehouse
    finally:
        warehouse.close()
    if settings.SMOLQWERY_WAREHOUSE == "duckdb":
        import duckdb

        con = duckdb.connect(settings.SMOLQWERY_DUCKDB_PATH, read_only=True)
        try:
            row = con.execute(f"SELECT count(*) FROM {name}").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0
    job = bq_client().query(f"SELECT count(*) FROM {name}")
    return int(next(iter(job.result()))[0])


def _load_jobs(client: Any) -> set[str]:
    return {job.job_id for job in client.list_jobs(all_users=True) if job.job_type == "load"}


def _time_loads() -> list[float]:
    """Measure the emulator's own share: every HTTP round trip to it (API calls, the Parquet
    upload, waiting for the load and query jobs), summed into the returned one-item list. The
    benchmark's instrument around google-auth's session, not smolqwery's code."""
    from google.auth.transport.requests import AuthorizedSession

    spent = [0.0]
    request = AuthorizedSession.request

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return request(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - begun

    AuthorizedSession.request = timed  # type: ignore[method-assign]
    return spent


def step_extract(args: argparse.Namespace) -> None:
    """(2)/(3) ``manage.py smolqwery_extract`` into the configured warehouse."""
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from smolqwery.registry import load_extractor_class

    path = args.extractor
    warehouse = _prepare_warehouse([path])
    warehouse.close()
    table = load_extractor_class(path)().get_table_name()
    bigquery = settings.SMOLQWERY_WAREHOUSE == "bigquery"
    jobs_before = _load_jobs(bq_client()) if bigquery else set()
    loading = _time_loads() if bigquery else [0.0]
    started = clock()
    call_command(
        "smolqwery_extract",
        "--extractor",
        path,
        "--from",
        args.first.isoformat(),
        "--to",
        args.last.isoformat(),
        "--no-progress",
        verbosity=0,
    )
    seconds, cpu = since(started)
    written = _count_rows(table)
    load_jobs = len(_load_jobs(bq_client()) - jobs_before) if bigquery else None
    emit(
        rows=written,
        seconds=seconds,
        cpu=cpu,
        load_jobs=load_jobs,
        load_seconds=loading[0],
        days=(args.last - args.first).days + 1,
    )


def step_direct(args: argparse.Namespace) -> None:
    """The library path without the command: RowConverter into ``replace_days`` (profiling)."""
    setup_django()
    from smolqwery.registry import load_extractor_class
    from smolqwery.rows import RowConverter
    from smolqwery.warehouses.base import DayBatch

    path = args.extractor
    warehouse = _prepare_warehouse([path])
    extractor = load_extractor_class(path)()
    table = extractor.get_schema()
    wins = tuple(windows(args.first, args.last))
    started = clock()
    converter = RowConverter(extractor, table)
    counts: dict[datetime.date, int] = {}
    batch = DayBatch(
        table=table,
        windows=wins,
        chunks=converter.record_batches(wins, counts),
        run_id="bench",
        row_counts=counts,
    )
    warehouse.replace_days(batch)
    seconds, cpu = since(started)
    warehouse.close()
    written = _count_rows(table.name)
    emit(rows=written, seconds=seconds, cpu=cpu)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def step_legacy(args: argparse.Namespace) -> None:
    """(4) smolqwery 0.1.3's write method: ``insert_rows_json`` in 1,000-row requests.

    The baseline only: smolqwery itself never streams rows (streaming inserts are billed,
    not atomic, and much slower; see defects D5 and D20). The same extractor produces the rows.
    """
    setup_django()
    from django.conf import settings
    from google.cloud import bigquery

    from smolqwery.registry import load_extractor_class

    extractor = load_extractor_class(args.extractor)()
    schema = extractor.get_schema()
    client = bq_client()
    dataset = client.create_dataset(settings.SMOLQWERY_DATASET, exists_ok=True)
    table_ref = f"{client.project}.{dataset.dataset_id}.{schema.name}"
    client.create_table(
        bigquery.Table(
            table_ref,
            schema=[bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in schema.columns],
        ),
        exists_ok=True,
    )
    names = [f.name for f in dataclasses.fields(extractor.get_dataclass())]
    wins = windows(args.first, args.last)
    rows = 0
    errors = 0
    started = clock()
    for window in wins:
        chunk: list[dict[str, Any]] = []
        for item in extractor.extract(window.start, window.end):
            chunk.append({n: _json_value(getattr(item, n)) for n in names})
            if len(chunk) >= LEGACY_CHUNK:
                errors += len(client.insert_rows_json(table_ref, chunk))
                rows += len(chunk)
                chunk = []
        if chunk:
            errors += len(client.insert_rows_json(table_ref, chunk))
            rows += len(chunk)
    seconds, cpu = since(started)
    emit(rows=_count_rows(schema.name), sent=rows, errors=errors, seconds=seconds, cpu=cpu)


def step_adbc_reference(args: argparse.Namespace) -> None:
    """The near-limit reference (issue 16): ADBC -> Arrow -> DuckDB table, day by day, with the
    same parameterised query and nothing else (no validation, no ledger, no Django)."""
    setup_django()
    import duckdb
    from django.db import connection

    from smolqwery.arrow_source import _adbc_connect, _adbc_params

    from .extractors import EVENT_COLUMNS

    wins = windows(args.first, args.last)
    out = os.environ["BENCH_DUCKDB_PATH"]
    cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
    mark = "$1" if connection.vendor == "postgresql" else "?"
    mark2 = "$2" if connection.vendor == "postgresql" else "?"
    sql = f'SELECT {cols} FROM bench_event WHERE "timestamp" >= {mark} AND "timestamp" < {mark2}'
    bounds = []
    for window in wins:
        # The parameters Django itself would send (SQLite: naive UTC text).
        start = connection.ops.adapt_datetimefield_value(window.start)
        end = connection.ops.adapt_datetimefield_value(window.end)
        bounds.append(_adbc_params((start, end)))
    started = clock()
    source = _adbc_connect(connection)
    con = duckdb.connect(out)
    cursor = source.cursor()
    created = False
    for params in bounds:
        cursor.execute(sql, params)
        reader = cursor.fetch_record_batch()  # noqa: F841 - read by DuckDB's replacement scan
        if created:
            con.execute("INSERT INTO events SELECT * FROM reader")
        else:
            con.execute("CREATE TABLE events AS SELECT * FROM reader")
            created = True
    cursor.close()
    source.close()
    seconds, cpu = since(started)
    row = con.execute("SELECT count(*) FROM events").fetchone()
    con.close()
    emit(rows=int(row[0]) if row else 0, seconds=seconds, cpu=cpu)


STEPS = {
    "adbc": step_adbc_reference,
    "prepare": step_prepare,
    "floor": step_floor,
    "extract": step_extract,
    "direct": step_direct,
    "legacy": step_legacy,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--first", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--last", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--extractor", default="bench.extractors.BenchEventExtractor")
    args = parser.parse_args(argv)
    STEPS[args.step](args)


if __name__ == "__main__":
    main(sys.argv[1:])
