"""Where each export table stands: the one reading shared by the export, ``smolqwery_status``
and the admin page (so that they never disagree).

Definitions, per table (one extractor's table):

* **done days**: the days its ledger records (:func:`done_days`); a table filled by 0.1.3 (rows,
  no ledger) counts its days holding rows until an export adopts them (D20, catalogued in
  ``docs/defects-0.1.3.md``);
* **first day, last day, exported days**: the done days up to yesterday, whatever
  ``SMOLQWERY_FIRST_DATE`` says: what the table holds (a first date moved later does not hide
  the days exported before it);
* **missing days**: the days from ``SMOLQWERY_FIRST_DATE`` (without it: from the first done day)
  to yesterday in ``TIME_ZONE`` that are not done; **lag**: the days from the oldest missing
  one to yesterday, both included, 0 when none is missing;
* **last run**: the newest :class:`~smolqwery.models.ExportRun` *of the table*, whichever
  extractor class wrote it (a class moved or renamed keeps its table and its ledger); of the
  extractor's dotted path only when its table is unknown (it does not load).
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
from .locking import live_run_id, live_run_ids, run_state
from .models import ExportRun, ExportUnit
from .registry import Selected, select_extractors
from .settings import get_settings
from .warehouse_record import require_migrated
from .warehouses import get_warehouse

if TYPE_CHECKING:
    from .schema import TableSchema
    from .warehouses.base import LedgerEntry, Warehouse

__all__ = [
    "DoneDays",
    "TableStatus",
    "done_days",
    "last_run_of",
    "read_statuses",
    "table_status",
]

# The logger of the 1.0 runner module: projects' LOGGING names it (docs/exporting.md).
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
    """Where one table stands (see the module docstring for each definition)."""

    extractor: str
    table: str
    first_day: datetime.date | None = None
    last_day: datetime.date | None = None
    exported_days: int = 0
    missing_days: list[datetime.date] = dataclasses.field(default_factory=list)
    #: Rows the ledger records, all days together (0 for days 0.1.3 wrote, not adopted yet).
    rows: int = 0
    lag: int = 0
    #: ``<state> <local start, to the minute>`` of the last run, for the command and JSON.
    last_run: str = ""
    error: str = ""
    # Not in the command's JSON: what the admin page shows besides.
    kind: str = ""
    #: The day missing days count from: ``SMOLQWERY_FIRST_DATE``, else the first done day.
    since: datetime.date | None = None
    rows_by_day: dict[datetime.date, int] = dataclasses.field(default_factory=dict, repr=False)
    run: ExportRun | None = dataclasses.field(default=None, repr=False)
    #: The last run's status; ``interrupted`` for a run marked running whose process is gone.
    run_state: str = ""
    #: Whether the ledger was read (False: the extractor does not load, or the reading failed).
    read: bool = False
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The command's JSON; counts are null when the ledger was not read (unknown, not 0)."""
        return {
            "extractor": self.extractor,
            "table": self.table,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "exported_days": self.exported_days if self.read else None,
            "missing_days": [d.isoformat() for d in self.missing_days] if self.read else None,
            "rows": self.rows if self.read else None,
            "lag": self.lag if self.read else None,
            "last_run": self.last_run,
            "error": self.error,
        }


def last_run_of(item: Selected) -> ExportRun | None:
    """The newest run of the item's table; of its dotted path when the table is unknown."""
    runs = ExportRun.objects.order_by("-started_at")
    if item.table is not None:
        run: ExportRun | None = runs.filter(table_name=item.table.name).first()
    else:
        run = runs.filter(extractor=item.name[:255], table_name="").first()
    return run


def _new_status(item: Selected, live: str | None) -> TableStatus:
    status = TableStatus(item.name, item.table.name if item.table else "", error=item.error)
    status.exception = item.exception
    if item.table is not None:
        status.kind = item.table.kind.value
    status.run = last_run_of(item)
    if status.run is not None:
        status.run_state = run_state(status.run, live)
        started = timezone.localtime(status.run.started_at)
        status.last_run = f"{status.run_state} {started:%Y-%m-%d %H:%M}"
    return status


def _read(
    status: TableStatus,
    warehouse: Warehouse,
    table: TableSchema,
    first: datetime.date | None,
    last: datetime.date,
    tz: datetime.tzinfo,
) -> None:
    """Fill ``status`` from the table's done days (reads only: no adoption here)."""
    found = done_days(warehouse, table, first, tz)
    exported = sorted(d for d in found.days if d <= last)
    status.since = first or (exported[0] if exported else None)
    status.missing_days = pending_days(status.since, last, found.days) if status.since else []
    if exported:
        status.first_day, status.last_day = exported[0], exported[-1]
    status.exported_days = len(exported)
    status.rows_by_day = {day: entry.rows for day, entry in found.ledger.items()}
    status.rows = sum(status.rows_by_day.values())
    status.lag = (last - status.missing_days[0]).days + 1 if status.missing_days else 0
    status.read = True


