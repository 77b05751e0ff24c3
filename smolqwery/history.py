"""How long the bookkeeping rows are kept: ``SMOLQWERY_HISTORY_DAYS`` (90 by default).

Every run adds an :class:`~smolqwery.models.ExportRun` per extractor and an
:class:`~smolqwery.models.ExportUnit` per unit of work it plans: an hourly cron with 50
extractors adds 438,000 runs a year, as many units with ``--lag``. :func:`prune_history`, called
when a run starts (the exporter) and when a plan is recorded (``--jobs``, ``--enqueue``), deletes
the ones that finished more than ``SMOLQWERY_HISTORY_DAYS`` days ago. It never deletes what
status, the admin, ``--wait`` or a worker still read:

- a unit queued or running (a message may still arrive for it; ``--wait`` follows it), nor any
  unit of the newest plan (``smolqwery_status`` shows its units);
- a run still marked running (the admin tells it running from interrupted), nor the newest run
  of each table (``smolqwery_status``' "last run", the Metrics page's "settled").

What was exported is the warehouse's ledger, never these rows: pruning them loses no data.
"""

from __future__ import annotations

import datetime
import logging

from django.db.models import Max
from django.utils import timezone

from .models import ExportRun, ExportUnit

__all__ = ["FINISHED_UNIT", "prune_history"]

logger = logging.getLogger("smolqwery.history")

#: ``ExportUnit.status`` values a unit never leaves.
FINISHED_UNIT = ("done", "failed", "superseded")


def prune_history(days: int | None, *, now: datetime.datetime | None = None) -> tuple[int, int]:
    """Delete the runs and units finished more than ``days`` days before ``now`` (the
    setting's ``history_days``; None keeps everything); ``(runs, units)`` deleted.

    A failure is logged, never raised: an export does not fail over its housekeeping.
    """
    if days is None:
        return 0, 0
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    try:
        return _prune_runs(cutoff), _prune_units(cutoff)
    except Exception:
        logger.exception("could not delete the export history older than %s", cutoff)
        return 0, 0


def _prune_units(cutoff: datetime.datetime) -> int:
    newest = ExportUnit.objects.order_by("-queued_at", "-id").values_list("run_id", flat=True)
    newest_run = newest.first()
    # queued_at <= finished_at: the (status, queued_at) index narrows the scan.
    old = ExportUnit.objects.filter(
        status__in=FINISHED_UNIT, queued_at__lt=cutoff, finished_at__lt=cutoff
    )
    if newest_run is not None:
        old = old.exclude(run_id=newest_run)
    deleted: int = old.delete()[0]
    if deleted:
        logger.info("deleted %d unit(s) finished before %s", deleted, cutoff)
    return deleted


def _prune_runs(cutoff: datetime.datetime) -> int:
    newest = (
        ExportRun.objects.order_by()
        .values("table_name", "extractor")
        .annotate(newest=Max("id"))
        .values_list("newest", flat=True)
    )
    old = ExportRun.objects.filter(finished_at__lt=cutoff).exclude(id__in=list(newest))
    deleted: int = old.delete()[0]
    if deleted:
        logger.info("deleted %d run record(s) finished before %s", deleted, cutoff)
    return deleted
