"""The admin's Metrics page: its queries agree with the views, its cache (on Redis) follows the
ledger, and the page and its CSV show what the warehouse holds.

The queries are checked against the ``_delta``, ``_week`` and ``_month`` views created the way
migrations create them, and against a brute-force computation in Python, over random days
(gaps included, around the spring DST change) and random ranges, on a real DuckDB file. One
test runs the same query on the BigQuery emulator.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smolqwery import BaseExtractor, sq_field
from smolqwery.extractor import ExtractorType
from smolqwery.metrics import (
    ChartSpec,
    Period,
    QuerySession,
    aligned_range,
    chart_query,
    charts_for,
    fetch_chart,
    period_start,
)
from smolqwery.metrics_views import build_page
from smolqwery.schema import Column, TableSchema
from smolqwery.sql_views import render_view_sql, view_name
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.fixtures.warehouses import PARIS, make_batch

D = datetime.date
REDIS_URL = "redis://127.0.0.1:6379/0"
METRICS = "/admin/smolqwery/exportrun/metrics/"

SHOP = TableSchema(
    name="shop",
    columns=(
        Column("date", "DATE", "REQUIRED"),
        Column("total", "INT64", "REQUIRED", differentiate=True),
        Column("orders", "INT64", "NULLABLE"),
        Column("label", "STRING", "NULLABLE"),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
    rollups=("week", "month"),
)
CLICKS = TableSchema(
    name="click",
    columns=(
        Column("timestamp", "TIMESTAMP", "REQUIRED"),
        Column("amount", "INT64", "NULLABLE"),
    ),
    kind=ExtractorType.individual_rows,
    date_column="timestamp",
)
SPAN_START = D(2026, 3, 2)  # a Monday; the span crosses the spring DST change (March 29)
SPAN_DAYS = 70


def load_days(wh: Warehouse, table: TableSchema, rows: list[dict[str, Any]]) -> None:
    """Rows of a date-aggregated table, one batch per run of consecutive days."""
    runs: list[list[dict[str, Any]]] = []
    for row in sorted(rows, key=lambda r: r["date"]):
        if runs and row["date"] - runs[-1][-1]["date"] == datetime.timedelta(days=1):
            runs[-1].append(row)
        else:
            runs.append([row])
    for run in runs:
        wh.replace_days(make_batch(table, run[0]["date"], run[-1]["date"], rows=run))


def make_views(wh: Warehouse, table: TableSchema) -> None:
    for kind in ("delta", "week", "month"):
        wh.create_or_replace_view(view_name(kind, table.name), render_view_sql(kind, table, wh))


def drawn(
    wh: Warehouse, spec: ChartSpec, period: Period, start: D, end: D
) -> list[tuple[Any, ...]]:
    with QuerySession(wh) as session:
        return drawn_in(session, spec, period, start, end)


def drawn_in(
    session: QuerySession, spec: ChartSpec, period: Period, start: D, end: D
) -> list[tuple[Any, ...]]:
    query = chart_query(spec, period, start, end, session.warehouse, PARIS)
    data = fetch_chart(session, query, spec, period)
    return [(label, *(v[i] for v in data.values)) for i, label in enumerate(data.labels)]


def view_rows(session: QuerySession, name: str) -> list[dict[str, Any]]:
    """Every row of a table or view, ordered by date (through the page's own connection)."""
    q = session.warehouse.ops.column
    source = session.warehouse.qualified_name(name)
    rows, _ = session.run(
        f"SELECT {q('date')}, {q('total')}, {q('orders')} FROM {source} ORDER BY {q('date')}"
    )
    return [dict(zip(("date", "total", "orders"), r, strict=True)) for r in rows]


def from_views(
    session: QuerySession, period: Period, start: D, end: D
) -> tuple[list[Any], list[Any]]:
    """The values chart and the delta chart as the views give them (delta summed per period)."""
    first, last = aligned_range(period, start, end)
    source = "shop" if period == "day" else f"shop_{period}"
    values = [
        (r["date"], r["total"], r["orders"])
        for r in view_rows(session, source)
        if first <= r["date"] <= last
    ]
    sums: dict[D, list[int]] = {}
    for r in view_rows(session, "shop_delta"):
        if first <= r["date"] <= last:
            found = sums.setdefault(period_start(period, r["date"]), [])
            if r["total"] is not None:
                found.append(r["total"])
    deltas = [(p, sum(v) if v else None) for p, v in sorted(sums.items())]
    return values, deltas


def brute_force_values(rows: list[dict[str, Any]], period: Period, start: D, end: D) -> list[Any]:
    """Values per period computed in Python: orders summed, total of the last day present."""
    first, last = aligned_range(period, start, end)
    periods: dict[D, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["date"]):
        if first <= row["date"] <= last:
            periods.setdefault(period_start(period, row["date"]), []).append(row)
    out = []
    for p, days in sorted(periods.items()):
        orders = [d["orders"] for d in days if d["orders"] is not None]
        out.append((p, days[-1]["total"], sum(orders) if orders else None))
    return out


@st.composite
def shop_days(draw: st.DrawFn) -> list[dict[str, Any]]:
    offsets = draw(st.sets(st.integers(0, SPAN_DAYS - 1), max_size=40))
    rows = []
    for offset in sorted(offsets):
        rows.append(
            {
                "date": SPAN_START + datetime.timedelta(days=offset),
                "total": draw(st.integers(0, 10_000)),
                "orders": draw(st.none() | st.integers(-5, 500)),
                "label": None,
            }
        )
    return rows


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    """One DuckDB file for every example: the table with its views, refilled by each."""
    path = tmp_path_factory.mktemp("metrics") / "w.duckdb"
    wh = DuckDBWarehouse(path, "metrics_tests", busy_timeout=10)
    wh.ensure_dataset()
    wh.create_table(SHOP)
    make_views(wh, SHOP)
    return wh


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=shop_days(),
    period=st.sampled_from(["day", "week", "month"]),
    start=st.integers(-10, SPAN_DAYS + 5),
    length=st.integers(0, SPAN_DAYS + 10),
)
def test_queries_agree_with_the_views_and_brute_force(
    shop_file: DuckDBWarehouse, rows: list[dict[str, Any]], period: Period, start: int, length: int
) -> None:
    first = SPAN_START + datetime.timedelta(days=start)
    last = first + datetime.timedelta(days=length)
    wh = shop_file
    # One batch over the whole span replaces every day: days without a row are gaps.
    last_day = SPAN_START + datetime.timedelta(days=SPAN_DAYS - 1)
    wh.replace_days(make_batch(SHOP, SPAN_START, last_day, rows=rows))
    values_chart, delta_chart = charts_for(SHOP)
    with QuerySession(wh) as session:
        values, deltas = from_views(session, period, first, last)
        assert drawn_in(session, values_chart, period, first, last) == values
        assert values == brute_force_values(rows, period, first, last)
        assert drawn_in(session, delta_chart, period, first, last) == deltas


