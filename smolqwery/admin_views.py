"""The admin's export overview: each export table's last day, lag, recent rows and last run.

What was exported is read from the warehouse's ledger (one small query per table, never a scan
of an export table); how runs went is read from :class:`~smolqwery.models.ExportRun`. The page
must stay up when the warehouse is not: every warehouse error becomes a message on the page, and
the warehouse is opened with a short deadline so that a locked DuckDB file or an unreachable
BigQuery costs seconds, not the export's retry deadline.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from .charts import bar_chart
from .errors import SmolqweryError
from .models import ExportRun
from .settings import get_settings, load_extractors

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.http import HttpRequest
    from django.utils.safestring import SafeString

    from .settings import SmolqwerySettings
    from .warehouses.base import LedgerEntry, Warehouse

logger = logging.getLogger("smolqwery.admin")

#: Days shown in each table's chart, ending yesterday.
CHART_DAYS = 30
#: Seconds the page waits for the warehouse (a DuckDB file held by an export, BigQuery retries).
WAREHOUSE_DEADLINE = 10.0


@dataclasses.dataclass(frozen=True)
class TableOverview:
    """One export table as the overview shows it."""

    table: str
    extractor: str
    kind: str
    last_day: datetime.date | None = None
    lag_days: int | None = None
    exported_days: int = 0
    recent_rows: int = 0
    chart: SafeString | None = None
    last_run: ExportRun | None = None
    error: str = ""

    @property
    def up_to_date(self) -> bool:
        return self.lag_days is not None and self.lag_days <= 0


@dataclasses.dataclass(frozen=True)
class Overview:
    """Everything the page shows; built without any request so it can be tested directly."""

    yesterday: datetime.date
    warehouse: str
    tables: list[TableOverview]
    error: str = ""
    last_run_id: str = ""
    last_run_started: datetime.datetime | None = None
    failures: list[ExportRun] = dataclasses.field(default_factory=list)
    #: Some extractor of the last run has not finished (or its process died).
    last_run_running: bool = False


def describe_error(exc: BaseException, doing: str) -> str:
    """A message safe to show: smolqwery's own errors are written to be; others are logged.

    Third-party exceptions may quote configuration (a URL, a key path), so the page shows their
    type only and the details go to the ``smolqwery.admin`` log.
    """
    if isinstance(exc, SmolqweryError):
        return f"{doing}: {exc}"
    logger.error("%s failed", doing, exc_info=exc)
    return f"{doing}: {type(exc).__name__} (details in the server log)"


def local_yesterday() -> datetime.date:
    """Yesterday in Django's ``TIME_ZONE``: the last day an export can contain."""
    now = datetime.datetime.now(timezone.get_default_timezone())
    return now.date() - datetime.timedelta(days=1)


def warehouse_label(config: SmolqwerySettings) -> str:
    """Where the exports go, in words (from settings only: no credential, no client repr)."""
    if config.warehouse == "duckdb":
        return f"DuckDB file {config.duckdb_path}, schema {config.dataset}"
    project = config.bigquery_project or (config.google_key_info or {}).get("project_id")
    where = f"{project}.{config.dataset}" if project else config.dataset
    return f"BigQuery dataset {where}"


def _table_overview(
    warehouse: Warehouse | None, table: str, extractor: str, kind: str, yesterday: datetime.date
) -> TableOverview:
    base = TableOverview(
        table=table,
        extractor=extractor,
        kind=kind,
        last_run=ExportRun.objects.filter(table_name=table).order_by("-started_at").first(),
    )
    if warehouse is None:
        return base
    try:
        ledger: dict[datetime.date, LedgerEntry] = warehouse.exported_days(table)
    except Exception as exc:  # the page must render whatever the warehouse does
        return dataclasses.replace(
            base, error=describe_error(exc, f"reading the ledger of {table}")
        )
    days = [yesterday - datetime.timedelta(days=i) for i in range(CHART_DAYS - 1, -1, -1)]
    values = [(day, ledger[day].rows if day in ledger else None) for day in days]
    last_day = max(ledger, default=None)
    return dataclasses.replace(
        base,
        last_day=last_day,
        lag_days=None if last_day is None else (yesterday - last_day).days,
        exported_days=len(ledger),
        recent_rows=sum(v for _, v in values if v is not None),
        chart=bar_chart(values, label=f"{table}: rows per day, last {CHART_DAYS} days"),
    )


def build_overview() -> Overview:
    """Read the settings, the ledger of every configured extractor's table and the last run."""
    yesterday = local_yesterday()
    last = ExportRun.objects.order_by("-started_at").first()
    runs: dict[str, Any] = {}
    if last is not None:
        runs = {
            "last_run_id": last.run_id,
            "last_run_started": ExportRun.objects.filter(run_id=last.run_id)
            .order_by("started_at")
            .values_list("started_at", flat=True)
            .first(),
            "failures": list(
                ExportRun.objects.filter(run_id=last.run_id, status=ExportRun.Status.FAILED)
            ),
            "last_run_running": ExportRun.objects.filter(
                run_id=last.run_id, status=ExportRun.Status.RUNNING
            ).exists(),
        }
    try:
        config = dataclasses.replace(get_settings(), retry_deadline=WAREHOUSE_DEADLINE)
        extractors = load_extractors(config)
        tables = [
            (e.get_table_name(), e.get_name(), e.get_extractor_type().value) for e in extractors
        ]
    except Exception as exc:
        return Overview(yesterday, "", [], describe_error(exc, "reading the settings"), **runs)

    from .warehouses import get_warehouse

    error = ""
    warehouse: Warehouse | None = None
    try:
        warehouse = get_warehouse(config)
    except Exception as exc:
        error = describe_error(exc, f"opening the {config.warehouse} warehouse")
    reader = warehouse
    rows: list[TableOverview] = []
    try:
        for table, extractor, kind in tables:
            row = _table_overview(reader, table, extractor, kind, yesterday)
            rows.append(row)
            if row.error and reader is not None:
                # One failure is enough to know the warehouse is unwell: do not wait for it
                # once per table.
                error, reader = row.error, None
    finally:
        if warehouse is not None:
            warehouse.close()
    return Overview(yesterday, warehouse_label(config), rows, error, **runs)


def export_overview_view(
    request: HttpRequest, model_admin: ModelAdmin[ExportRun]
) -> TemplateResponse:
    """The page (wrapped by ``admin_site.admin_view``, which sends non-staff to the login)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    overview = build_overview()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Export tables",
        "opts": model_admin.model._meta,
        "overview": overview,
        "chart_days": CHART_DAYS,
        "time_zone": timezone.get_default_timezone_name(),
    }
    return TemplateResponse(request, "admin/smolqwery/overview.html", context)
