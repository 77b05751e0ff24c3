"""Fan-out: one run's units run by local processes (``--jobs N``) or queued for Celery workers
(``--enqueue``) and followed to their end (``--wait``).

Planning is the exporter's (same checks, same days); running a unit is :func:`run_unit`'s,
wherever it happens. The report is built from the :class:`~smolqwery.models.ExportUnit` rows,
so ``--jobs`` and ``--enqueue --wait`` print the summary of an in-process run and exit the same
way; units that did not finish (a broker stopped, a worker gone) are reported by name, and the
next run plans their days again from the ledger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .errors import SmolqweryError
from .exporter import Exporter, ExportReport, ExtractorResult, Progress
from .jobs import init_child, run_child
from .locking import export_lock
from .models import ExportRun, ExportUnit
from .registry import select_extractors
from .units import DONE, FAILED, QUEUED, RUNNING, PlanFailure, Unit, plan_units, record_units
from .warehouse_record import record_if_missing, require_migrated, require_unchanged
from .warehouses import get_warehouse

if TYPE_CHECKING:
    from .settings import SmolqwerySettings
    from .warehouses.base import Warehouse

__all__ = ["TASK_NAME", "Plan", "enqueue", "follow", "make_plan", "run_jobs"]

logger = logging.getLogger("smolqwery.fanout")

#: The Celery task's name (:mod:`smolqwery.tasks`): publishers need not import it.
TASK_NAME = "smolqwery.run_unit"
#: Seconds between two looks at the units while following them.
FOLLOW_POLL = 1.0


@dataclasses.dataclass
class Plan:
    """A run's units, recorded as queued, and what could not be planned."""

    run_id: str
    last_day: datetime.date
    started_at: datetime.datetime
    #: ``(extractor, table)`` of every extractor planned (up-to-date ones included).
    planned: list[tuple[str, str]]
    units: list[Unit]
    failures: list[PlanFailure]


def make_plan(
    extractors: Iterable[str] | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    lag: int = 0,
    *,
    config: SmolqwerySettings | None = None,
    warehouse: Warehouse | None = None,
) -> Plan:
    """Plan the run's units (as the exporter would) and record them as queued; ``warehouse``
    defaults to the configured one."""
    exporter = Exporter(date_from=date_from, date_to=date_to, lag=lag, config=config)
    config = exporter.config
    selected = select_extractors(extractors, config)
    require_migrated(config)
    require_unchanged(config)
    record_if_missing(config)
    with contextlib.ExitStack() as stack:
        wh = warehouse or stack.enter_context(get_warehouse(config))
        units, failures = plan_units(
            selected,
            wh,
            first=exporter.first,
            last=exporter.last,
            tz=exporter.tz,
            batch_days=config.batch_days,
            run_id=exporter.run_id,
            date_from=exporter.date_from,
            date_to=exporter.date_to,
            lag=lag,
        )
    record_units(units)
    planned = [(s.name[:255], s.table.name if s.table else "") for s in selected]
    logger.info("run %s: %d unit(s) planned", exporter.run_id, len(units))
    return Plan(exporter.run_id, exporter.last, timezone.now(), planned, units, failures)


# -- local processes -----------------------------------------------------------------------


def run_jobs(plan: Plan, jobs: int, progress: Progress | None = None) -> ExportReport:
    """Run the plan's units in ``jobs`` child processes, under the export lease (a cron run)."""
    from django.db import connections

    progress = progress or Progress()
    try:
        with export_lock(plan.run_id, _lock_timeout()) as lease:
            connections.close_all()  # children open their own; none is shared over a fork
            context = multiprocessing.get_context("spawn")
            by_id = {u.unit_id: u for u in plan.units}
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=init_child) as pool:
                futures = {pool.submit(run_child, u.unit_id): u.unit_id for u in plan.units}
                for future in as_completed(futures):
                    unit = by_id[futures[future]]
                    try:
                        future.result()
                    except Exception as exc:  # the child died: the unit did not finish
                        logger.error("unit %s: its process ended: %s", unit.describe(), exc)
                    _announce(progress, unit)
                    lease.renew()
        return finish(plan, progress)
    finally:
        progress.close()


def _lock_timeout() -> float:
    from .settings import get_settings

    return get_settings().lock_timeout


# -- Celery --------------------------------------------------------------------------------


def celery_app(config: SmolqwerySettings) -> Any:
    """The project's Celery app: ``SMOLQWERY_CELERY_APP``, else Celery's current app."""
    try:
        import celery
    except ImportError:
        raise SmolqweryError(
            "--enqueue needs Celery: pip install 'smolqwery[celery]' and configure the "
            "project's Celery app (docs/scaling.md)"
        ) from None
    if not config.celery_app:
        return celery.current_app
    from django.utils.module_loading import import_string

    try:
        return import_string(config.celery_app.replace(":", "."))
    except ImportError as exc:
        raise SmolqweryError(f"SMOLQWERY_CELERY_APP {config.celery_app!r}: {exc}") from exc