def test_individual_rows_per_local_day_across_dst(duckdb_warehouse: DuckDBWarehouse) -> None:
    """Rows count in the day of ``TIME_ZONE`` they fall in, on the 23-hour day too."""
    wh = duckdb_warehouse
    wh.create_table(CLICKS)
    moments = [
        datetime.datetime(2026, 3, 28, 23, 59, tzinfo=PARIS),
        datetime.datetime(2026, 3, 29, 0, 0, tzinfo=PARIS),
        datetime.datetime(2026, 3, 29, 3, 30, tzinfo=PARIS),  # after the clocks jumped
        datetime.datetime(2026, 3, 29, 23, 59, tzinfo=PARIS),
        datetime.datetime(2026, 3, 30, 0, 0, tzinfo=PARIS),
        datetime.datetime(2026, 4, 1, 12, 0, tzinfo=PARIS),
    ]
    rows = [{"timestamp": m, "amount": i} for i, m in enumerate(moments)]
    wh.replace_days(make_batch(CLICKS, D(2026, 3, 28), D(2026, 4, 1), rows=rows))
    (spec,) = charts_for(CLICKS)
    assert [s.label for s in spec.series] == ["rows", "sum of amount"]
    assert drawn(wh, spec, "day", D(2026, 3, 27), D(2026, 4, 2)) == [
        # March 27 and April 2 were not exported: gaps, not zeros.
        (D(2026, 3, 28), 1, 0),
        (D(2026, 3, 29), 3, 1 + 2 + 3),
        (D(2026, 3, 30), 1, 4),
        (D(2026, 3, 31), 0, 0),  # exported, without rows: zero, not a gap
        (D(2026, 4, 1), 1, 5),
    ]
    # The range's edges are local midnights: 2026-03-29 alone has its three rows.
    assert drawn(wh, spec, "day", D(2026, 3, 29), D(2026, 3, 29)) == [(D(2026, 3, 29), 3, 6)]
    assert drawn(wh, spec, "week", D(2026, 3, 28), D(2026, 4, 1)) == [
        (D(2026, 3, 23), 4, 6),
        (D(2026, 3, 30), 2, 9),
    ]
    # A week exported without any row: zeros; the week after, never exported: no figure.
    wh.replace_days(make_batch(CLICKS, D(2026, 4, 6), D(2026, 4, 12), rows=[]))
    assert drawn(wh, spec, "week", D(2026, 4, 6), D(2026, 4, 19)) == [(D(2026, 4, 6), 0, 0)]


