"""The export: every complete local day of every extractor, exactly once.

:class:`Exporter` is to ``smolqwery_extract`` what Django's ``MigrationExecutor`` is to
``migrate``: it holds one run's state (settings, time zone, days, warehouse, lease, report) and
tells what happens through :class:`Progress` callbacks; it never prints. For each extractor it
asks :mod:`smolqwery.status` which days are pending (from ``SMOLQWERY_FIRST_DATE`` to yesterday
in ``TIME_ZONE``, minus the days the warehouse's ledger records), cuts them into batches of
consecutive days, and hands each batch to :meth:`Warehouse.replace_days`, which pulls the rows
from ``extract()`` through validation as it writes and commits rows and ledger together. A
failing extractor (bad row, exception, missing table) fails only its own batch — nothing of it
is written — and the other extractors go on (0.1.3 defect D9; defects are catalogued in
``docs/defects-0.1.3.md``).

The exporter only knows the :class:`~smolqwery.warehouses.base.Warehouse` contract.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from django.utils import timezone

from .days import local_now, yesterday
from .errors import (
    REPORTED,
    ConfigurationError,
    ExportLockedError,
    user_message,
    user_traceback,
)
from .history import prune_history
from .locking import Lease, export_lock
from .registry import Selected, select_extractors
from .rows import DEFAULT_CHUNK_ROWS
from .settings import get_settings
from .units import check_table, plan_days, run_unit, units_of
from .warehouse_record import record_if_missing, require_migrated, require_unchanged
from .warehouses import get_warehouse

if TYPE_CHECKING:
    from .models import ExportRun
    from .settings import SmolqwerySettings
    from .warehouses.base import Warehouse

__all__ = [
    "ExportReport",
    "Exporter",
    "ExtractorResult",
    "Progress",
    "check_table",
    "export",
    "plan_days",
]

# The logger of the 1.0 runner module: projects' LOGGING names it (docs/exporting.md).
logger = logging.getLogger("smolqwery.runner")

Status = Literal["success", "failed"]


@dataclasses.dataclass
class ExtractorResult:
    """How one extractor's part of a run went."""

    extractor: str
    table: str = ""
    status: Status = "success"
    days: int = 0
    rows: int = 0
    first_day: datetime.date | None = None
    last_day: datetime.date | None = None
    seconds: float = 0.0
    error: str = ""
    #: What failed, for ``--traceback`` and ``-v 2`` (None on success or a plain refusal).
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def add_batch(self, days: Sequence[datetime.date], rows: int) -> None:
        self.days += len(days)
        self.rows += rows
        self.first_day = min(days[0], self.first_day or days[0])
        self.last_day = max(days[-1], self.last_day or days[-1])


@dataclasses.dataclass
class ExportReport:
    """The outcome of :func:`export`: one result per extractor."""

    run_id: str
    last_day: datetime.date
    results: list[ExtractorResult] = dataclasses.field(default_factory=list)

    @property
    def failed(self) -> list[ExtractorResult]:
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failed


class Progress:
    """Callbacks of a running export (:mod:`smolqwery.reporting` shows them). Shows nothing."""

    def extractor_started(self, name: str, table: str, days: int) -> None:
        """An extractor has ``days`` days to export (0 when up to date)."""

    def day_done(self, name: str, table: str, day: datetime.date, rows: int) -> None:
        """A day's rows were all read and checked (written once its batch commits)."""

    def batch_done(
        self, name: str, table: str, first: datetime.date, last: datetime.date, rows: int
    ) -> None:
        """A batch of days was committed to the warehouse."""

    def extractor_finished(self, result: ExtractorResult) -> None:
        """An extractor is done, successfully or not."""

    def close(self) -> None:
        """The run is over (stop a live display)."""

    def note(self, text: str) -> None:
        """A message of the command (the summary, say), shown like the progress."""


