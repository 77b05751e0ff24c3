"""The same unit of work as a Django task (``django.tasks``, Django 6; the ``django-tasks``
backport before it), for projects that run Django's task framework rather than Celery.

``SMOLQWERY_QUEUE = "django"`` makes ``smolqwery_extract --enqueue`` enqueue
:data:`run_unit_task` (``.enqueue(unit_id)``) on the project's ``TASKS`` backend instead of
publishing a Celery message. Nothing else differs: the task runs :func:`run_unit_by_id`, the one
function every way of exporting runs a unit with, so a unit stays idempotent. What the framework
does not promise is Celery's ``acks_late``: whether a task whose worker died is run again is
the backend's business. Exactly-once does not depend on it — the unit's days stay out of the
ledger, and the next run plans them again.

On Django 6, ``django.tasks.task`` makes the task of the configured backend's own class
(``backend.task_class``): a Django 6 project whose backend is built on the backport
(``django-tasks-db``) gets the backport's task, which that backend runs
(``tests/test_tasks_django.py``).
"""

from __future__ import annotations

from typing import Any

from .errors import SmolqweryError
from .runs import close_if_finished
from .units import run_unit_by_id

try:
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Django < 6: the backport
    try:
        from django_tasks import task  # type: ignore[no-redef,unused-ignore]
    except ImportError:
        raise SmolqweryError(
            "SMOLQWERY_QUEUE = 'django' needs Django's task framework: Django 6, or the backport "
            "before it (pip install 'smolqwery[tasks]')"
        ) from None

__all__ = ["run_unit_task"]


def _run(unit_id: str) -> str:
    """Run unit ``unit_id``; its outcome is recorded in its ``ExportUnit`` row."""
    result = run_unit_by_id(unit_id, spool=True)
    if result is None:
        return "missing"
    close_if_finished(result.unit.run_id)  # the run's last unit records the run's report
    return result.status


run_unit_task: Any = task()(_run)
