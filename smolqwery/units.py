"""Units of work: one table, one contiguous batch of days — planned once, run by one function.

The planner (:func:`plan_units`) cuts every pending day of every extractor into units;
:func:`run_unit` runs one. The in-process exporter, ``smolqwery_extract --jobs N`` and the
Celery task (:mod:`smolqwery.tasks`) all call :func:`run_unit`, so there is one definition of
what running a unit means (docs/scaling.md):

- it holds the lease of its table (:func:`smolqwery.locking.table_lock`): units of different
  tables run at the same time, units of one table take turns;
- it replaces its days atomically with their ledger entries (``Warehouse.replace_days``), so a
  unit run twice leaves one copy; a unit that is not forced and whose days the ledger already
  records is skipped without extracting (a duplicate message, a redelivery after the commit;
  the ledger is read for that only when the unit, or another unit of its table on its days,
  was attempted before: one warehouse query less per unit otherwise);
- on DuckDB, a file with one writer, a unit run beside others (``spool=True``) extracts into a
  local Arrow file first, then writes under the DuckDB writer lease: extraction runs in
  parallel, writes take turns, nobody meets DuckDB's own file lock;
- its :class:`~smolqwery.models.ExportUnit` row says queued, running, done or failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from django.utils import timezone

from .arrow_validation import make_converter
from .days import contiguous_batches, date_range, day_windows, pending_days
from .errors import (
    REPORTED,
    ConfigurationError,
    ExportLockedError,
    user_message,
    user_traceback,
)
from .locking import DUCKDB_WRITER_LOCK, Lease, export_lock, table_lock
from .models import ExportUnit
from .registry import Selected, load_extractor_class
from .rows import DEFAULT_CHUNK_ROWS
from .schema import TableSchema
from .settings import get_settings
from .status import done_days
from .warehouses import get_warehouse
from .warehouses.base import DayBatch

if TYPE_CHECKING:
    import pyarrow as pa

    from .interface import BaseExtractor
    from .settings import SmolqwerySettings
    from .warehouses.base import Warehouse

__all__ = [
    "DUCKDB_WRITER_LOCK",
    "PlanFailure",
    "Unit",
    "UnitResult",
    "check_table",
    "mark_not_published",
    "plan_days",
    "plan_units",
    "record_units",
    "run_unit",
    "run_unit_by_id",
    "supersede_earlier",
    "unit_id_of",
    "writer_turn",
]

logger = logging.getLogger("smolqwery.units")

#: The lease under which a shared ledger's entries move to per-table ledgers.
LEDGER_LOCK = "smolqwery.ledger"
#: Seconds between two attempts at a busy table or writer lease: units are short.
UNIT_POLL = 0.5

UnitStatus = Literal["done", "skipped", "failed", "locked"]
#: ``ExportUnit.status`` values, as plain strings.
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
SUPERSEDED = "superseded"


@dataclasses.dataclass(frozen=True)
class Unit:
    """One table, one contiguous batch of days, of one plan (``run_id``)."""

    unit_id: str
    run_id: str
    extractor: str
    extractor_path: str
    table: str
    first_day: datetime.date
    last_day: datetime.date
    #: Replaced even when the ledger records the days (``--from/--to``, ``--lag``).
    forced: bool = False

    @property
    def days(self) -> list[datetime.date]:
        return date_range(self.first_day, self.last_day)

    @classmethod
    def from_record(cls, record: ExportUnit) -> Unit:
        return cls(
            unit_id=record.unit_id,
            run_id=record.run_id,
            extractor=record.extractor,
            extractor_path=record.extractor_path,
            table=record.table_name,
            first_day=record.first_day,
            last_day=record.last_day,
            forced=record.forced,
        )

    def describe(self) -> str:
        return f"{self.table} {self.first_day.isoformat()}..{self.last_day.isoformat()}"


def unit_id_of(run_id: str, table: str, first: datetime.date, last: datetime.date) -> str:
    """Deterministic per plan, table and days: the same unit sent twice has one id."""
    digest = hashlib.sha256(f"{run_id}\x1f{table}\x1f{first}\x1f{last}".encode()).hexdigest()
    return digest[:40]


@dataclasses.dataclass
class UnitResult:
    """How running one unit went."""

    unit: Unit
    status: UnitStatus
    rows: int = 0
    #: Rows per day of the days written (empty unless ``done``).
    counts: dict[datetime.date, int] = dataclasses.field(default_factory=dict)
    note: str = ""
    error: str = ""
    seconds: float = 0.0
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


# -- planning ------------------------------------------------------------------------------


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
    (see :func:`smolqwery.status.done_days`, which adopts a 0.1.3 table's days into the ledger
    under ``run_id`` when given), plus the last ``lag`` days again.
    """
    prepare_ledger(warehouse, table.name, run_id)
    # Adopted first even for a forced range: its ledger entries would hide a 0.1.3 table.
    done = done_days(warehouse, table, first, tz, adopt_run_id=run_id).days
    if date_from is not None and date_to is not None:
        return date_range(date_from, date_to)
    days = set(pending_days(first, last, done))
    if lag:
        days.update(date_range(max(first, last - datetime.timedelta(days=lag - 1)), last))
    return sorted(days)