def test_query_text_holds_no_value_and_quotes_names(duckdb_warehouse: DuckDBWarehouse) -> None:
    spec = charts_for(SHOP)[1]
    query = chart_query(spec, "week", D(2026, 3, 4), D(2026, 3, 20), duckdb_warehouse, PARIS)
    assert "2026" not in query.sql
    assert '"total"' in query.sql and '"date"' in query.sql
    assert [v for _, v in query.params.values.values()] == [
        D(2026, 3, 1),
        D(2026, 3, 22),
        D(2026, 3, 2),
    ]


@pytest.mark.django_db
def test_same_figures_on_the_emulator(
    bigquery_warehouse: Warehouse, bigquery_emulator: Any, settings: Any
) -> None:
    """One values chart and one delta chart on BigQuery: the same figures as the views, and
    the bytes billed reported, by the query and on the page. A second view (warm cache) runs
    no job at all: the emulator's job list says so."""
    wh = bigquery_warehouse
    wh.create_table(SHOP)
    rows = [
        {
            "date": SPAN_START + datetime.timedelta(days=d),
            "total": 10 * d,
            "orders": d,
            "label": None,
        }
        for d in (0, 1, 2, 5, 6, 9)
    ]
    load_days(wh, SHOP, rows)
    make_views(wh, SHOP)
    values_chart, delta_chart = charts_for(SHOP)
    first, last = SPAN_START + datetime.timedelta(days=1), SPAN_START + datetime.timedelta(days=9)
    with QuerySession(wh) as session:
        for period in ("day", "week"):
            values, deltas = from_views(session, period, first, last)
            assert drawn_in(session, values_chart, period, first, last) == values
            assert drawn_in(session, delta_chart, period, first, last) == deltas
        query = chart_query(values_chart, "day", first, last, wh, PARIS)
        data = fetch_chart(session, query, values_chart, "day")
    assert data.bytes_billed is not None and data.bytes_billed >= 0

    # Individual rows: an exported day without rows is 0, a day not exported a gap.
    wh.create_table(CLICKS)
    moment = datetime.datetime(2026, 3, 29, 3, 30, tzinfo=PARIS)
    wh.replace_days(make_batch(CLICKS, D(2026, 3, 28), D(2026, 3, 29), rows=[
        {"timestamp": moment, "amount": 7}
    ]))  # fmt: skip
    (clicks,) = charts_for(CLICKS)
    assert drawn(wh, clicks, "day", D(2026, 3, 27), D(2026, 3, 30)) == [
        (D(2026, 3, 28), 0, 0),
        (D(2026, 3, 29), 1, 7),
    ]

    for name, value in bigquery_emulator.settings(wh.dataset).items():
        setattr(settings, name, value)
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.ShopExtractor"]  # the same table
    page = build_page("week", first, last)
    assert page.error == "" and page.queries == 1 + 2  # the ledger, then the charts
    assert all(c.data is not None and c.data.bytes_billed is not None for c in page.charts)
    assert page.charts[0].data is not None
    assert page.charts[0].data.values[1] == [v[2] for v in from_views_rows(wh, first, last)]
    assert page.bytes_billed >= sum(c.data.bytes_billed or 0 for c in page.charts if c.data)

    client = bigquery_emulator.client()

    def jobs() -> int:
        return sum(1 for job in client.list_jobs() if wh.dataset in str(getattr(job, "query", "")))

    before = jobs()
    assert before >= 1 + 2  # the jobs of the first view are listed
    warm = build_page("week", first, last)
    assert warm.error == "" and (warm.queries, warm.bytes_billed) == (0, 0)
    assert all(c.data is not None and c.data.cached for c in warm.charts)
    assert jobs() == before  # nothing billed: not even the ledger was read


