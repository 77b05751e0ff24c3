"""Where each export table stands: the one reading shared by the export, ``smolqwery_status``
and the admin page.

The ledger says which days are done (:func:`done_days`; a table filled by 0.1.3 counts its days
holding rows until an export adopts them, D20 in ``docs/defects-0.1.3.md``).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .days import local_now, pending_days, yesterday
from .errors import user_message
from .locking import live_run_id, run_state
from .registry import select_extractors
from .settings import get_settings

if TYPE_CHECKING:
    from .schema import TableSchema
    from .warehouses.base import LedgerEntry, Warehouse

__all__ = ["DoneDays", "TableStatus", "done_days", "table_status"]

logger = logging.getLogger("smolqwery.runner")


@dataclasses.dataclass(frozen=True)
class DoneDays:
    """Which days of a table are done: its ledger, plus days 0.1.3 wrote and nobody adopted."""

    #: The ledger's entries (after adoption, when the caller adopts).
    ledger: dict[datetime.date, LedgerEntry]
    #: Every day counting as exported: the ledger's, and legacy days not (yet) in it.
    days: frozenset[datetime.date]


def done_days(
    warehouse: Warehouse,
    table: TableSchema,
    first: datetime.date | None,
    tz: datetime.tzinfo,
    *,
    adopt_run_id: str | None = None,
) -> DoneDays:
    """The days of ``table`` that are exported: the one reading shared by export, status, admin.

    The ledger says it. Every day we export is written with its ledger entry in one
    transaction, so a table with rows and no ledger entry at all was filled by smolqwery 0.1.3
    (which had no ledger); only then, and only for the days that hold rows, the table counts
    as exported as well: a day without rows is simply missing, and exporting it can only add
    what 0.1.3 missed. Once the ledger has any entry for the table, days outside it are missing,
    whatever the shape of the ledger (a moved ``SMOLQWERY_FIRST_DATE``, a ``--from/--to`` run
    first). An export (``adopt_run_id`` given) records those days in the ledger with their row
    counts, so the scan happens once per table, ever (0.1.3 defect D20). Without
    ``adopt_run_id`` nothing is written (``smolqwery_status``, the admin page).
    """
    ledger = warehouse.exported_days(table.name)
    last = yesterday(local_now(tz), tz)
    if first is None or ledger or first > last:
        return DoneDays(ledger, frozenset(ledger))
    legacy = warehouse.legacy_days(table, tz, first, last)
    if legacy and adopt_run_id is not None:
        adopted = warehouse.adopt_legacy_days(table, first, last, tz, adopt_run_id)
        logger.info(
            "%s: adopted %d day(s) written by smolqwery 0.1.3 (%s..%s) into the ledger",
            table.name,
            adopted,
            legacy[0].isoformat(),
            legacy[-1].isoformat(),
        )
        ledger = warehouse.exported_days(table.name)
        return DoneDays(ledger, frozenset(ledger))
    return DoneDays(ledger, frozenset(ledger).union(legacy))


@dataclasses.dataclass
class TableStatus:
    """Where one table stands, for ``smolqwery_status`` and monitoring."""

    extractor: str
    table: str
    first_day: datetime.date | None = None
    last_day: datetime.date | None = None
    exported_days: int = 0
    missing_days: list[datetime.date] = dataclasses.field(default_factory=list)
    rows: int = 0
    lag: int = 0
    last_run: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "extractor": self.extractor,
            "table": self.table,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "exported_days": self.exported_days,
            "missing_days": [d.isoformat() for d in self.missing_days],
            "rows": self.rows,
            "lag": self.lag,
            "last_run": self.last_run,
            "error": self.error,
        }


def table_status(
    extractors: Iterable[str] | None = None, warehouse: Warehouse | None = None
) -> tuple[datetime.date, list[TableStatus]]:
    """Yesterday, and per table: exported range, missing days, rows, lag behind yesterday.

    ``lag`` counts the days from the oldest missing one to yesterday, both included (0 when
    every day is exported): it is how far behind the table is, gaps included.
    """
    from .models import ExportRun
    from .warehouses import get_warehouse

    config = get_settings()
    tz = timezone.get_default_timezone()
    last = yesterday(local_now(tz), tz)
    first = config.require_first_date()
    own = warehouse is None
    # Monitoring must answer in seconds: a short deadline of its own, read-only, and once the
    # warehouse has failed to answer in time the remaining tables are reported unread instead
    # of waited for one by one. A quick failure (a table not migrated) is that table's own.
    limit = config.status_deadline
    wh = warehouse or get_warehouse(config, deadline=limit, read_only=True)
    out: list[TableStatus] = []
    live = live_run_id()
    failure = ""
    try:
        for item in select_extractors(extractors, config):
            status = TableStatus(item.name, item.table.name if item.table else "")
            out.append(status)
            run = (
                ExportRun.objects.filter(extractor=item.name[:255]).order_by("-started_at").first()
            )
            if run is not None:
                status.last_run = (
                    f"{run_state(run, live)} {timezone.localtime(run.started_at):%Y-%m-%d %H:%M}"
                )
            if item.table is None:
                status.error = item.error
                continue
            if failure:
                status.error = (
                    f"not read, SMOLQWERY_STATUS_DEADLINE ({limit:g} s) spent on an earlier "
                    f"table: {failure}"
                )
                continue
            started = time.monotonic()
            try:
                found = done_days(wh, item.table, first, tz)  # reads only: no adoption here
            except Exception as exc:
                status.error = user_message(exc)
                if time.monotonic() - started >= limit / 2:
                    failure = status.error
                continue
            ledger, done = found.ledger, found.days
            status.missing_days = pending_days(first, last, done)
            exported = sorted(d for d in done if first <= d <= last) or sorted(done)
            if exported:
                status.first_day, status.last_day = exported[0], exported[-1]
            status.exported_days = len([d for d in done if first <= d <= last])
            status.rows = sum(e.rows for e in ledger.values())
            if status.missing_days:
                status.lag = (last - status.missing_days[0]).days + 1
    finally:
        if own:
            wh.close()
    return last, out
