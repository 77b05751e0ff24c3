"""``SMOLQWERY_QUEUE = "django"``: units enqueued through the configured ``TASKS`` backend
(Django 6's own ``django.tasks`` from Django 6 on, the ``django-tasks`` backport before it; the
immediate backend runs each task as it is enqueued), exactly once in the warehouse.

Cheap and in-process, so that ``scripts/test-versions`` runs it on the lowest pair (Django 4.2
and the backport's lowest release) and the highest (Django 6.x's own framework).
"""

from __future__ import annotations

import datetime
from typing import Any

import django
import pytest

from smolqwery.fanout import enqueue, make_plan
from smolqwery.models import ExportUnit
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
IMMEDIATE = (
    "django.tasks.backends.immediate.ImmediateBackend"
    if NATIVE
    else "django_tasks.backends.immediate.ImmediateBackend"
)


def test_units_enqueued_as_django_tasks_export_every_day_once(
    settings: Any, duckdb_warehouse: DuckDBWarehouse
) -> None:
    configurer(settings)([EVENTS], d(6, 1), batch_days=4)
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(duckdb_warehouse.path)
    settings.SMOLQWERY_DATASET = duckdb_warehouse.dataset
    settings.SMOLQWERY_QUEUE = "django"
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE}}
    create_tables(duckdb_warehouse, EventExtractor)
    days = date_range(d(6, 1), d(6, 10))
    for k, day in enumerate(days):
        add_events(day, k % 4, PARIS)

    from smolqwery.tasks_django import framework, run_unit_task

    # Django 6's own framework where Django has one; the backport before.
    assert framework().__name__ == ("django.tasks" if NATIVE else "django_tasks")
    assert type(run_unit_task).__module__.startswith(framework().__name__)

    with at(datetime.datetime(d(6, 11).year, 6, 11, 4, tzinfo=PARIS)):
        plan = make_plan()
        assert len(plan.units) == 3  # 4 + 4 + 2 days
        assert enqueue(plan, get_settings()) == 3
        assert enqueue(plan, get_settings()) == 3  # every task delivered twice: one copy
    records = ExportUnit.objects.filter(run_id=plan.run_id)
    assert {(r.status, r.attempts) for r in records} == {("done", 1)}
    expected = source_counts(days, PARIS)
    assert ledger_counts(duckdb_warehouse, "event_row") == expected
    assert exported_counts(duckdb_warehouse, "event_row", PARIS) == {
        k: n for k, n in expected.items() if n
    }


def test_a_backport_backend_keeps_the_backport_on_any_django(settings: Any) -> None:
    """A Django 6 project whose backend is built on the backport (``django-tasks-db``) gets the
    backport's task: each framework only runs its own tasks."""
    pytest.importorskip("django_tasks")
    from smolqwery.tasks_django import framework

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    assert framework().__name__ == "django_tasks"
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE}}
    assert framework().__name__ == ("django.tasks" if NATIVE else "django_tasks")