def from_views_rows(wh: Warehouse, first: D, last: D) -> list[tuple[Any, ...]]:
    with QuerySession(wh) as session:
        values, _ = from_views(session, "week", first, last)
    return values


# -- the page -------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "locmem"])
def page_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[None]:
    """Django's own Redis cache backend on the machine's Redis, under a prefix of this test;
    then the local-memory cache (Django's default)."""
    if request.param == "locmem":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"smolqwery-test-{uuid.uuid4().hex}",
            }
        }
        yield
        return
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"smolqwery-test-{uuid.uuid4().hex}",
        }
    }
    from django.core.cache import cache

    try:
        cache.set("ping", 1)
    except Exception as exc:
        # A real part, never skipped: .ci/run starts Redis when it does not answer.
        pytest.fail(f"the Redis at {REDIS_URL} does not take writes: {exc}")
    yield
    # Only this test's keys: the machine's Redis may serve others.
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@dataclasses.dataclass
class Shop:
    total: int = sq_field(differentiate=True)
    orders: Optional[int] = None  # noqa: UP045 - the dataclass is read at run time
    label: Optional[str] = None  # noqa: UP045


@dataclasses.dataclass
class Click:
    timestamp: datetime.datetime
    amount: Optional[int] = None  # noqa: UP045


class ShopExtractor(BaseExtractor[Shop]):
    def get_dataclass(self) -> type[Shop]:
        return Shop

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_rollups(self) -> tuple[str, ...]:
        return ("week", "month")

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        yield from ()


class ClickExtractor(BaseExtractor[Click]):
    def get_dataclass(self) -> type[Click]:
        return Click

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        yield from ()


TODAY = datetime.datetime(2026, 5, 12, 9, 0, tzinfo=PARIS)


@pytest.fixture
def shop_warehouse(tmp_path: Path, settings: Any, page_cache: None) -> DuckDBWarehouse:
    """The two tables above in a DuckDB file, configured as the project's exports."""
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.SMOLQWERY_DATASET = "metrics_page"
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.ShopExtractor", f"{__name__}.ClickExtractor"]
    wh = DuckDBWarehouse(settings.SMOLQWERY_DUCKDB_PATH, "metrics_page", busy_timeout=10)
    wh.ensure_dataset()
    shop, click = ShopExtractor().get_schema(), ClickExtractor().get_schema()
    wh.create_table(shop)
    wh.create_table(click)
    days = [D(2026, 4, 1) + datetime.timedelta(days=i) for i in range(41)]  # to May 11
    load_days(
        wh,
        shop,
        [{"date": d, "total": 3 * i, "orders": i, "label": None} for i, d in enumerate(days)],
    )
    clicks = [
        {"timestamp": datetime.datetime.combine(d, datetime.time(12), PARIS), "amount": 2}
        for d in days[:-1]
    ]
    wh.replace_days(make_batch(click, days[0], days[-2], rows=clicks))
    wh.close()
    return wh


