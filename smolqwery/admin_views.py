"""The admin's export overview: each export table's last day, lag, recent rows and last run.

Every figure comes from :mod:`smolqwery.status`, the reading ``smolqwery_status`` reports too
(first and last day, missing days, lag and last run mean the same on both). The page must stay
up when the warehouse is not: every warehouse error becomes a message on the page, and the
warehouse is opened read-only with ``SMOLQWERY_STATUS_DEADLINE`` (10 s) so that a locked DuckDB
file or an unreachable BigQuery costs seconds, not the export's retry deadline.
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
from .days import local_now, yesterday
from .errors import SmolqweryError
from .locking import live_run_id
from .models import ExportRun
from .registry import select_extractors
from .settings import get_settings
from .status import TableStatus, read_statuses
from .warehouses import get_warehouse

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.http import HttpRequest
    from django.utils.safestring import SafeString

    from .settings import SmolqwerySettings
    from .warehouses.base import Warehouse

logger = logging.getLogger("smolqwery.admin")

#: Days shown in each table's chart, ending yesterday.
CHART_DAYS = 30


@dataclasses.dataclass(frozen=True)
class TableOverview:
    """One export table as the overview shows it.

    ``lag_days`` and ``missing_days`` mean what they mean in ``smolqwery_status``: the days
    from the oldest day not exported (since ``SMOLQWERY_FIRST_DATE``) to yesterday, both
    included, and how many days in that span are not exported. 0 means up to date.
    """

    extractor: str
    table: str = ""
    kind: str = ""
    first_day: datetime.date | None = None
    last_day: datetime.date | None = None
    lag_days: int | None = None
    missing_days: int = 0
    first_missing: datetime.date | None = None
    exported_days: int = 0
    recent_rows: int = 0
    chart: SafeString | None = None
    last_run: ExportRun | None = None
    #: The last run's status, ``interrupted`` for one marked running whose process is gone.
    last_run_state: str = ""
    error: str = ""

    @property
    def up_to_date(self) -> bool:
        return self.lag_days == 0


@dataclasses.dataclass(frozen=True)
class Overview:
    """Everything the page shows; built without any request so it can be tested directly."""

    yesterday: datetime.date
    warehouse: str
    tables: list[TableOverview]
    error: str = ""
    first_date: datetime.date | None = None
    last_run_id: str = ""
    last_run_started: datetime.datetime | None = None
    failures: list[ExportRun] = dataclasses.field(default_factory=list)
    #: Some extractor of the last run has not finished, and its process holds the lock.
    last_run_running: bool = False
    #: Some extractor of the last run never finished: its process died (killed, lost lease).
    last_run_interrupted: bool = False


def describe_error(exc: BaseException, doing: str) -> str:
    """A message safe to show: smolqwery's own errors are written to be; others are logged.

    smolqwery's messages already name the operation and the object. Third-party exceptions may
    quote configuration (a URL, a key path), so the page shows what was being done and their
    type only; the details go to the ``smolqwery.admin`` log.
    """
    if isinstance(exc, SmolqweryError):
        return str(exc)
    logger.error("%s failed", doing, exc_info=exc)
    return f"{doing}: {type(exc).__name__} (details in the server log)"


def local_yesterday() -> datetime.date:
    """Yesterday in Django's ``TIME_ZONE``: the last day an export can contain."""
    tz = timezone.get_default_timezone()
    return yesterday(local_now(tz), tz)


def warehouse_label(config: SmolqwerySettings) -> str:
    """Where the exports go, in words (from settings only: no credential, no client repr)."""
    from .errors import ConfigurationError
    from .warehouses import backend_class

    try:
        return backend_class(config.warehouse).label(config)
    except ConfigurationError:  # said where the warehouse is opened
        return f"warehouse {config.warehouse}"


def _row(status: TableStatus, last: datetime.date) -> TableOverview:
    """One row of the page from the table's status (:mod:`smolqwery.status`)."""
    if not status.table:  # the extractor does not load: its message, and its last run
        exc = status.exception
        return TableOverview(
            status.extractor,
            error=describe_error(exc, f"loading {status.extractor}") if exc else status.error,
            last_run=status.run,
            last_run_state=status.run_state,
        )
    row = TableOverview(
        status.extractor,
        status.table,
        status.kind,
        last_run=status.run,
        last_run_state=status.run_state,
    )
    if not status.read:
        return row
    days = [last - datetime.timedelta(days=i) for i in range(CHART_DAYS - 1, -1, -1)]
    values = [(day, status.rows_by_day.get(day)) for day in days]
    return dataclasses.replace(
        row,
        first_day=status.first_day,
        last_day=status.last_day,
        lag_days=status.lag if status.since else None,
        missing_days=len(status.missing_days),
        first_missing=status.missing_days[0] if status.missing_days else None,
        exported_days=status.exported_days,
        recent_rows=sum(v for _, v in values if v is not None),
        chart=bar_chart(values, label=f"{status.table}: rows per day, last {CHART_DAYS} days"),
    )


def _last_run(live: str | None) -> dict[str, Any]:
    last = ExportRun.objects.order_by("-started_at").first()
    if last is None:
        return {}
    of_run = ExportRun.objects.filter(run_id=last.run_id)
    unfinished = of_run.filter(status=ExportRun.Status.RUNNING).exists()
    return {
        "last_run_id": last.run_id,
        "last_run_started": of_run.order_by("started_at")
        .values_list("started_at", flat=True)
        .first(),
        "failures": list(of_run.filter(status=ExportRun.Status.FAILED)),
        "last_run_running": unfinished and last.run_id == live,
        "last_run_interrupted": unfinished and last.run_id != live,
    }


def build_overview() -> Overview:
    """Read the settings, the status of every configured extractor's table and the last run."""
    last = local_yesterday()
    runs = _last_run(live_run_id())
    try:
        config = get_settings()
        selected = select_extractors(None, config)
    except Exception as exc:
        return Overview(last, "", [], describe_error(exc, "reading the settings"), **runs)
    label = warehouse_label(config)
    common = {"first_date": config.first_date, **runs}
    tz = timezone.get_default_timezone()
    limit = config.status_deadline

    def read(warehouse: Warehouse | None) -> list[TableStatus]:
        return read_statuses(
            selected,
            warehouse,
            first=config.first_date,
            last=last,
            tz=tz,
            deadline=limit,
            stop_at_failure=True,
        )

    if not any(item.table for item in selected):
        return Overview(last, label, [_row(s, last) for s in read(None)], **common)
    try:
        warehouse = get_warehouse(config, deadline=limit, read_only=True)
    except Exception as exc:
        error = describe_error(exc, f"opening the {config.warehouse} warehouse")
        return Overview(last, label, [_row(s, last) for s in read(None)], error, **common)
    try:
        statuses = read(warehouse)
    finally:
        warehouse.close()
    error = ""
    for status in statuses:
        if status.table and status.exception is not None:
            # One failure is enough to know the warehouse is unwell: it was not asked again.
            error = describe_error(status.exception, f"reading the ledger of {status.table}")
    return Overview(last, label, [_row(s, last) for s in statuses], error, **common)


def export_overview_view(
    request: HttpRequest, model_admin: ModelAdmin[ExportRun]
) -> TemplateResponse:
    """The page (wrapped by ``admin_site.admin_view``, which sends non-staff to the login)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    # So that {% url 'admin:...' %} resolves within the site serving the page (custom sites).
    request.current_app = model_admin.admin_site.name
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