def prepare_ledger(warehouse: Warehouse, table: str, run_id: str | None) -> None:
    """Move the table's entries out of a shared ledger written before 1.0 (backends with a
    ledger per table), one table at a time across processes (``smolqwery.ledger`` lease)."""
    if not warehouse.ops.capabilities.ledger_per_table:
        return
    with export_lock(
        run_id or "planner",
        get_settings().lock_timeout,
        wait=True,
        name=LEDGER_LOCK,
        poll=UNIT_POLL,
    ):
        warehouse.migrate_ledger(table)


def check_table(warehouse: Warehouse, table: TableSchema) -> None:
    """The warehouse table must exist with the layout the extractor produces (the comparison
    every backend shares: :meth:`Warehouse.check_layout`)."""
    warehouse.check_layout(table)


@dataclasses.dataclass
class PlanFailure:
    """An extractor that could not be planned (not loadable, table missing or different)."""

    extractor: str
    table: str
    error: str
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)


def units_of(
    item: Selected,
    days: Sequence[datetime.date],
    batch_days: int,
    run_id: str,
    *,
    forced: bool,
) -> list[Unit]:
    """One extractor's days cut into units of contiguous days."""
    assert item.table is not None
    return [
        Unit(
            unit_id=unit_id_of(run_id, item.table.name, batch[0], batch[-1]),
            run_id=run_id,
            extractor=item.name[:255],
            extractor_path=item.path,
            table=item.table.name,
            first_day=batch[0],
            last_day=batch[-1],
            forced=forced,
        )
        for batch in contiguous_batches(list(days), batch_days)
    ]


def plan_units(
    selected: Iterable[Selected],
    warehouse: Warehouse,
    *,
    first: datetime.date,
    last: datetime.date,
    tz: datetime.tzinfo,
    batch_days: int,
    run_id: str,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    lag: int = 0,
) -> tuple[list[Unit], list[PlanFailure]]:
    """Every unit of the run, round-robin over tables (N workers start on N tables), and the
    extractors that could not be planned."""
    per_table: list[list[Unit]] = []
    failures: list[PlanFailure] = []
    forced = date_from is not None or lag > 0
    for item in selected:
        try:
            if item.extractor is None or item.table is None:
                raise item.exception or ConfigurationError(item.error)
            check_table(warehouse, item.table)
            days = plan_days(
                warehouse,
                item.table,
                first,
                last,
                tz,
                date_from=date_from,
                date_to=date_to,
                lag=lag,
                run_id=run_id,
            )
        except Exception as exc:
            table = item.table.name if item.table else ""
            failures.append(PlanFailure(item.name, table, user_message(exc), user_traceback(exc)))
            continue
        per_table.append(units_of(item, days, batch_days, run_id, forced=forced))
    interleaved = [
        queue[i] for i in range(max(map(len, per_table), default=0)) for queue in per_table
        if i < len(queue)
    ]  # fmt: skip
    return interleaved, failures