@contextlib.contextmanager
def exporting(
    shop_warehouse: DuckDBWarehouse, run_id: str, *, killed: bool = False
) -> Iterator[None]:
    """An export of May 10's shop row with the exporter's bookkeeping, in its order: its
    ``ExportRun`` created, (the block,) the batch committed, the run recorded finished; or,
    ``killed``, the process gone between the commit and the bookkeeping."""
    from smolqwery.models import ExportRun

    record = ExportRun.objects.create(
        run_id=run_id, extractor="ShopExtractor", table_name="shop", started_at=timezone.now()
    )
    yield
    wh = DuckDBWarehouse(shop_warehouse.path, "metrics_page", busy_timeout=10)
    shop = ShopExtractor().get_schema()
    row = {"date": D(2026, 5, 10), "total": 1, "orders": 1000, "label": None}
    wh.replace_days(make_batch(shop, D(2026, 5, 10), rows=[row], run_id=run_id))
    wh.close()
    if not killed:
        record.days, record.rows, record.status = 1, 1, ExportRun.Status.SUCCESS
        record.finished_at = timezone.now()
        record.save()


WEEKS = {"period": "week", "start": "2026-04-06", "end": "2026-05-10"}
#: The week of May 4 in orders: before and after the export of May 10.
BEFORE, AFTER = 33 + 34 + 35 + 36 + 37 + 38 + 39, 33 + 34 + 35 + 36 + 37 + 38 + 1000


def week_of_may_4(client: Client) -> tuple[int, Any]:
    """The queries a view ran, and the orders of its last week."""
    page = client.get(METRICS, WEEKS).context["page"]
    assert page.error == ""
    return page.queries, page.charts[0].data.values[1][-1]


@pytest.mark.django_db
def test_warm_views_read_nothing_and_a_killed_export_is_stale_a_bounded_time(
    shop_warehouse: DuckDBWarehouse, django_user_model: Any
) -> None:
    """A view with a warm cache runs no query, not even the ledger's (the project's database
    says nothing changed). An export killed after its commit, before its bookkeeping, leaves
    numbers read during it stale for at most ``LEDGER_UNSETTLED_SECONDS``; a write no run
    records, for at most ``LEDGER_SECONDS``."""
    from smolqwery.metrics_views import LEDGER_SECONDS, LEDGER_UNSETTLED_SECONDS

    with time_machine.travel(TODAY, tick=False) as clock:
        client = staff_client(django_user_model)
        assert week_of_may_4(client) == (4, BEFORE)
        assert week_of_may_4(client) == (0, BEFORE)
        # Not even opened: a warm view works while the file is away (or held by an export).
        away = shop_warehouse.path.rename(shop_warehouse.path.with_suffix(".away"))
        assert week_of_may_4(client) == (0, BEFORE)
        away.rename(shop_warehouse.path)
        clock.shift(LEDGER_SECONDS - 1)
        assert week_of_may_4(client) == (0, BEFORE)  # the runs did not change: no query

        with exporting(shop_warehouse, "run-killed", killed=True):
            # A run started: the ledger is read again (unchanged yet: the charts' cache).
            assert week_of_may_4(client) == (1, BEFORE)
        assert week_of_may_4(client) == (0, BEFORE)  # stale: trusted for a while
        clock.shift(LEDGER_UNSETTLED_SECONDS - 1)
        assert week_of_may_4(client) == (0, BEFORE)
        clock.shift(1)
        assert week_of_may_4(client) == (1 + 2, AFTER)
        assert week_of_may_4(client) == (0, AFTER)
        clock.shift(LEDGER_UNSETTLED_SECONDS)
        assert week_of_may_4(client) == (1, AFTER)  # unsettled: the ledger checked, unchanged

        # The next night's run: settled again, the warm view reads nothing.
        with exporting(shop_warehouse, "run-3"):
            pass
        assert week_of_may_4(client) == (1 + 2, AFTER)  # a new run id in the ledger
        assert week_of_may_4(client) == (0, AFTER)
        clock.shift(LEDGER_SECONDS - 1)
        assert week_of_may_4(client) == (0, AFTER)

        # A write no run records (by hand): seen within LEDGER_SECONDS.
        wh = DuckDBWarehouse(shop_warehouse.path, "metrics_page", busy_timeout=10)
        row = {"date": D(2026, 5, 10), "total": 1, "orders": 2000, "label": None}
        shop = ShopExtractor().get_schema()
        wh.replace_days(make_batch(shop, D(2026, 5, 10), rows=[row], run_id="hand"))
        wh.close()
        assert week_of_may_4(client) == (0, AFTER)
        clock.shift(LEDGER_SECONDS)
        assert week_of_may_4(client) == (1 + 2, AFTER - 1000 + 2000)


