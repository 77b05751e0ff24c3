"""The admin's "Metrics" page: charts of every export table's numbers, read from the warehouse.

One query per chart (:mod:`smolqwery.metrics`), cached in Django's cache framework under a key
that includes the table's last export in the ledger: the first view after the nightly export
reads fresh numbers, every later one reads the cache. The ledger itself is read only when the
project's database says an export ran since (:func:`ledger_states`): a view with a warm cache
runs no warehouse query (on BigQuery: bills nothing). The page stays up when the warehouse is
not: errors become messages, and the warehouse is opened read-only with
``SMOLQWERY_STATUS_DEADLINE``, as on the overview.
The same figures are offered as CSV (``?format=csv``).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from .admin_views import describe_error, local_yesterday, warehouse_label
from .metrics import (
    PERIODS,
    ChartData,
    ChartSpec,
    Period,
    QuerySession,
    cache_key,
    chart_query,
    charts_for,
    fetch_chart,
    iter_rows,
    last_exports,
    ledgers_of,
    runs_state,
    warehouse_place,
)
from .registry import load_extractor_class
from .settings import get_settings

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.core.cache.backends.base import BaseCache
    from django.http import HttpRequest

    from .models import ExportRun

logger = logging.getLogger("smolqwery.admin")

#: Days shown by default, ending with the last complete day.
DEFAULT_DAYS = 90
#: The longest range a page may ask for (about ten years).
MAX_DAYS = 3700
#: Cached figures are keyed by the last export; this only bounds how long stale keys linger.
CACHE_SECONDS = 7 * 24 * 3600
#: How long a ledger state read is trusted when every table's newest export run finished
#: (bounds a change no run records), and while one is unfinished (bounds an export killed
#: after its commit but before its bookkeeping).
LEDGER_SECONDS = 3600
LEDGER_UNSETTLED_SECONDS = 60
#: Which of ``settings.CACHES`` holds the figures.
CACHE_ALIAS = "default"


@dataclasses.dataclass
class Chart:
    spec: ChartSpec
    data: ChartData | None = None
    error: str = ""

    def payload(self) -> dict[str, Any]:
        """What the page's script draws (``json_script``: escaped for a ``<script>``)."""
        assert self.data is not None
        return {
            **self.data.to_json(),
            "title": self.spec.title,
            "style": self.spec.style,
            "series": [s.label for s in self.spec.series],
        }

    @property
    def cohort_rows(self) -> list[tuple[str, int, list[tuple[str, str]]]]:
        """A cohort table's rows: cohort, size, and per period ``(percent text, cell style)``;
        the cell's shade grows with the share (text always readable on it)."""
        assert self.data is not None
        out = []
        for i, label in enumerate(self.data.labels):
            cells = []
            for values in self.data.values:
                share = values[i]
                if share is None:
                    cells.append(("\u2013", ""))  # an en dash: no figure
                else:
                    alpha = round(0.1 + 0.6 * max(0.0, min(1.0, share)), 2)
                    cells.append((f"{share:.0%}", f"background: rgba(74, 144, 194, {alpha})"))
            size = self.data.sizes[i] if i < len(self.data.sizes) else 0
            out.append((label.isoformat(), size, cells))
        return out

    @property
    def script_id(self) -> str:
        """The id of the chart's JSON data: prefixed, never an id of the admin's own."""
        return f"smolqwery-metric-{self.spec.key}"


@dataclasses.dataclass
class MetricsPage:
    period: Period
    start: datetime.date
    end: datetime.date
    warehouse: str
    charts: list[Chart]
    error: str = ""
    #: Warehouse queries run for this view (the ledger's, charts not found in the cache), and
    #: the bytes they billed: 0 queries for a view served from the cache.
    queries: int = 0
    bytes_billed: int = 0


def parse_range(params: Any) -> tuple[Period, datetime.date, datetime.date, str]:
    """Period and range from the query string, defaults for what is missing or wrong."""
    problems: list[str] = []
    period: Period = "day"
    asked = params.get("period", "day")
    for p in PERIODS:
        if asked == p:
            period = p
    if asked != period:
        problems.append(f"unknown period {asked!r}: showing days")
    end = local_yesterday()
    start = end - datetime.timedelta(days=DEFAULT_DAYS - 1)
    try:
        if params.get("end"):
            end = datetime.date.fromisoformat(params["end"])
        if params.get("start"):
            start = datetime.date.fromisoformat(params["start"])
        else:
            start = end - datetime.timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        problems.append("dates are written YYYY-MM-DD: showing the default range")
        end = local_yesterday()
        start = end - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    if (end - start).days > MAX_DAYS:
        start = end - datetime.timedelta(days=MAX_DAYS)
        problems.append(f"ranges are at most {MAX_DAYS} days: the start was moved")
    return period, start, end, "; ".join(problems)


