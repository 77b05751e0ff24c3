"""The same unit of work as a Django task (``django.tasks``, Django 6; the ``django-tasks``
backport before it), for projects that run Django's task framework rather than Celery.

``SMOLQWERY_QUEUE = "django"`` makes ``smolqwery_extract --enqueue`` enqueue
:data:`run_unit_task` (``.enqueue(unit_id)``) on the project's ``TASKS`` backend instead of
publishing a Celery message. Nothing else differs: the task runs :func:`run_unit_by_id`, the one
function every way of exporting runs a unit with, so a unit stays idempotent. What the framework
does not promise is Celery's ``acks_late``: whether a task whose worker died is run again is
the backend's business. Exactly-once does not depend on it — the unit's days stay out of the
ledger, and the next run plans them again.

Which framework: Django's own from Django 6 on, unless the project's default ``TASKS`` backend
is one of the backport's (``django_tasks.backends.…``, ``django-tasks-db``'s): a Django 6
project may keep a backend built on the backport, and each framework only runs its own tasks.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .errors import SmolqweryError
from .units import run_unit_by_id

__all__ = ["framework", "run_unit_task"]


def framework() -> ModuleType:
    """``django.tasks`` or the ``django_tasks`` backport: the one the default backend is of."""
    native: ModuleType | None
    try:
        import django.tasks as native  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:  # Django < 6
        native = None
    if native is not None and not _backport_backend():
        return native
    try:
        import django_tasks  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise SmolqweryError(
            "SMOLQWERY_QUEUE = 'django' needs Django's task framework: Django 6, or the backport "
            "before it (pip install 'smolqwery[tasks]')"
        ) from None
    return django_tasks


def _backport_backend() -> bool:
    """Whether the default ``TASKS`` backend is a class of the backport (installed)."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    tasks = getattr(settings, "TASKS", None) or {}
    backend = str(tasks.get("default", {}).get("BACKEND", ""))
    try:
        from django_tasks.backends.base import (  # type: ignore[import-not-found,unused-ignore]
            BaseTaskBackend,
        )
    except ImportError:
        return False
    try:
        cls = import_string(backend) if backend else None
    except ImportError:
        return backend.startswith("django_tasks")
    return bool(isinstance(cls, type) and issubclass(cls, BaseTaskBackend))


def _run(unit_id: str) -> str:
    """Run unit ``unit_id``; its outcome is recorded in its ``ExportUnit`` row."""
    result = run_unit_by_id(unit_id, spool=True)
    return result.status if result is not None else "missing"


run_unit_task: Any = framework().task()(_run)