def record_units(units: Sequence[Unit], *, supersede: bool = True) -> None:
    """Record planned units as queued and (``supersede``) mark superseded the queued units of
    earlier plans they cover (:func:`supersede_earlier`). ``--enqueue`` supersedes only once
    the units are published: a plan whose messages never reached the broker replaces nothing."""
    now = timezone.now()
    if supersede:
        supersede_earlier(units)
    ExportUnit.objects.bulk_create(
        [
            ExportUnit(
                unit_id=u.unit_id,
                run_id=u.run_id,
                extractor=u.extractor,
                extractor_path=u.extractor_path,
                table_name=u.table,
                first_day=u.first_day,
                last_day=u.last_day,
                forced=u.forced,
                queued_at=now,
            )
            for u in units
        ],
        ignore_conflicts=True,
    )


def supersede_earlier(units: Sequence[Unit]) -> None:
    """Mark superseded the queued units of earlier plans whose every day ``units`` (one plan)
    cover again, as strongly (a forced unit only by forced units): a late message for one is
    then skipped. Any other queued unit keeps its place, so a re-export asked with
    ``--from/--to`` is never dropped by the next cron run."""
    if not units:
        return
    covered: dict[str, list[Unit]] = {}
    for u in units:
        covered.setdefault(u.table, []).append(u)
    earlier = ExportUnit.objects.filter(status=QUEUED, table_name__in=covered).exclude(
        run_id=units[0].run_id
    )
    superseded = [
        r.unit_id
        for r in earlier
        if _covers(covered[r.table_name], r.first_day, r.last_day, forced=r.forced)
    ]
    ExportUnit.objects.filter(unit_id__in=superseded, status=QUEUED).update(
        status=SUPERSEDED, finished_at=timezone.now()
    )


def mark_not_published(units: Sequence[Unit], reason: str) -> None:
    """Mark failed the queued units whose message never reached the queue: nobody would run
    them, and status, the admin and ``--wait`` must not show them waiting. Their days stay out
    of the ledger, so the next run plans them again. (Should a message have reached the broker
    after all, its worker runs the unit anyway: a failed unit is not a finished one.)"""
    ExportUnit.objects.filter(unit_id__in=[u.unit_id for u in units], status=QUEUED).update(
        status=FAILED, error=reason, finished_at=timezone.now()
    )


# -- running -------------------------------------------------------------------------------


def run_unit_by_id(
    unit_id: str, *, spool: bool = True, wait_timeout: float | None = None
) -> UnitResult | None:
    """Run the recorded unit ``unit_id`` (what a worker receives); None if no such unit.
    ``wait_timeout``: seconds to wait for a busy table (default: the lease timeout)."""
    record = ExportUnit.objects.filter(unit_id=unit_id).first()
    if record is None:
        logger.warning("unit %s is not recorded (deleted?): nothing to do", unit_id)
        return None
    return run_unit(Unit.from_record(record), spool=spool, queued=True, wait_timeout=wait_timeout)