def staff_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "unused")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_page_reads_the_cache_until_the_next_export(
    shop_warehouse: DuckDBWarehouse, django_user_model: Any
) -> None:
    with time_machine.travel(TODAY, tick=False):
        anonymous = Client().get(METRICS)
        assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
        client = staff_client(django_user_model)
        first = client.get(METRICS, {"period": "week", "start": "2026-04-06", "end": "2026-05-10"})
        assert first.status_code == 200
        page = first.context["page"]
        assert page.error == ""
        assert [c.spec.key for c in page.charts] == ["shop", "shop__delta", "click"]
        assert page.queries == 1 + 3  # the ledger, then each chart
        weeks = page.charts[0].data.labels
        assert weeks[0] == D(2026, 4, 6) and weeks[-1] == D(2026, 5, 4) and len(weeks) == 5
        # Week of April 6: orders 5..11 summed, total of Sunday April 12 (day 11).
        assert [v[0] for v in page.charts[0].data.values] == [33, 56]
        body = first.content.decode()
        assert "smolqwery/uplot/uPlot.iife.min.js" in body and "cdn" not in body.lower()
        assert body.count('class="smolqwery-metric"') == 3

        again = client.get(METRICS, {"period": "week", "start": "2026-04-06", "end": "2026-05-10"})
        assert again.context["page"].queries == 0
        assert all(c.data.cached for c in again.context["page"].charts)

        # The nightly export of one table: its charts are read again, the other's not.
        with exporting(shop_warehouse, "run-2"):
            pass
        fresh = client.get(METRICS, {"period": "week", "start": "2026-04-06", "end": "2026-05-10"})
        page = fresh.context["page"]
        assert page.queries == 1 + 2
        assert [c.data.cached for c in page.charts] == [False, False, True]
        assert page.charts[0].data.values[1][-1] == 33 + 34 + 35 + 36 + 37 + 38 + 1000

        csv_response = client.get(
            METRICS, {"period": "week", "start": "2026-04-06", "end": "2026-05-10", "format": "csv"}
        )
        assert csv_response["Content-Type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(csv_response.content.decode())))
        assert table[0] == ["table", "series", "week_start", "value"]
        assert ["shop", "orders", "2026-04-06", "56"] in table
        assert ["click", "rows", "2026-04-06", "7"] in table
        assert len(table) == 1 + 5 * (2 + 1 + 2)


@pytest.mark.django_db
def test_page_survives_a_missing_warehouse(
    settings: Any, tmp_path: Path, django_user_model: Any
) -> None:
    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "absent.duckdb"
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.ShopExtractor"]
    response = staff_client(django_user_model).get(METRICS, {"period": "year", "start": "x"})
    assert response.status_code == 200
    assert "does not exist" in response.context["page"].error
    assert "unknown period" in response.context["problem"]


def test_figures_are_json_numbers() -> None:
    """NaN and infinities (a FLOAT64 column may hold them) become gaps: JSON has no NaN."""
    import decimal
    import json

    from smolqwery.metrics import _number

    figures = [_number(v) for v in (3, 2.5, decimal.Decimal("1.25"), float("nan"), None)]
    figures.append(_number(float("inf")))
    assert figures == [3, 2.5, 1.25, None, None, None]
    assert json.loads(json.dumps(figures, allow_nan=False)) == figures


#: Steps of the property below: a page view, an export's steps, a write no run records, time.
STEPS = st.lists(
    st.one_of(
        st.just(("view",)),
        st.just(("start",)),
        st.just(("commit",)),
        st.just(("record",)),
        st.just(("finish",)),
        st.just(("kill",)),
        st.just(("by hand",)),
        st.tuples(st.just("wait"), st.sampled_from([1, 30, 59, 60, 61, 600, 3599, 3600])),
    ),
    min_size=1,
    max_size=14,
)


@pytest.mark.django_db
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
@example(steps=[("start",), ("view",), ("commit",), ("record",), ("view",)])
@example(steps=[("start",), ("view",), ("commit",), ("kill",), ("view",), ("wait", 60), ("view",)])
def test_a_view_is_fresh_once_the_runs_say_so_or_the_bound_passed(
    steps: list[tuple[Any, ...]], tmp_path: Path, settings: Any
) -> None:
    """Whatever the order of views, export steps (an ``ExportRun`` created, a batch committed,
    its bookkeeping, the run finished, the process killed), writes no run records and time: a
    view shows the warehouse's numbers when a run changed the project's database after the
    last write, or the last write is ``LEDGER_UNSETTLED_SECONDS`` old while a run is
    unfinished, or ``LEDGER_SECONDS`` old in any case."""
    from django.core.cache import cache

    from smolqwery.metrics_views import LEDGER_SECONDS, LEDGER_UNSETTLED_SECONDS
    from smolqwery.models import ExportRun

    path = tmp_path / "property.duckdb"
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = path
    settings.SMOLQWERY_DATASET = "metrics_property"
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.ShopExtractor"]
    shop = ShopExtractor().get_schema()
    writes = iter(range(1, 1000))

    def write(value: int) -> None:
        wh = DuckDBWarehouse(path, "metrics_property", busy_timeout=10)
        row = {"date": D(2026, 5, 10), "total": 1, "orders": value, "label": None}
        wh.replace_days(make_batch(shop, D(2026, 5, 10), rows=[row], run_id=f"w{value:04d}"))
        wh.close()

    path.unlink(missing_ok=True)
    wh = DuckDBWarehouse(path, "metrics_property", busy_timeout=10)
    wh.ensure_dataset()
    wh.create_table(shop)
    wh.close()
    cache.clear()
    ExportRun.objects.all().delete()
    with time_machine.travel(TODAY, tick=False) as clock:
        truth = next(writes)
        write(truth)
        written = time.time()  # the last write
        changed_after = True  # a run changed the project's database since
        running: ExportRun | None = None
        for step in steps:
            if step[0] == "view":
                page = build_page("day", D(2026, 5, 9), D(2026, 5, 10))
                assert page.error == ""
                assert page.charts[0].data is not None
                shown = page.charts[0].data.values[1][-1]
                unsettled = ExportRun.objects.order_by("-id").values_list("finished_at", flat=True)[
                    :1
                ]
                unfinished = bool(unsettled) and unsettled[0] is None
                age = time.time() - written
                if (
                    changed_after
                    or (unfinished and age >= LEDGER_UNSETTLED_SECONDS)
                    or age >= LEDGER_SECONDS
                ):
                    assert shown == truth, (step, age, changed_after, unfinished)
                else:
                    assert shown is not None
            elif step[0] == "wait":
                clock.shift(step[1])
            elif step[0] == "start" and running is None:
                running = ExportRun.objects.create(
                    run_id="run", extractor="Shop", table_name="shop", started_at=timezone.now()
                )
                changed_after = True
            elif (step[0] == "commit" and running is not None) or step[0] == "by hand":
                truth = next(writes)
                write(truth)
                written, changed_after = time.time(), False
            elif step[0] == "record" and running is not None:
                running.days += 1
                running.save()
                changed_after = True
            elif step[0] == "finish" and running is not None:
                running.finished_at = timezone.now()
                running.status = ExportRun.Status.SUCCESS
                running.save()
                running, changed_after = None, True
            elif step[0] == "kill":
                running = None  # its row stays "running"