def enqueue(plan: Plan, config: SmolqwerySettings | None = None) -> int:
    """Publish every unit of the plan (the workers run them); the number published.

    A broker that cannot be reached is a :class:`SmolqweryError` naming how many units were
    published; the others stay queued in the database, and the next run plans their days again.
    """
    from .settings import get_settings

    config = config or get_settings()
    if config.queue == "django":
        from .tasks_django import run_unit_task

        send: Callable[[str], Any] = run_unit_task.enqueue
    else:
        app = celery_app(config)
        options: dict[str, Any] = {"queue": config.celery_queue} if config.celery_queue else {}

        def send(unit_id: str) -> Any:
            return app.send_task(TASK_NAME, args=[unit_id], **options)

    published = 0
    for unit in plan.units:
        try:
            send(unit.unit_id)
        except Exception as exc:
            raise SmolqweryError(
                f"could not queue unit {unit.describe()} ({type(exc).__name__}: {exc}): "
                f"{published} of {len(plan.units)} unit(s) queued; is the broker running? "
                "The next run plans the other days again"
            ) from exc
        published += 1
    logger.info("run %s: %d unit(s) queued", plan.run_id, published)
    return published


def follow(
    plan: Plan,
    progress: Progress | None = None,
    *,
    stall: float,
    poll: float = FOLLOW_POLL,
    sleep: Callable[[float], None] = time.sleep,
) -> ExportReport:
    """Follow the plan's units until each is done or failed, or none has moved for ``stall``
    seconds (a broker or every worker gone); the report names the units that did not finish."""
    progress = progress or Progress()
    seen: dict[str, tuple[str, int]] = {}
    moved = time.monotonic()
    by_id = {u.unit_id: u for u in plan.units}
    try:
        while True:
            states = {
                unit_id: (status, attempts)
                for unit_id, status, attempts in ExportUnit.objects.filter(
                    run_id=plan.run_id
                ).values_list("unit_id", "status", "attempts")
            }
            for unit_id, state in states.items():
                if seen.get(unit_id) != state:
                    moved = time.monotonic()
                    if state[0] in (DONE, FAILED) and unit_id in by_id:
                        _announce(progress, by_id[unit_id])
            seen = states
            unfinished = [u for u, (s, _) in states.items() if s in (QUEUED, RUNNING)]
            if not unfinished or time.monotonic() - moved > stall:
                break
            sleep(poll)
        return finish(plan, progress)
    finally:
        progress.close()


def _announce(progress: Progress, unit: Unit) -> None:
    record = ExportUnit.objects.filter(unit_id=unit.unit_id).first()
    if record is not None and record.status == DONE:
        progress.batch_done(unit.extractor, unit.table, unit.first_day, unit.last_day, record.rows)


# -- the report ----------------------------------------------------------------------------


def finish(plan: Plan, progress: Progress | None = None) -> ExportReport:
    """The run's report from its units (and an ``ExportRun`` per extractor, as a run leaves);
    each extractor's outcome told to ``progress``, failures with their reason."""
    records = {r.unit_id: r for r in ExportUnit.objects.filter(run_id=plan.run_id)}
    report = ExportReport(run_id=plan.run_id, last_day=plan.last_day)
    results: dict[str, ExtractorResult] = {}
    for name, table in plan.planned:
        results[name] = ExtractorResult(extractor=name, table=table)
    unfinished: dict[str, list[str]] = {}
    for unit in plan.units:
        result = results.setdefault(unit.extractor, ExtractorResult(unit.extractor, unit.table))
        record = records.get(unit.unit_id)
        status = record.status if record is not None else QUEUED
        if record is not None and record.started_at and record.finished_at:
            # A table's units take turns on its lease: their durations add up to its time.
            result.seconds += (record.finished_at - record.started_at).total_seconds()
        if status == DONE:
            assert record is not None
            result.add_batch(unit.days, record.rows)
        elif status == FAILED:
            assert record is not None
            result.status = "failed"
            result.error = result.error or record.error
        else:
            unfinished.setdefault(unit.extractor, []).append(
                f"{unit.first_day.isoformat()}..{unit.last_day.isoformat()} ({status})"
            )
    for name, pending in unfinished.items():
        result = results[name]
        result.status = "failed"
        did_not = f"{len(pending)} unit(s) did not finish: {', '.join(pending)}"
        result.error = f"{result.error}; {did_not}" if result.error else did_not
    for failure in plan.failures:
        result = results.setdefault(
            failure.extractor, ExtractorResult(failure.extractor, failure.table)
        )
        result.status, result.error, result.exception = "failed", failure.error, failure.exception
    report.results = list(results.values())
    _record_runs(plan, report.results)
    for result in report.results:
        if progress is not None:
            progress.extractor_finished(result)
    return report


def unfinished_units(run_id: str) -> Sequence[ExportUnit]:
    return list(ExportUnit.objects.filter(run_id=run_id, status__in=(QUEUED, RUNNING)))


def _record_runs(plan: Plan, results: Sequence[ExtractorResult]) -> None:
    now = timezone.now()
    ExportRun.objects.bulk_create(
        [
            ExportRun(
                run_id=plan.run_id,
                extractor=r.extractor[:255],
                table_name=r.table,
                started_at=plan.started_at,
                finished_at=now,
                status=r.status,
                days=r.days,
                rows=r.rows,
                first_day=r.first_day,
                last_day=r.last_day,
                error=r.error,
            )
            for r in results
        ]
    )