def run_unit(
    unit: Unit,
    *,
    warehouse: Warehouse | None = None,
    extractor: BaseExtractor[Any] | None = None,
    config: SmolqwerySettings | None = None,
    spool: bool = False,
    wait: bool = True,
    on_day: Callable[[datetime.date, int], None] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    queued: bool = False,
    wait_timeout: float | None = None,
    log_failure: bool = True,
) -> UnitResult:
    """Run one unit under its table's lease: replace its days with their ledger entries.

    Never raises for the unit's own failure (a bad row, the warehouse down): the result says
    ``failed`` and the :class:`ExportUnit` row records why. ``locked``: the table's lease stayed
    held by a live process for ``wait_timeout`` seconds (default ``SMOLQWERY_LOCK_TIMEOUT``;
    ``wait``), or at once (without ``wait``); nothing was done. ``spool``: extract into a
    local file before writing (for units running beside each other; DuckDB's writes then take
    turns). ``queued``: the unit came from a queue, and is skipped if a later plan superseded
    it (a run calling this directly runs its own units whatever others plan meanwhile).
    ``log_failure=False``: the caller logs the failure itself (once in the project's logs, not
    twice).
    """
    config = config or get_settings()
    tz = timezone.get_default_timezone()
    started = time.monotonic()
    finished = (DONE, SUPERSEDED) if queued else (DONE,)
    record = _record_of(unit)
    if record.status in finished:
        return UnitResult(unit, "skipped", note=f"already {record.status}")
    own = warehouse is None
    wh = warehouse or get_warehouse(config)
    result = UnitResult(unit, "done")
    try:
        with table_lock(
            unit.table,
            unit.run_id,
            config.lock_timeout,
            wait=wait,
            wait_timeout=wait_timeout,
            poll=UNIT_POLL,
        ) as lease:
            record.refresh_from_db()
            if record.status in finished:
                return UnitResult(unit, "skipped", note=f"already {record.status}")
            check = not unit.forced and _may_be_done(record)
            _mark(record, RUNNING, worker=lease.owner, attempt=True)
            if check and set(unit.days) <= _ledger_days(unit, wh, config, spool):
                result = UnitResult(unit, "skipped", note="already in the ledger")
            else:
                ext = extractor or load_extractor_class(unit.extractor_path)()
                result.counts = _replace(
                    unit, wh, ext, ext.get_schema(), tz, config, spool, on_day, chunk_rows, lease
                )
                result.rows = sum(result.counts.values())
            result.seconds = time.monotonic() - started
            _mark(record, DONE, rows=result.rows, note=result.note)
            return result
    except ExportLockedError as exc:
        # The table is busy with a live holder: nothing done; the unit stays queued.
        return UnitResult(unit, "locked", error=str(exc), seconds=time.monotonic() - started)
    except Exception as exc:
        failed = UnitResult(
            unit,
            "failed",
            error=user_message(exc),
            seconds=time.monotonic() - started,
            exception=exc,
        )
        _mark(record, FAILED, error=failed.error)
        if log_failure:
            logger.error(
                "unit %s failed: %s", unit.describe(), failed.error, exc_info=exc, extra=REPORTED
            )
        return failed
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: record, then stop
        _mark(record, FAILED, error=f"interrupted ({type(exc).__name__})")
        raise
    finally:
        if own:
            wh.close()


def writer_turn(
    warehouse: Warehouse, run_id: str, config: SmolqwerySettings
) -> contextlib.AbstractContextManager[object]:
    """On a single-writer backend (DuckDB), the writer lease: whoever opens the file while
    units run beside each other (a write, a ledger read, a plan) takes turns, and nobody meets
    DuckDB's own file lock (a wait announced in the user's face). Elsewhere, nothing."""
    if not warehouse.ops.capabilities.single_writer:
        return contextlib.nullcontext()
    return export_lock(
        run_id, config.lock_timeout, wait=True, name=DUCKDB_WRITER_LOCK, poll=UNIT_POLL / 5
    )


def _ledger_days(
    unit: Unit, warehouse: Warehouse, config: SmolqwerySettings, spool: bool
) -> set[datetime.date]:
    """The days the ledger records for the unit's table; read in the writer's turn when units
    run beside each other (``spool``)."""
    with writer_turn(warehouse, unit.run_id, config) if spool else contextlib.nullcontext():
        return set(warehouse.exported_days(unit.table))


def _covers(
    units: Sequence[Unit], first: datetime.date, last: datetime.date, *, forced: bool
) -> bool:
    """Whether ``units`` (of one table) cover every day from ``first`` to ``last``, each by a
    forced unit when ``forced``."""
    days = {day for u in units if u.forced or not forced for day in u.days}
    return all(day in days for day in date_range(first, last))


def _may_be_done(record: ExportUnit) -> bool:
    """Whether the ledger may already record the unit's days, so that it is worth reading
    (a query job on BigQuery) before extracting: the unit was attempted before (a redelivery,
    a retry after a crash past the commit), or another unit of its table overlapping its days
    was (another plan's). Otherwise the planner found the days pending and nothing has
    written them since; were that ever wrong (a start not recorded), the unit replaces the
    days once more, which leaves one copy all the same."""
    if record.attempts:
        return True
    overlapping = ExportUnit.objects.filter(
        table_name=record.table_name,
        first_day__lte=record.last_day,
        last_day__gte=record.first_day,
        attempts__gt=0,
    ).exclude(unit_id=record.unit_id)
    return bool(overlapping.exists())


