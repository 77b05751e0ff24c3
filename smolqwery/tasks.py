"""The Celery task running one unit of work (``pip install 'smolqwery[celery]'``).

Celery's ``app.autodiscover_tasks()`` finds this module in a Django project that lists
``smolqwery`` in ``INSTALLED_APPS``. ``smolqwery_extract --enqueue`` publishes one message per
unit, holding only the unit's id; the worker reads the unit from the project's database.

``acks_late`` with ``reject_on_worker_lost``: the message is acknowledged only once the unit has
run, so a worker killed in the middle of a unit (SIGKILL, OOM killer, a lost machine) leaves it
to be delivered again. That is safe because a unit is idempotent (docs/scaling.md): its days are
replaced atomically with their ledger entries, and a unit whose days are already in the ledger
is skipped. A unit whose table is busy with another live holder is not failed, and does not
hold the worker: after ``SMOLQWERY_BUSY_RETRY`` seconds (30) of waiting for the table's lease,
it goes back on the queue (``self.retry``) to be tried again after as many seconds, and stays
``queued`` meanwhile; the worker takes other units.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .fanout import TASK_NAME
from .runs import close_if_finished
from .settings import get_settings
from .units import run_unit_by_id

__all__ = ["run_unit_task"]


@shared_task(  # type: ignore[untyped-decorator,misc]
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def run_unit_task(self: Any, unit_id: str) -> str:
    """Run unit ``unit_id``; its outcome is recorded in its ``ExportUnit`` row."""
    busy_retry = get_settings().busy_retry
    result = run_unit_by_id(unit_id, spool=True, wait_timeout=busy_retry)
    if result is None:
        return "missing"
    if result.status == "locked":
        raise self.retry(countdown=busy_retry)
    close_if_finished(result.unit.run_id)  # the run's last unit records the run's report
    return result.status
