"""Read-only admin: export runs, and the export tables' overview (``admin_views``).

Runs are a log written by ``smolqwery_extract``: nobody adds, edits or deletes them by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.urls import path

from .admin_views import export_overview_view
from .locking import live_run_id, live_run_ids, run_state
from .metrics_views import metrics_view
from .models import ExportRun, ExportUnit

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.urls import URLPattern

    _ExportRunAdminBase = admin.ModelAdmin[ExportRun]
    _ExportUnitAdminBase = admin.ModelAdmin[ExportUnit]
else:
    _ExportRunAdminBase = admin.ModelAdmin
    _ExportUnitAdminBase = admin.ModelAdmin


@admin.register(ExportRun)
class ExportRunAdmin(_ExportRunAdminBase):
    list_display = [
        "started_at",
        "table_name",
        "state",
        "days",
        "rows",
        "first_day",
        "last_day",
        "finished_at",
    ]
    list_filter = ["status", "table_name"]
    search_fields = ["run_id", "table_name", "extractor", "error"]
    date_hierarchy = "started_at"
    change_list_template = "admin/smolqwery/exportrun/change_list.html"

    @admin.display(description="status", ordering="status")
    def state(self, obj: ExportRun) -> str:
        """``interrupted`` for a run marked running whose process is gone (killed)."""
        if obj.status != str(ExportRun.Status.RUNNING):
            return str(obj.status)  # no lock to look at: the common case stays one query
        return run_state(obj, live_run_id())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        overview = self.admin_site.admin_view(self.overview_view)
        metrics = self.admin_site.admin_view(self.metrics_view)
        return [
            path("overview/", overview, name="smolqwery_exportrun_overview"),
            path("metrics/", metrics, name="smolqwery_exportrun_metrics"),
            *super().get_urls(),
        ]

    def overview_view(self, request: HttpRequest) -> Any:
        return export_overview_view(request, self)

    def metrics_view(self, request: HttpRequest) -> Any:
        return metrics_view(request, self)


@admin.register(ExportUnit)
class ExportUnitAdmin(_ExportUnitAdminBase):
    """Units of work (issue 17): queued, running, done or failed; read-only like the runs."""

    # The state next to the table: on a phone the list scrolls sideways and shows only the first
    # columns (tests/test_units_browser.py).
    list_display = [
        "table_name",
        "state",
        "first_day",
        "last_day",
        "attempts",
        "rows",
        "worker",
        "queued_at",
        "finished_at",
    ]
    list_filter = ["status", "table_name"]
    search_fields = ["run_id", "unit_id", "table_name", "extractor", "error", "worker"]
    date_hierarchy = "queued_at"

    @admin.display(description="status", ordering="status")
    def state(self, obj: ExportUnit) -> str:
        """``interrupted`` for a unit marked running whose worker holds no live lease."""
        if obj.status != "running":
            return str(obj.status)
        return "running" if obj.run_id in live_run_ids() else "interrupted"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