def build_page(period: Period, start: datetime.date, end: datetime.date) -> MetricsPage:
    """Every configured table's charts for the range, from the cache or the warehouse."""
    try:
        config = get_settings()
    except Exception as exc:
        return MetricsPage(period, start, end, "", [], describe_error(exc, "reading the settings"))
    charts: list[Chart] = []
    errors: list[str] = []
    for path in config.extractors:
        try:
            extractor = load_extractor_class(path)()
            table = extractor.get_schema()
        except Exception as exc:
            errors.append(describe_error(exc, f"loading {path}"))
            continue
        charts += [Chart(spec) for spec in charts_for(table, extractor)]
    page = MetricsPage(period, start, end, warehouse_label(config), charts)
    if errors:
        page.error = "; ".join(errors)
    if not charts:
        return page

    from .warehouses import get_warehouse

    try:
        warehouse = get_warehouse(config, deadline=config.status_deadline, read_only=True)
    except Exception as exc:
        page.error = describe_error(exc, f"opening the {config.warehouse} warehouse")
        return page
    cache = caches[CACHE_ALIAS]
    tz = timezone.get_default_timezone()
    try:
        with QuerySession(warehouse) as session:
            place = warehouse_place(warehouse, page.warehouse)
            ledger = ledger_states(cache, session, place, [c.spec.table.name for c in charts])
            keys: dict[str, Chart] = {}
            for chart in charts:
                name = chart.spec.table.name
                if name not in ledger:
                    chart.error = "nothing exported yet"
                    continue
                keys[cache_key(place, chart.spec, period, start, end, ledger[name])] = chart
            found = cache.get_many(list(keys))  # one round trip to Redis, not one per chart
            ledgers: dict[str, list[str]] | None = None
            for key, chart in keys.items():
                if key in found:
                    chart.data = ChartData.from_json(found[key])
                    chart.data.cached = True
                    continue
                if ledgers is None:  # read only when a chart is
                    ledgers = ledgers_of(warehouse, [c.spec.table.name for c in charts])
                name = chart.spec.table.name
                query = chart_query(chart.spec, period, start, end, warehouse, tz, ledgers[name])
                chart.data = fetch_chart(session, query, chart.spec, period)
                cache.set(key, chart.data.to_json(), CACHE_SECONDS)
            page.queries, page.bytes_billed = session.queries, session.bytes_billed
    except Exception as exc:  # the page must render whatever the warehouse does
        page.error = describe_error(exc, "reading the metrics")
    finally:
        warehouse.close()
    return page


def ledger_states(
    cache: BaseCache, session: QuerySession, place: str, tables: list[str]
) -> dict[str, str]:
    """``{table: state of its ledger}`` (the charts' cache keys), read from the warehouse only
    when the project's database says an export changed something since it was last read.

    The ledger's state read is cached under the tables' export runs (:func:`runs_state`: free,
    the project's database). It is read again when a run starts, records a batch or ends, and
    in any case after :data:`LEDGER_SECONDS` (a change no run records: a table written by hand,
    or by an export recorded in another database), or :data:`LEDGER_UNSETTLED_SECONDS` while a
    table's newest run is unfinished (running, or killed between a commit and its
    bookkeeping: such a kill shows stale numbers for at most that long).
    """
    runs, settled = runs_state(tables)
    where = f"{place}:{runs}"
    key = f"smolqwery:metrics:ledger:{hashlib.sha256(where.encode()).hexdigest()[:32]}"
    max_age = LEDGER_SECONDS if settled else LEDGER_UNSETTLED_SECONDS
    found = cache.get(key)
    now = time.time()
    if isinstance(found, dict) and 0 <= now - found.get("read_at", -max_age) < max_age:
        return dict(found["ledger"])
    found_ledgers = ledgers_of(session.warehouse, tables)
    ledger = {t: state for t, (state, _, _) in last_exports(session, found_ledgers).items()}
    cache.set(key, {"read_at": now, "ledger": ledger}, max_age)
    return ledger


def csv_response(page: MetricsPage) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"smolqwery-metrics-{page.period}-{page.start}-{page.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(["table", "series", f"{page.period}_start", "value"])
    for chart in page.charts:
        if chart.data is not None:
            writer.writerows(iter_rows(chart.spec, chart.data))
    return response


def metrics_view(request: HttpRequest, model_admin: ModelAdmin[ExportRun]) -> HttpResponse:
    """The page (wrapped by ``admin_site.admin_view``: staff only)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    request.current_app = model_admin.admin_site.name
    period, start, end, problem = parse_range(request.GET)
    page = build_page(period, start, end)
    if request.GET.get("format") == "csv":
        return csv_response(page)
    query = request.GET.copy()
    query["format"] = "csv"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Metrics",
        "opts": model_admin.model._meta,
        "page": page,
        "periods": PERIODS,
        "problem": problem,
        "csv_query": query.urlencode(),
        "time_zone": timezone.get_default_timezone_name(),
    }
    return TemplateResponse(request, "admin/smolqwery/metrics.html", context)
