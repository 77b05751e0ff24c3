"""The admin's metrics: which charts an export table gets, and one warehouse query per chart.

A chart is a :class:`ChartSpec` (a table, a few numeric series, how each one rolls up into a
week or a month). :func:`chart_query` turns a spec, a period and a date range into one SQL
statement with its parameters; :func:`run_query` runs it on either warehouse and reports the
bytes BigQuery billed. Every query filters the table's partition column by the range, so
BigQuery prunes partitions; the week and month figures follow the rollup views' rules
(:mod:`smolqwery.sql_views`: SUM of plain columns, last day's value of a running total) but are
computed from the base table, because a filter on a view's truncated period column does not
prune the base table's partitions. The ``_delta`` figures follow the delta view's rules the same
way (its window reads one day before the range). Values are always query parameters;
identifiers are validated and quoted.

The SQL fragments come from the warehouse's ``ops`` (:mod:`smolqwery.warehouses.ops`), through
:class:`MetricsSQL`: the same code serves every backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .days import day_window
from .schema import TableSchema
from .vocabulary import ExtractorType
from .warehouses.base import LEDGER_TABLE, time_zone_name

if TYPE_CHECKING:
    from .interface import BaseExtractor
    from .warehouses.base import ReadSession, Warehouse
    from .warehouses.ops import BaseOperations, Params

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
#: How a series becomes one figure per period: the SUM of its days, the value of the last day
#: present (running totals, active users over a window), or the number of rows.
Aggregation = Literal["sum", "last", "count"]
NUMERIC_TYPES = frozenset({"INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC"})


@dataclasses.dataclass(frozen=True)
class Series:
    """One line of a chart: a column (or ``None`` for the row count) and how it rolls up."""

    column: str | None
    label: str
    aggregation: Aggregation = "sum"
    #: The change from the previous calendar day (the ``_delta`` view's figure), summed over
    #: the period, instead of the value.
    delta: bool = False


@dataclasses.dataclass(frozen=True)
class ChartSpec:
    """One chart of one table; ``key`` is unique on the page (``user``, ``user__delta``)."""

    key: str
    table: TableSchema
    title: str
    series: tuple[Series, ...]
    style: Literal["line", "bars", "cohort"] = "line"
    description: str = ""
    #: A cohort table's period (``week`` or ``month``): its rows are cohorts, not periods.
    cohort_period: str = ""


@dataclasses.dataclass
class ChartData:
    """What one chart shows: one label (the period's first day) per row, one list per series."""

    key: str
    period: Period
    start: datetime.date
    end: datetime.date
    labels: list[datetime.date]
    values: list[list[float | None]]
    #: Bytes BigQuery billed for the query (None on DuckDB); 0 is a cache-priced answer.
    bytes_billed: int | None = None
    #: Read from the cache, not from the warehouse.
    cached: bool = False
    #: Per label: the days (or rows) behind the figures; a cohort's size.
    sizes: list[int] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "labels": [d.isoformat() for d in self.labels],
            "values": self.values,
            "bytes_billed": self.bytes_billed,
            "sizes": self.sizes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChartData:
        return cls(
            key=data["key"],
            period=data["period"],
            start=datetime.date.fromisoformat(data["start"]),
            end=datetime.date.fromisoformat(data["end"]),
            labels=[datetime.date.fromisoformat(d) for d in data["labels"]],
            values=data["values"],
            bytes_billed=data["bytes_billed"],
            sizes=data.get("sizes", []),
        )


# -- which charts -----------------------------------------------------------------------------


def numeric_columns(table: TableSchema) -> list[str]:
    return [
        c.name for c in table.columns if c.type in NUMERIC_TYPES and c.name != table.date_column
    ]


def charts_for(table: TableSchema, extractor: BaseExtractor[Any] | None = None) -> list[ChartSpec]:
    """The charts of a table: its natural ones for the activity extractors, otherwise its
    numeric columns (plus their ``_delta`` figures when differentiated, or the row count of an
    individual-rows table)."""
    from .activity import ActiveUsers, CountPerDay
    from .cohorts import CohortRetention

    if isinstance(extractor, CountPerDay):
        return [
            ChartSpec(
                table.name,
                table,
                f"{table.name}: new per period",
                (Series("count", "count"),),
                style="bars",
                description=extractor.get_table_description(),
            ),
            ChartSpec(
                f"{table.name}__total",
                table,
                f"{table.name}: running total",
                (Series("total", "total", "last"),),
            ),
        ]
    if isinstance(extractor, ActiveUsers):
        return [
            ChartSpec(
                table.name,
                table,
                f"{table.name}: active users",
                tuple(Series(c, c, "last") for c in ("dau", "wau", "mau")),
                description=(
                    "Per week or month: the figures of the period's last day (the wau of a "
                    "Sunday is the ISO week's active users)"
                ),
            )
        ]
    if isinstance(extractor, CohortRetention):
        return [
            ChartSpec(
                table.name,
                table,
                f"{table.name}: retention of {extractor.period}ly sign-up cohorts",
                tuple(Series("active", f"+{n}", "last") for n in range(extractor.periods + 1)),
                style="cohort",
                description=(
                    f"Share of each cohort (users who signed up in the {extractor.period} "
                    f"starting on the row's date) active N {extractor.period}s later"
                ),
                cohort_period=extractor.period,
            )
        ]
    if table.kind is ExtractorType.individual_rows:
        series = [Series(None, "rows", "count")]
        series += [Series(c, f"sum of {c}") for c in numeric_columns(table)]
        return [ChartSpec(table.name, table, f"{table.name}: rows per period", tuple(series))]
    charts: list[ChartSpec] = []
    columns = {c.name: c for c in table.columns}
    names = numeric_columns(table)
    if names:
        series = [Series(n, n, "last" if columns[n].differentiate else "sum") for n in names]
        charts.append(ChartSpec(table.name, table, table.name, tuple(series)))
    differentiated = [n for n in names if columns[n].differentiate]
    if differentiated:
        charts.append(
            ChartSpec(
                f"{table.name}__delta",
                table,
                f"{table.name}_delta: change per period",
                tuple(Series(n, f"{n} (change)", "sum", delta=True) for n in differentiated),
                style="bars",
            )
        )
    return charts


# -- periods ----------------------------------------------------------------------------------


def period_start(period: Period, day: datetime.date) -> datetime.date:
    """The first day of the ISO week (Monday) or month of ``day``."""
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def period_end(period: Period, day: datetime.date) -> datetime.date:
    """The last day of the period of ``day``."""
    if period == "week":
        return period_start(period, day) + datetime.timedelta(days=6)
    if period == "month":
        following = (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        return following - datetime.timedelta(days=1)
    return day


def aligned_range(
    period: Period, start: datetime.date, end: datetime.date
) -> tuple[datetime.date, datetime.date]:
    """The range widened to whole periods, so that every period shown is complete."""
    return period_start(period, start), period_end(period, end)


# -- SQL --------------------------------------------------------------------------------------


class MetricsSQL:
    """The fragments of one metrics query, from the warehouse's SQL operations (``ops``), and
    the query's parameters (values never go into the SQL text)."""

    def __init__(self, ops: BaseOperations) -> None:
        self.ops = ops
        self.params: Params = ops.params()

    def quote(self, name: str) -> str:
        """A column name, validated and quoted."""
        return self.ops.column(name)

    def param(self, type_: str, value: Any) -> str:
        """A placeholder for ``value`` (of column type ``type_``)."""
        return self.params(value, type_)

    def period_start(self, period: Period, day: str) -> str:
        return day if period == "day" else self.ops.period_start_sql(period, day)

    def day_diff(self, day: str, previous: str) -> str:
        return self.ops.day_gap_sql(day, previous)

    def local_day(self, timestamp: str, tz: str) -> str:
        return self.ops.timestamp_local_date_sql(timestamp, self.param("STRING", tz))

    def share(self, part: str, whole: str) -> str:
        """``part / whole`` as a float, NULL when ``whole`` is 0."""
        return f"{self.ops.cast_sql(part, 'FLOAT64')} / NULLIF({whole}, 0)"


@dataclasses.dataclass(frozen=True)
class Query:
    sql: str
    params: Params
    start: datetime.date
    end: datetime.date


def chart_query(
    spec: ChartSpec,
    period: Period,
    start: datetime.date,
    end: datetime.date,
    warehouse: Warehouse,
    tz: datetime.tzinfo,
    ledgers: Sequence[str] = (),
) -> Query:
    """One statement giving ``p`` (the period's first day), ``n`` (days or rows) and one column
    ``s<i>`` per series, ordered by ``p``, over ``[start, end]`` widened to whole periods.

    ``ledgers``: the ledger tables holding the table's days (:func:`ledgers_of`; by default
    ``warehouse.ledger_of``), read by an individual-rows table's query."""
    sql = MetricsSQL(warehouse.ops)
    table = spec.table
    source = warehouse.qualified_name(table.name)
    date = sql.quote(table.date_column)
    if spec.style == "cohort":
        return _cohort_query(spec, start, end, sql, source, date)
    start, end = aligned_range(period, start, end)
    if table.kind is ExtractorType.individual_rows:
        if table.date_column_type == "DATE":
            day = date
            where = f"{date} BETWEEN {sql.param('DATE', start)} AND {sql.param('DATE', end)}"
        else:
            first_instant = day_window(start, tz).start
            end_instant = day_window(end, tz).end
            day = sql.local_day(date, time_zone_name(tz))
            where = (
                f"{date} >= {sql.param('TIMESTAMP', first_instant)} "
                f"AND {date} < {sql.param('TIMESTAMP', end_instant)}"
            )
        # Per day, then joined with the ledger's days: an exported day without rows counts 0,
        # a day not exported stays a gap (missing data is not zero).
        sums = [
            f"SUM({sql.quote(s.column)}) AS s{i}" for i, s in enumerate(spec.series) if s.column
        ]
        per_day = (
            f"SELECT d, COUNT(*) AS n{''.join(', ' + f for f in sums)}\n"
            f"  FROM (SELECT {day} AS d, * FROM {source} WHERE {where}) AS r GROUP BY d"
        )
        union = " UNION ALL ".join(
            f"SELECT {sql.quote('day')} AS d FROM {warehouse.qualified_name(name)}"
            f" WHERE {sql.quote('table_name')} = {sql.param('STRING', table.name)}"
            f" AND {sql.quote('day')} BETWEEN {sql.param('DATE', start)}"
            f" AND {sql.param('DATE', end)}"
            for name in (ledgers or [warehouse.ledger_of(table.name)])
        )
        ledger = f"SELECT DISTINCT d FROM ({union}) AS entries"
        figures = []
        for i, s in enumerate(spec.series):
            if s.column is None:
                figures.append(f"SUM(n) AS s{i}")
            else:  # a day without rows sums to 0; a day of NULLs stays NULL
                figures.append(f"SUM(CASE WHEN n = 0 THEN 0 ELSE s{i} END) AS s{i}")
        kept = "".join(f", r.s{i}" for i, s in enumerate(spec.series) if s.column)
        text = (
            f"SELECT {sql.period_start(period, 'd')} AS p, SUM(n) AS n, {', '.join(figures)}\n"
            f"FROM (SELECT COALESCE(r.d, l.d) AS d, COALESCE(r.n, 0) AS n{kept}\n"
            f"  FROM ({per_day}) AS r\n"
            f"  FULL OUTER JOIN ({ledger}) AS l ON r.d = l.d) AS days\n"
            "GROUP BY p ORDER BY p"
        )
        return Query(text, sql.params, start, end)

    columns = sorted({s.column for s in spec.series if s.column is not None})
    alias = {c: f"c{i}" for i, c in enumerate(columns)}
    needs_delta = any(s.delta for s in spec.series)
    # The delta of the range's first day needs the day before it.
    lower = start - datetime.timedelta(days=1) if needs_delta else start
    inner = [f"{date} AS d"] + [f"{sql.quote(c)} AS {alias[c]}" for c in columns]
    src = (
        f"SELECT {', '.join(inner)} FROM {source} "
        f"WHERE {date} BETWEEN {sql.param('DATE', lower)} AND {sql.param('DATE', end)}"
    )
    window = "OVER (ORDER BY d)"
    daily = ["d", f"MAX(d) OVER (PARTITION BY {sql.period_start(period, 'd')}) AS l"]
    daily += [alias[c] for c in columns]
    if needs_delta:
        first = f"(SELECT MIN({date}) FROM {source})"
        for c in columns:
            a = alias[c]
            # The delta view: the table's first day shows its value, a day after a gap NULL.
            daily.append(
                f"CASE WHEN LAG(d) {window} IS NULL AND d = {first} THEN {a}"
                f" WHEN {sql.day_diff('d', f'LAG(d) {window}')} = 1"
                f" THEN {a} - LAG({a}) {window} END AS {a}_delta"
            )
    figures = []
    for i, s in enumerate(spec.series):
        assert s.column is not None
        a = alias[s.column] + ("_delta" if s.delta else "")
        if s.aggregation == "last":
            figures.append(f"MAX(CASE WHEN d = l THEN {a} END) AS s{i}")
        else:
            figures.append(f"SUM({a}) AS s{i}")
    text = (
        f"SELECT {sql.period_start(period, 'd')} AS p, COUNT(*) AS n, {', '.join(figures)}\n"
        f"FROM (SELECT {', '.join(daily)} FROM ({src}) AS src) AS daily\n"
        f"WHERE d >= {sql.param('DATE', start)}\n"
        "GROUP BY p ORDER BY p"
    )
    return Query(text, sql.params, start, end)


def _cohort_query(
    spec: ChartSpec,
    start: datetime.date,
    end: datetime.date,
    sql: MetricsSQL,
    source: str,
    date: str,
) -> Query:
    """The cohorts that signed up in the range, one column per ``periods_later``: the share
    active. A cohort's rows are dated up to ``periods`` periods after it: the partition filter
    reaches that far."""
    cohort_period: Period = "month" if spec.cohort_period == "month" else "week"
    start, end = aligned_range(cohort_period, start, end)
    last_row = end + datetime.timedelta(days=31 * len(spec.series) + 31)
    cohort, later = sql.quote("cohort"), sql.quote("periods_later")
    share = sql.share(sql.quote("active"), sql.quote("cohort_size"))
    figures = [
        f"MAX(CASE WHEN {later} = {sql.param('INT64', n)} THEN {share} END) AS s{n}"
        for n in range(len(spec.series))
    ]
    text = (
        f"SELECT {cohort} AS p, MAX({sql.quote('cohort_size')}) AS n, {', '.join(figures)}\n"
        f"FROM {source}\n"
        f"WHERE {date} BETWEEN {sql.param('DATE', start)} AND {sql.param('DATE', last_row)}\n"
        f"AND {cohort} BETWEEN {sql.param('DATE', start)} AND {sql.param('DATE', end)}\n"
        "GROUP BY p ORDER BY p"
    )
    return Query(text, sql.params, start, end)


# -- running queries --------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A figure as JSON carries it: ints exact, NaN and infinities as gaps (JSON has none)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # type: ignore[return-value]  # exact in JSON, an int is a float here
    number = float(value)
    return number if math.isfinite(number) else None


#: Rows of a query (None: a table it reads is absent), and the bytes billed for it.
Result = tuple[list[tuple[Any, ...]] | None, int | None]


class QuerySession:
    """Queries of one page view on one warehouse, through the backend's public read session
    (:meth:`Warehouse.reading <smolqwery.warehouses.base.Warehouse.reading>`: one DuckDB
    connection for the page). The session is opened at the first query: a view served from the
    cache does not touch the warehouse at all (nor wait for a DuckDB file an export holds)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._stack = contextlib.ExitStack()
        self._session: ReadSession | None = None
        #: Queries run in this session, and the bytes they billed together.
        self.queries = 0
        self.bytes_billed = 0

    def __enter__(self) -> QuerySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._session = None
        self._stack.__exit__(*exc)  # type: ignore[arg-type]

    def run(self, sql: str, params: Params | None = None, *, missing_ok: bool = False) -> Result:
        """Rows of the statement (None: ``missing_ok`` and a table is absent), and the bytes
        the warehouse billed for it (None when it does not bill by bytes)."""
        if self._session is None:
            self._session = self._stack.enter_context(self.warehouse.reading("read metrics"))
        self.queries += 1
        found = self._session.fetch(sql, params, missing_ok=missing_ok)
        rows = None if found is None else [tuple(r.values()) for r in found]
        self.bytes_billed += self._session.bytes_billed or 0
        return rows, self._session.bytes_billed


def fetch_chart(session: QuerySession, query: Query, spec: ChartSpec, period: Period) -> ChartData:
    found, billed = session.run(query.sql, query.params)
    rows = found or []
    labels = [r[0] for r in rows]
    values = [[_number(r[2 + i]) for r in rows] for i in range(len(spec.series))]
    sizes = [int(r[1]) for r in rows]
    return ChartData(spec.key, period, query.start, query.end, labels, values, billed, sizes=sizes)


def ledgers_of(warehouse: Warehouse, tables: Sequence[str]) -> dict[str, list[str]]:
    """``{table: the ledger tables holding its days}``. The shared ledger, or, on a backend
    keeping a ledger per table (BigQuery), the table's own if it exists and the shared one
    while it does (entries not moved yet, docs/scaling.md): found by listing the dataset's
    tables, an API call that runs no query job."""
    if not warehouse.ops.capabilities.ledger_per_table:
        return {table: [LEDGER_TABLE] for table in tables}
    existing = set(warehouse.list_tables())
    shared = [LEDGER_TABLE] if LEDGER_TABLE in existing else []
    own = {table: warehouse.ledger_of(table) for table in tables}
    return {t: [name for name in (own[t],) if name in existing] + shared for t in tables}


def last_exports(
    session: QuerySession, ledgers: dict[str, list[str]]
) -> dict[str, tuple[str, datetime.date, datetime.date]]:
    """``{table: (state of its ledger, first day, last day)}``, in one query over ``ledgers``
    (:func:`ledgers_of`).

    The state (last ``exported_at``, entries, rows, run ids) changes with every export that
    writes the table, even one replaying days within the same second.
    """
    wh = session.warehouse
    names = sorted({name for found in ledgers.values() for name in found})
    if not names:
        return {}
    union = " UNION ALL ".join(
        f"SELECT table_name, day, exported_at, rows, run_id FROM {wh.qualified_name(name)}"
        for name in names
    )
    sql = (
        "SELECT table_name, MIN(day), MAX(day), MAX(exported_at), COUNT(*), SUM(rows), "
        f"MIN(run_id), MAX(run_id) FROM ({union}) AS ledger GROUP BY table_name"
    )
    rows, _ = session.run(sql, missing_ok=True)  # no ledger yet: nothing exported
    if rows is None:
        return {}
    return {str(r[0]): ("|".join(map(str, r[3:])), r[1], r[2]) for r in rows}


def runs_state(tables: Sequence[str]) -> tuple[str, bool]:
    """What the project's database says of the tables' exports, free on every page view: a
    digest of their :class:`~smolqwery.models.ExportRun` rows, and whether the newest run of
    each table has finished ("settled").

    The digest changes when an export run of one of them starts, records a batch (after its
    commit in the warehouse) and ends: after the last of these, the ledger holds everything
    the runs wrote. A run killed between a batch's commit and its bookkeeping leaves its row
    unfinished, so the table is not settled (the caller bounds how long it trusts the ledger
    state it read then).
    """
    from django.db.models import Count, Max, Q, Sum

    from .models import ExportRun

    rows = (
        ExportRun.objects.filter(table_name__in=list(tables))
        .order_by()
        .values("table_name")
        .annotate(
            runs=Count("id"),
            newest=Max("id"),
            newest_finished=Max("id", filter=Q(finished_at__isnull=False)),
            days=Sum("days"),
            rows=Sum("rows"),
            finished_at=Max("finished_at"),
        )
        .order_by("table_name")
    )
    found = [(r["table_name"], *(str(r[k]) for k in r if k != "table_name")) for r in rows]
    settled = all(r["newest"] == r["newest_finished"] for r in rows)
    digest = hashlib.sha256(json.dumps(found).encode()).hexdigest()[:32]
    return digest, settled


def cache_key(
    place: str,
    spec: ChartSpec,
    period: Period,
    start: datetime.date,
    end: datetime.date,
    last_export: str,
) -> str:
    """A cache key changing with the table's last export: the next view after an export reads
    fresh numbers, every other one the cache. ``place`` names the warehouse from settings only
    (:func:`warehouse_place`): building the key opens nothing."""
    parts = [place, spec.table.name, spec.key, spec.table.fingerprint(), period, start, end]
    parts.append(last_export)
    parts.append(json.dumps([dataclasses.astuple(s) for s in spec.series]))
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]
    return f"smolqwery:metrics:{digest}"


def warehouse_place(warehouse: Warehouse, label: str) -> str:
    """The warehouse in cache keys: its class and its label (``Warehouse.label``, from the
    settings: the DuckDB file and schema, the BigQuery project and dataset). Not its qualified
    names: DuckDB's need the file's catalog, read by opening the file."""
    return f"{type(warehouse).__module__}.{type(warehouse).__qualname__}:{label}"


def iter_rows(spec: ChartSpec, data: ChartData) -> Iterator[tuple[str, str, str, float | None]]:
    """``(table, series, period start, value)`` rows of a chart, as the CSV download has them."""
    for i, series in enumerate(spec.series):
        for label, value in zip(data.labels, data.values[i], strict=True):
            yield spec.table.name, series.label, label.isoformat(), value