def _record_of(unit: Unit) -> ExportUnit:
    record: ExportUnit
    record, _ = ExportUnit.objects.get_or_create(
        unit_id=unit.unit_id,
        defaults={
            "run_id": unit.run_id,
            "extractor": unit.extractor,
            "extractor_path": unit.extractor_path,
            "table_name": unit.table,
            "first_day": unit.first_day,
            "last_day": unit.last_day,
            "forced": unit.forced,
            "queued_at": timezone.now(),
        },
    )
    return record


def _mark(
    record: ExportUnit,
    status: str,
    *,
    worker: str = "",
    attempt: bool = False,
    rows: int = 0,
    note: str = "",
    error: str = "",
) -> None:
    """Save a unit's new state; a failure to record is logged, never raised over the work."""
    now = timezone.now()
    record.status = status
    fields = ["status"]
    if attempt:
        record.attempts += 1
        record.worker = worker[:255]
        record.started_at = now
        record.error = ""
        fields += ["attempts", "worker", "started_at", "error"]
    if status in (DONE, FAILED):
        record.finished_at = now
        record.rows = rows
        record.note = note[:255]
        record.error = error
        fields += ["finished_at", "rows", "note", "error"]
    try:
        record.save(update_fields=fields)
    except Exception:
        logger.exception("could not record unit %s as %s", record.unit_id, status)


def _replace(
    unit: Unit,
    warehouse: Warehouse,
    extractor: BaseExtractor[Any],
    table: TableSchema,
    tz: datetime.tzinfo,
    config: SmolqwerySettings,
    spool: bool,
    on_day: Callable[[datetime.date, int], None] | None,
    chunk_rows: int,
    lease: Lease,
) -> dict[datetime.date, int]:
    """Extract the unit's days and replace them in the warehouse; the rows per day. While it
    waits for the DuckDB writer, the unit keeps renewing its table's lease."""
    if table.name != unit.table:
        raise ConfigurationError(
            f"extractor {unit.extractor_path} now writes table {table.name!r}, not "
            f"{unit.table!r} as when the unit was planned: run the export again"
        )
    counts: dict[datetime.date, int] = {}
    windows = day_windows(unit.days, tz)
    converter = make_converter(extractor, table, chunk_rows=chunk_rows)
    chunks = converter.record_batches(windows, counts, on_day)
    if spool and warehouse.ops.capabilities.single_writer:
        with tempfile.TemporaryDirectory(prefix="smolqwery-unit-") as tmp:
            try:
                path = _spool(chunks, Path(tmp) / "rows.arrow")
            finally:
                chunks.close()  # type: ignore[attr-defined]  # frees the extractor's cursor
            with writer_turn(warehouse, unit.run_id, config), _spooled(path) as spooled:
                warehouse.replace_days(
                    DayBatch(table, windows, spooled, unit.run_id, row_counts=counts)
                )
        return counts
    try:
        warehouse.replace_days(DayBatch(table, windows, chunks, unit.run_id, row_counts=counts))
    finally:
        chunks.close()  # type: ignore[attr-defined]
    return counts


def _spool(chunks: Iterable[pa.RecordBatch], path: Path) -> Path | None:
    """The record batches in an Arrow IPC file (bounded memory); None when there are none."""
    import pyarrow as pa

    writer: Any = None
    sink = None
    try:
        for chunk in chunks:
            if writer is None:
                sink = pa.OSFile(str(path), "wb")
                writer = pa.ipc.new_stream(sink, chunk.schema)
            writer.write_batch(chunk)
    finally:
        if writer is not None:
            writer.close()
        if sink is not None:
            sink.close()
    return path if writer is not None else None


@contextlib.contextmanager
def _spooled(path: Path | None) -> Iterator[Iterable[pa.RecordBatch]]:
    import pyarrow as pa

    if path is None:
        yield iter(())
        return
    with pa.OSFile(str(path), "rb") as source:
        yield iter(pa.ipc.open_stream(source))
