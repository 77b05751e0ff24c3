"""A run planned as units of work: its plan, rebuilt from the recorded units, and its report.

The report of a run whose units ran elsewhere (``--jobs``, ``--enqueue``) is read from its
``ExportUnit`` rows and recorded as ``ExportRun`` rows, like an in-process run's, by whoever
sees the run end: the command following it (``--wait``), or, for a run nobody waits for (cron's
``--enqueue``), the worker that finished its last unit (:func:`close_if_finished`), so that the
admin and ``smolqwery_status`` show it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from .errors import SmolqweryError
from .exporter import ExportReport, ExtractorResult, Progress
from .models import ExportRun, ExportUnit
from .units import DONE, FAILED, QUEUED, RUNNING, SUPERSEDED, PlanFailure, Unit

__all__ = ["Plan", "close_if_finished", "finish", "recorded_plan", "unfinished_units"]

logger = logging.getLogger("smolqwery.runs")


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


def recorded_plan(run_id: str) -> Plan:
    """An earlier run's plan, from its recorded units (``--wait --run``): ``last`` is the run
    planned last. What could not be planned was reported by the run itself, not here."""
    if run_id == "last":
        latest = ExportUnit.objects.order_by("-queued_at", "-id").first()
        run_id = latest.run_id if latest is not None else run_id
    records = list(ExportUnit.objects.filter(run_id=run_id).order_by("table_name", "first_day"))
    if not records:
        raise SmolqweryError(
            f"no unit recorded for run {run_id!r} (a run that queued 0 units records none): "
            "give the id of a run that queued units, or 'last'"
        )
    started = min(r.queued_at for r in records)
    planned = list(dict.fromkeys((r.extractor, r.table_name) for r in records))
    # The plan's last day: yesterday, in TIME_ZONE, when it was made.
    last = timezone.localdate(started) - datetime.timedelta(days=1)
    units = [Unit.from_record(r) for r in records]
    return Plan(run_id, last, started, planned, units, [])


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
        elif status == SUPERSEDED:
            continue  # a later plan took its days over: that run reports them
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
    """An ``ExportRun`` per extractor; a later report of the same run (followed again, or
    closed by the worker that finished its last unit) replaces the earlier one. Unit states
    only move forward, so the later report is the more complete one."""
    now = timezone.now()
    with transaction.atomic():
        ExportRun.objects.filter(run_id=plan.run_id).delete()
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


def close_if_finished(run_id: str) -> ExportReport | None:
    """Record the run's report if none of its units is queued or running any more: called by
    a queue's worker after each unit. Never raises (the unit's own outcome is recorded)."""
    try:
        with transaction.atomic():
            # Workers finishing a run's last units at once take turns here (the run's unit rows
            # locked; SQLite writes one at a time), and the report replaces any earlier one.
            list(ExportUnit.objects.select_for_update().filter(run_id=run_id).values("id"))
            if ExportUnit.objects.filter(run_id=run_id, status__in=(QUEUED, RUNNING)).exists():
                return None
            return finish(recorded_plan(run_id))
    except Exception:
        logger.exception("could not record the end of run %s", run_id)
        return None