def check_range(
    first: datetime.date,
    last: datetime.date,
    date_from: datetime.date | None,
    date_to: datetime.date | None,
    lag: int,
) -> None:
    """Refuse a run whose days make no sense, before anything is opened."""
    if first > last:
        raise ConfigurationError(
            f"SMOLQWERY_FIRST_DATE is {first.isoformat()}, after yesterday "
            f"({last.isoformat()} in TIME_ZONE): there is no complete day to export yet; "
            "set it to a past day"
        )
    if date_to is not None and date_from is None:
        raise ConfigurationError("--to needs --from: give the first day of the range too")
    if date_from is not None:
        if date_to is None and date_from > last:
            raise ConfigurationError(
                f"--from {date_from.isoformat()} is not a complete day yet: the last complete "
                f"day in TIME_ZONE is {last.isoformat()}"
            )
        if date_to is not None and date_from > date_to:
            raise ConfigurationError(
                f"the range to re-export is empty: --from {date_from.isoformat()} is after "
                f"--to {date_to.isoformat()}"
            )
        if date_to is not None and date_to > last:
            raise ConfigurationError(
                f"--to {date_to.isoformat()} is not a complete day yet: the last complete day "
                f"in TIME_ZONE is {last.isoformat()}"
            )
        if lag:
            raise ConfigurationError("--lag cannot be combined with --from/--to")
    if lag < 0:
        raise ConfigurationError(f"--lag must be zero or more days, got {lag}")


class Exporter:
    """One export run: its days, its warehouse and its lease, reported through ``progress``.

    ``date_from``/``date_to`` re-export that range (both days included) whatever the ledger
    says, ``date_from`` alone up to yesterday; ``lag`` re-exports the last ``lag`` days on top
    of the pending ones (late data). Arguments are checked when the exporter is made
    (:class:`ConfigurationError`), before anything is opened.
    """

    def __init__(
        self,
        *,
        date_from: datetime.date | None = None,
        date_to: datetime.date | None = None,
        lag: int = 0,
        progress: Progress | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        config: SmolqwerySettings | None = None,
    ) -> None:
        self.config = config or get_settings()
        self.tz = timezone.get_default_timezone()
        self.last = yesterday(local_now(self.tz), self.tz)
        self.first = self.config.require_first_date()
        check_range(self.first, self.last, date_from, date_to, lag)
        if date_from is not None and date_to is None:
            date_to = self.last  # --from alone: up to yesterday (running totals after late data)
        self.date_from, self.date_to, self.lag = date_from, date_to, lag
        self.progress = progress or Progress()
        self.chunk_rows = chunk_rows
        self.report = ExportReport(run_id=uuid.uuid4().hex, last_day=self.last)

    @property
    def run_id(self) -> str:
        return self.report.run_id

    def run(
        self,
        selected: Sequence[Selected],
        warehouse: Warehouse | None = None,
        *,
        wait: bool = False,
    ) -> ExportReport:
        """Export ``selected`` under the export lock (waiting for it with ``wait``).

        Raises :class:`ExportLockedError` when another export holds the lock; an extractor's
        own failure is in the report instead. A warehouse given is left open.
        """
        require_migrated(self.config)
        require_unchanged(self.config)  # no export into a new place or in another time zone
        record_if_missing(self.config)
        own = warehouse is None
        wh = warehouse or get_warehouse(self.config)
        try:
            with export_lock(self.run_id, self.config.lock_timeout, wait=wait) as lease:
                logger.info(
                    "export run %s: %d extractor(s), days up to %s",
                    self.run_id,
                    len(selected),
                    self.last.isoformat(),
                )
                prune_history(self.config.history_days)  # SMOLQWERY_HISTORY_DAYS
                for item in selected:
                    self.report.results.append(self.export_one(item, wh, lease))
        finally:
            self.progress.close()
            if own:
                wh.close()
        logger.info(
            "export run %s finished: %d extractor(s), %d failed",
            self.run_id,
            len(self.report.results),
            len(self.report.failed),
        )
        return self.report

    def export_one(self, item: Selected, warehouse: Warehouse, lease: Lease) -> ExtractorResult:
        """One extractor's pending days, batch by batch; its failure stays its own."""
        progress = self.progress
        started = time.monotonic()
        result = ExtractorResult(extractor=item.name, table=item.table.name if item.table else "")
        record = _start_record(self.run_id, item)
        try:
            if item.extractor is None or item.table is None:
                raise item.exception or ConfigurationError(item.error)  # its own traceback
            extractor, table = item.extractor, item.table
            check_table(warehouse, table)
            days = plan_days(
                warehouse,
                table,
                self.first,
                self.last,
                self.tz,
                date_from=self.date_from,
                date_to=self.date_to,
                lag=self.lag,
                run_id=self.run_id,
            )
            progress.extractor_started(item.name, table.name, len(days))
            logger.info("%s: %d day(s) to export into %s", item.name, len(days), table.name)
            forced = self.date_from is not None or self.lag > 0

            def on_day(day: datetime.date, rows: int) -> None:
                progress.day_done(item.name, table.name, day, rows)

            for unit in units_of(item, days, self.config.batch_days, self.run_id, forced=forced):
                # The one function every way of exporting runs a unit with (smolqwery.units).
                done = run_unit(
                    unit,
                    warehouse=warehouse,
                    extractor=extractor,
                    config=self.config,
                    on_day=on_day,
                    chunk_rows=self.chunk_rows,
                    log_failure=False,  # logged below, with the extractor's name
                )
                if done.status == "locked":
                    raise ExportLockedError(done.error)
                if done.failed:
                    assert done.exception is not None
                    raise done.exception
                batch_list = unit.days
                rows = done.rows
                result.add_batch(batch_list, rows)
                _save_record(record, result, final=False)
                progress.batch_done(item.name, table.name, batch_list[0], batch_list[-1], rows)
                logger.info(
                    "%s: exported %s..%s (%d row(s))",
                    item.name,
                    batch_list[0].isoformat(),
                    batch_list[-1].isoformat(),
                    rows,
                )
                lease.renew()
        except ExportLockedError as exc:
            _fail(result, record, exc, started)
            progress.extractor_finished(result)
            raise
        except Exception as exc:
            _fail(result, record, exc, started)
            logger.error(
                "%s failed: %s", item.name, result.error, exc_info=result.exception, extra=REPORTED
            )
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: record, then stop
            _fail(result, record, exc, started, error=f"interrupted ({type(exc).__name__})")
            raise
        else:
            result.seconds = time.monotonic() - started
            _save_record(record, result, final=True)
        progress.extractor_finished(result)
        return result


