"""The Celery task running one unit of work (``pip install 'smolqwery[celery]'``).

Celery's ``app.autodiscover_tasks()`` finds this module in a Django project that lists
``smolqwery`` in ``INSTALLED_APPS``. ``smolqwery_extract --enqueue`` publishes one message per
unit, holding only the unit's id; the worker reads the unit from the project's database.

``acks_late`` with ``reject_on_worker_lost``: the message is acknowledged only once the unit has
run, so a worker killed in the middle of a unit (SIGKILL, OOM killer, a lost machine) leaves it
to be delivered again. That is safe because a unit is idempotent (docs/scaling.md): its days are
replaced atomically with their ledger entries, and a unit whose days are already in the ledger
is skipped. A unit whose table is busy with another live holder past the lease timeout is
retried later rather than failed.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .fanout import TASK_NAME
from .units import run_unit_by_id

__all__ = ["run_unit_task"]

#: Seconds before a unit whose table stayed busy is tried again.
RETRY_BUSY = 30


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
    result = run_unit_by_id(unit_id, spool=True)
    if result is None:
        return "missing"
    if result.status == "locked":
        raise self.retry(countdown=RETRY_BUSY)
    return result.status
