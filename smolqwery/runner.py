"""The export runner: every complete local day of every extractor, exactly once.

For each extractor: find the pending days (from ``SMOLQWERY_FIRST_DATE`` to yesterday in
``TIME_ZONE``, minus the days the warehouse's ledger records), cut them into batches of
consecutive days, and hand each batch to :meth:`Warehouse.replace_days`, which pulls the rows
from ``extract()`` through validation as it writes and commits rows and ledger together. A
failing extractor (bad row, exception, missing table) fails only its own batch — nothing of it
is written — and the other extractors go on (0.1.3 defect D9).

The runner only knows the :class:`~smolqwery.warehouses.base.Warehouse` contract.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from django.utils import timezone

from .arrow_validation import make_converter
from .days import (
    contiguous_batches,
    date_range,
    day_window,
    day_windows,
    local_now,
    pending_days,
    yesterday,
)
from .errors import ConfigurationError, ExportLockedError, SmolqweryError
from .locking import Lease, export_lock, live_run_id, run_state
from .reporting import Progress
from .rows import DEFAULT_CHUNK_ROWS, ExtractorError
from .settings import get_settings, load_extractor_class
from .warehouse_record import record_if_missing, require_unchanged
from .warehouses.base import DayBatch

if TYPE_CHECKING:
    import pyarrow as pa

    from .extractor import BaseExtractor
    from .models import ExportRun
    from .schema import TableSchema
    from .settings import SmolqwerySettings
    from .warehouses.base import LedgerEntry, Warehouse

__all__ = [
    "DoneDays",
    "ExportReport",
    "ExtractorResult",
    "PreviewChunk",
    "TableStatus",
    "done_days",
    "export",
    "plan_days",
    "preview",
    "select_extractors",
    "table_status",
]

logger = logging.getLogger("smolqwery.runner")
#: ``extra`` of a log record the command's output shows already (not repeated on stderr).
REPORTED = {"smolqwery_reported": True}

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


# -- configuration -------------------------------------------------------------------------


@dataclasses.dataclass
class _Selected:
    """A configured extractor, or why it could not be loaded."""

    path: str
    extractor: BaseExtractor[Any] | None = None
    table: TableSchema | None = None
    error: str = ""
    exception: Exception | None = None

    @property
    def name(self) -> str:
        return self.extractor.get_name() if self.extractor is not None else self.path


def _load(path: str) -> _Selected:
    try:
        extractor = load_extractor_class(path)()
        return _Selected(path, extractor, extractor.get_schema())
    except Exception as exc:  # an import or schema error stays this extractor's problem
        return _Selected(path, error=_message(exc), exception=exc)


def select_extractors(
    names: Iterable[str] | None = None, config: SmolqwerySettings | None = None
) -> list[_Selected]:
    """The configured extractors, or those named (dotted path, class path or table name).

    An extractor that fails to import or has a bad schema is returned with its error, so a
    run reports it and goes on with the others. A name matching no configured extractor is a
    :class:`ConfigurationError`: a typo must not silently export nothing.
    """
    config = config or get_settings()
    loaded = [_load(path) for path in config.extractors]
    if not names:
        return loaded
    chosen: list[_Selected] = []
    for wanted in names:
        matches = [
            s
            for s in loaded
            if wanted in (s.path, s.name) or (s.table is not None and s.table.name == wanted)
        ]
        if not matches:
            known = ", ".join(f"{s.path} ({s.table.name})" if s.table else s.path for s in loaded)
            raise ConfigurationError(
                f"no extractor in SMOLQWERY_EXTRACTORS matches {wanted!r}; "
                f"configured: {known or 'none'}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def user_traceback(exc: BaseException | None) -> BaseException | None:
    """The exception whose traceback helps the user: what an extractor's own code raised (not
    our wrapper around it), or an unexpected error; None for our one-line refusals."""
    if isinstance(exc, ExtractorError):
        return exc.__cause__ or exc
    if exc is None or isinstance(exc, SmolqweryError):
        return None
    return exc


def _message(exc: BaseException) -> str:
    """An error for users: our own messages as they are, others prefixed by their type."""
    if isinstance(exc, SmolqweryError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _check_range(
    first: datetime.date,
    last: datetime.date,
    date_from: datetime.date | None,
    date_to: datetime.date | None,
    lag: int,
) -> None:
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


def plan_days(
    warehouse: Warehouse,
    table: TableSchema,
    first: datetime.date,
    last: datetime.date,
    tz: datetime.tzinfo,
    *,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    lag: int = 0,
    run_id: str | None = None,
) -> list[datetime.date]:
    """The days one table needs now, ascending.

    A forced range is taken as it is. Otherwise: every day from ``first`` to ``last`` not done
    (see :func:`done_days`, which adopts a 0.1.3 table's days into the ledger under ``run_id``
    when given), plus the last ``lag`` days again.
    """
    # Adopted first even for a forced range: its ledger entries would hide a 0.1.3 table.
    done = done_days(warehouse, table, first, tz, adopt_run_id=run_id).days
    if date_from is not None and date_to is not None:
        return date_range(date_from, date_to)
    days = set(pending_days(first, last, done))
    if lag:
        days.update(date_range(max(first, last - datetime.timedelta(days=lag - 1)), last))
    return sorted(days)


def _check_table(warehouse: Warehouse, table: TableSchema) -> None:
    """The warehouse table must exist with the layout the extractor produces."""
    from .schema import TableSchema as _TableSchema

    columns = warehouse.get_table_columns(table.name)
    if columns is None:
        raise ConfigurationError(
            f"table {table.name!r} does not exist in the warehouse: run "
            "manage.py smolqwery_make_migrations, then manage.py migrate"
        )
    found = _TableSchema(
        name=table.name, columns=columns, kind=table.kind, date_column=table.date_column
    )
    differences = table.differences(found)
    if differences:
        raise ConfigurationError(
            f"table {table.name!r} in the warehouse does not match the extractor's dataclass ("
            + "; ".join(differences)
            + "): run manage.py smolqwery_make_migrations, then manage.py migrate"
        )


# -- export --------------------------------------------------------------------------------


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
    """Export every pending day of the configured (or named) extractors.

    ``date_from``/``date_to`` re-export that range (both days included) whatever the ledger
    says, ``date_from`` alone up to yesterday; ``lag`` re-exports the last ``lag`` days on top
    of the pending ones (late data). Both replace days atomically, never duplicating rows.
    Raises :class:`ExportLockedError` when another export holds the lock (after waiting for it
    with ``wait``) and
    :class:`ConfigurationError` for settings or arguments that make any export impossible;
    an extractor's own failure is in the report instead.
    """
    from .warehouses import get_warehouse

    config = get_settings()
    tz = timezone.get_default_timezone()
    last = yesterday(local_now(tz), tz)
    first = config.require_first_date()
    _check_range(first, last, date_from, date_to, lag)
    if date_from is not None and date_to is None:
        date_to = last  # --from alone: up to yesterday (running totals after late data)
    selected = select_extractors(extractors, config)
    progress = progress or Progress()
    report = ExportReport(run_id=uuid.uuid4().hex, last_day=last)

    require_unchanged(config)  # no export into a new place or in another time zone
    record_if_missing(config)
    own = warehouse is None
    wh = warehouse or get_warehouse(config)
    try:
        with export_lock(report.run_id, config.lock_timeout, wait=wait) as lease:
            logger.info(
                "export run %s: %d extractor(s), days up to %s",
                report.run_id,
                len(selected),
                last.isoformat(),
            )
            for item in selected:
                result = _export_one(
                    item,
                    wh,
                    lease,
                    report.run_id,
                    first=first,
                    last=last,
                    tz=tz,
                    batch_days=config.batch_days,
                    date_from=date_from,
                    date_to=date_to,
                    lag=lag,
                    progress=progress,
                    chunk_rows=chunk_rows,
                )
                report.results.append(result)
    finally:
        progress.close()
        if own:
            wh.close()
    logger.info(
        "export run %s finished: %d extractor(s), %d failed",
        report.run_id,
        len(report.results),
        len(report.failed),
    )
    return report


def _start_record(run_id: str, item: _Selected) -> ExportRun:
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


def _export_one(
    item: _Selected,
    warehouse: Warehouse,
    lease: Lease,
    run_id: str,
    *,
    first: datetime.date,
    last: datetime.date,
    tz: datetime.tzinfo,
    batch_days: int,
    date_from: datetime.date | None,
    date_to: datetime.date | None,
    lag: int,
    progress: Progress,
    chunk_rows: int,
) -> ExtractorResult:
    started = time.monotonic()
    result = ExtractorResult(extractor=item.name, table=item.table.name if item.table else "")
    record = _start_record(run_id, item)
    try:
        if item.extractor is None or item.table is None:
            raise item.exception or ConfigurationError(item.error)  # its own traceback
        extractor, table = item.extractor, item.table
        _check_table(warehouse, table)
        days = plan_days(
            warehouse,
            table,
            first,
            last,
            tz,
            date_from=date_from,
            date_to=date_to,
            lag=lag,
            run_id=run_id,
        )
        progress.extractor_started(item.name, table.name, len(days))
        logger.info("%s: %d day(s) to export into %s", item.name, len(days), table.name)
        converter = make_converter(extractor, table, chunk_rows=chunk_rows)

        def on_day(day: datetime.date, rows: int) -> None:
            progress.day_done(item.name, table.name, day, rows)

        for batch_list in contiguous_batches(days, batch_days):
            counts: dict[datetime.date, int] = {}
            windows = day_windows(batch_list, tz)
            chunks = converter.record_batches(windows, counts, on_day)
            try:
                warehouse.replace_days(
                    DayBatch(
                        table=table,
                        windows=windows,
                        chunks=chunks,
                        run_id=run_id,
                        row_counts=counts,
                    )
                )
            finally:
                chunks.close()  # type: ignore[attr-defined]  # frees the extractor's cursor
            rows = sum(counts.values())
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


def _fail(
    result: ExtractorResult,
    record: ExportRun,
    exc: BaseException,
    started: float,
    error: str | None = None,
) -> None:
    result.status = "failed"
    result.error = error or _message(exc)
    result.exception = user_traceback(exc)
    result.seconds = time.monotonic() - started
    try:
        _save_record(record, result, final=True)
    except Exception:  # the database may be what failed; the log still says why
        logger.exception("could not record the failure of %s", result.extractor)


# -- dry run -------------------------------------------------------------------------------


@dataclasses.dataclass
class PreviewChunk:
    """Rows of one day of one extractor, exactly as an export would write them."""

    extractor: str
    table: TableSchema
    day: datetime.date
    rows: list[dict[str, Any]]


@dataclasses.dataclass
class PreviewFailure:
    """An extractor whose rows an export would refuse (or could not load)."""

    extractor: str
    table: str
    error: str
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)


def preview(
    first: datetime.date,
    last: datetime.date,
    extractors: Iterable[str] | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[PreviewChunk | PreviewFailure]:
    """The rows of ``first``..``last`` (both included), validated, without writing anything.

    Neither the warehouse nor the database is touched: no ledger, no lock, no ExportRun.
    A day without rows yields a chunk with no rows; an extractor failing yields a failure and
    the others go on.
    """
    if first > last:
        raise ConfigurationError(
            f"the range is empty: first day {first.isoformat()} is after last day "
            f"{last.isoformat()}"
        )
    tz = timezone.get_default_timezone()
    for item in select_extractors(extractors):
        if item.extractor is None or item.table is None:
            yield PreviewFailure(item.name, "", item.error, user_traceback(item.exception))
            continue
        converter = make_converter(item.extractor, item.table, chunk_rows=chunk_rows)
        try:
            for day in date_range(first, last):
                counts: dict[datetime.date, int] = {}
                batches: list[pa.RecordBatch] = list(
                    converter.record_batches([day_window(day, tz)], counts)
                )
                rows = [row for batch in batches for row in batch.to_pylist()]
                yield PreviewChunk(item.name, item.table, day, rows)
        except Exception as exc:
            shown = user_traceback(exc)
            logger.error("%s failed: %s", item.name, _message(exc), exc_info=shown, extra=REPORTED)
            yield PreviewFailure(item.name, item.table.name, _message(exc), shown)


# -- status --------------------------------------------------------------------------------


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
                status.error = _message(exc)
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