def export(
    extractors: Iterable[str] | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    lag: int = 0,
    progress: Progress | None = None,
    warehouse: Warehouse | None = None,
    *,
    wait: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ExportReport:
    """Export every pending day of the configured (or named) extractors (see :class:`Exporter`).

    Raises :class:`ExportLockedError` when another export holds the lock (after waiting for it
    with ``wait``) and :class:`ConfigurationError` for settings or arguments that make any
    export impossible; an extractor's own failure is in the report instead.
    """
    exporter = Exporter(
        date_from=date_from, date_to=date_to, lag=lag, progress=progress, chunk_rows=chunk_rows
    )
    selected = select_extractors(extractors, exporter.config)
    return exporter.run(selected, warehouse, wait=wait)


def _start_record(run_id: str, item: Selected) -> ExportRun:
    from .models import ExportRun

    record: ExportRun = ExportRun.objects.create(
        run_id=run_id,
        extractor=item.name[:255],
        table_name=item.table.name if item.table else "",
        started_at=timezone.now(),
        status=ExportRun.Status.RUNNING,
    )
    return record


def _save_record(record: ExportRun, result: ExtractorResult, *, final: bool) -> None:
    record.days = result.days
    record.rows = result.rows
    record.first_day = result.first_day
    record.last_day = result.last_day
    fields = ["days", "rows", "first_day", "last_day"]
    if final:
        record.status = result.status
        record.error = result.error
        record.finished_at = timezone.now()
        fields += ["status", "error", "finished_at"]
    record.save(update_fields=fields)


def _fail(
    result: ExtractorResult,
    record: ExportRun,
    exc: BaseException,
    started: float,
    error: str | None = None,
) -> None:
    result.status = "failed"
    result.error = error or user_message(exc)
    result.exception = user_traceback(exc)
    result.seconds = time.monotonic() - started
    try:
        _save_record(record, result, final=True)
    except Exception:  # the database may be what failed; the log still says why
        logger.exception("could not record the failure of %s", result.extractor)
