"""``SMOLQWERY_QUEUE = "django"``: units enqueued through the configured ``TASKS`` backend
(Django 6's own ``django.tasks`` from Django 6 on, the ``django-tasks`` backport before it; the
immediate backend runs each task as it is enqueued), exactly once in the warehouse.

Cheap and in-process, so that ``scripts/test-versions`` runs it on the lowest pair (Django 4.2
and the backport's lowest release) and the highest (Django 6.x: its own framework, and the
backport's backend, whose task class Django's ``task()`` then uses).
"""

from __future__ import annotations

import datetime
import importlib
from typing import Any

import django
import pytest

from smolqwery.fanout import enqueue, make_plan, publisher
from smolqwery.models import ExportRun, ExportUnit
from smolqwery.settings import get_settings
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.exportapp.extractors import EventExtractor
from tests.exportapp.testing import (
    EVENTS,
    PARIS,
    add_events,
    at,
    configurer,
    create_tables,
    d,
    date_range,
    exported_counts,
    ledger_counts,
    source_counts,
)

pytestmark = pytest.mark.django_db

NATIVE = django.VERSION >= (6, 0)
try:
    import django_tasks  # noqa: F401

    BACKPORT = True
except ImportError:
    BACKPORT = False

#: Django 6's own immediate backend, and the backport's (on Django 6 too: a project may keep a
#: backend built on the backport, such as django-tasks-db's).
BACKENDS = [
    pytest.param(
        "django.tasks.backends.immediate.ImmediateBackend",
        marks=pytest.mark.skipif(not NATIVE, reason="Django 6's own framework"),
        id="django.tasks",
    ),
    pytest.param(
        "django_tasks.backends.immediate.ImmediateBackend",
        marks=pytest.mark.skipif(not BACKPORT, reason="the django-tasks backport"),
        id="django_tasks",
    ),
]


# Autocommit, as the command runs: the backport 0.8 enqueues on commit by default (later not).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", BACKENDS)
def test_units_enqueued_as_django_tasks_export_every_day_once(
    backend: str, settings: Any, duckdb_warehouse: DuckDBWarehouse
) -> None:
    configurer(settings)([EVENTS], d(6, 1), batch_days=4)
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(duckdb_warehouse.path)
    settings.SMOLQWERY_DATASET = duckdb_warehouse.dataset
    settings.SMOLQWERY_QUEUE = "django"
    settings.TASKS = {"default": {"BACKEND": backend}}
    create_tables(duckdb_warehouse, EventExtractor)
    days = date_range(d(6, 1), d(6, 10))
    for k, day in enumerate(days):
        add_events(day, k % 4, PARIS)

    # The task is made as the module is imported, with the backend then configured: as in a
    # project's process, where TASKS does not change.
    import smolqwery.tasks_django

    importlib.reload(smolqwery.tasks_django)
    task_class = type(smolqwery.tasks_django.run_unit_task)
    # Django 6's own task for its own backend, the backport's for the backport's.
    assert task_class.__module__.startswith("django.tasks.") == backend.startswith("django.tasks.")

    with at(datetime.datetime(d(6, 11).year, 6, 11, 4, tzinfo=PARIS)):
        plan = make_plan()
        assert len(plan.units) == 3  # 4 + 4 + 2 days
        with publisher(get_settings()) as pub:
            assert enqueue(plan, pub) == 3
            assert enqueue(plan, pub) == 3  # every task delivered twice: one copy
    records = ExportUnit.objects.filter(run_id=plan.run_id)
    assert {(r.status, r.attempts) for r in records} == {("done", 1)}
    # Nobody waited: the task that ran the last unit recorded the run (admin, status).
    (run,) = ExportRun.objects.filter(run_id=plan.run_id)
    assert (run.status, run.days) == ("success", len(days))
    expected = source_counts(days, PARIS)
    assert ledger_counts(duckdb_warehouse, "event_row") == expected
    assert exported_counts(duckdb_warehouse, "event_row", PARIS) == {
        k: n for k, n in expected.items() if n
    }