def read_statuses(
    selected: Iterable[Selected],
    warehouse: Warehouse | None,
    *,
    first: datetime.date | None,
    last: datetime.date,
    tz: datetime.tzinfo,
    deadline: float,
    stop_at_failure: bool = False,
) -> list[TableStatus]:
    """The status of each selected extractor's table, read from ``warehouse`` (None: unread).

    Monitoring must answer in seconds: once the warehouse has failed to answer in time (half of
    ``deadline``), the remaining tables are reported unread instead of waited for one by one;
    a quick failure (a table not migrated) is that table's own. With ``stop_at_failure`` (the
    admin page, which shows one message for the warehouse) the tables after a failure are left
    unread, without an error of their own.
    """
    live = live_run_id()
    out: list[TableStatus] = []
    failure = ""
    stopped = warehouse is None
    for item in selected:
        status = _new_status(item, live)
        out.append(status)
        if item.table is None or stopped or warehouse is None:
            continue
        if failure:
            status.error = (
                f"not read, SMOLQWERY_STATUS_DEADLINE ({deadline:g} s) spent on an earlier "
                f"table: {failure}"
            )
            continue
        started = time.monotonic()
        try:
            _read(status, warehouse, item.table, first, last, tz)
        except Exception as exc:
            status.error, status.exception = user_message(exc), exc
            if stop_at_failure:
                stopped = True
            elif time.monotonic() - started >= deadline / 2:
                failure = status.error
    return out


def table_status(
    extractors: Iterable[str] | None = None, warehouse: Warehouse | None = None
) -> tuple[datetime.date, list[TableStatus]]:
    """Yesterday, and the status of each configured (or named) extractor's table.

    ``smolqwery_status`` reports this; it needs ``SMOLQWERY_FIRST_DATE`` (missing days and
    lag count from it). The warehouse is opened read-only with ``SMOLQWERY_STATUS_DEADLINE``.
    """
    config = get_settings()
    require_migrated(config)
    tz = timezone.get_default_timezone()
    last = yesterday(local_now(tz), tz)
    first = config.require_first_date()
    own = warehouse is None
    limit = config.status_deadline
    wh = warehouse or get_warehouse(config, deadline=limit, read_only=True)
    try:
        selected = select_extractors(extractors, config)
        statuses = read_statuses(selected, wh, first=first, last=last, tz=tz, deadline=limit)
    finally:
        if own:
            wh.close()
    return last, statuses


@dataclasses.dataclass
class UnitProgress:
    """Where the units of one run stand (``--jobs``, ``--enqueue``, in process): by default
    the run planned last.

    ``counts`` by state: ``queued``, ``running``, ``done``, ``failed``, ``superseded``, and
    ``interrupted`` for a unit marked running whose worker holds no live lease any more (killed;
    a broker redelivers it, or the next run plans its days again).
    """

    run_id: str
    counts: dict[str, int]
    #: ``table first..last (state)`` of every unit not done.
    unfinished: list[str]
    #: Every unit (``smolqwery_status --run``): table, days, state, attempts, rows, worker, error.
    units: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def failed(self) -> int:
        """Units that failed (not published included) or whose worker died."""
        return self.counts.get("failed", 0) + self.counts.get("interrupted", 0)

    def to_dict(self, *, units: bool = False) -> dict[str, Any]:
        shown = {"run_id": self.run_id, "counts": self.counts, "unfinished": self.unfinished}
        return {**shown, "units": self.units} if units else shown


def unit_progress(run_id: str | None = None) -> UnitProgress | None:
    """The units of run ``run_id`` (None or ``last``: the run planned last); None if it has no
    recorded unit."""
    if run_id in (None, "last"):
        latest = ExportUnit.objects.order_by("-queued_at", "-id").first()
        if latest is None:
            return None
        run_id = latest.run_id
    live = live_run_ids()
    counts: dict[str, int] = {}
    unfinished: list[str] = []
    units: list[dict[str, Any]] = []
    for unit in ExportUnit.objects.filter(run_id=run_id).order_by("table_name", "first_day"):
        state = str(unit.status)
        if state == "running" and unit.run_id not in live:
            state = "interrupted"
        counts[state] = counts.get(state, 0) + 1
        days = f"{unit.first_day.isoformat()}..{unit.last_day.isoformat()}"
        if state not in ("done", "superseded"):
            unfinished.append(f"{unit.table_name} {days} ({state})")
        units.append(
            {
                "table": unit.table_name,
                "days": days,
                "state": state,
                "attempts": unit.attempts,
                "rows": unit.rows,
                "worker": unit.worker,
                "error": unit.error,
            }
        )
    if not units:
        return None
    return UnitProgress(run_id, counts, unfinished, units)
