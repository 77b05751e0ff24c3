"""``SMOLQWERY_HISTORY_DAYS``: finished runs and units are deleted after that many days, never
what status, the admin, ``--wait`` or a worker still read (:mod:`smolqwery.history`).

The property: whatever runs and units the project's database holds, pruning deletes exactly the
finished ones older than the cutoff, except the newest run of each table and the units of the
newest plan. Then the real exporter and planner, months apart, on DuckDB: the history stays
bounded and the ledger (what was exported) is untouched.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolqwery.history import FINISHED_UNIT, prune_history
from smolqwery.models import ExportRun, ExportUnit
from smolqwery.settings import get_settings
from smolqwery.units import Unit, record_units, unit_id_of
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
    ledger_counts,
    source_counts,
)

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2030, 6, 1, 12, tzinfo=datetime.timezone.utc)
KEEP = 30
STATUSES = ("queued", "running", "done", "failed", "superseded")

unit_rows = st.lists(
    st.tuples(
        st.integers(0, 3),  # plan
        st.sampled_from(STATUSES),
        st.integers(0, 90),  # queued, days ago
        st.integers(0, 10),  # then finished after this many days
    ),
    max_size=12,
)
run_rows = st.lists(
    st.tuples(
        st.sampled_from(("t_a", "t_b", "t_c")),
        st.integers(0, 90),  # started, days ago
        st.one_of(st.none(), st.integers(0, 5)),  # finished after (None: still running)
    ),
    max_size=12,
)


def _ago(days: int) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(units=unit_rows, runs=run_rows)
def test_pruning_deletes_exactly_the_finished_rows_past_the_cutoff(
    units: list[tuple[int, str, int, int]], runs: list[tuple[str, int, int | None]]
) -> None:
    ExportUnit.objects.all().delete()
    ExportRun.objects.all().delete()
    cutoff = _ago(KEEP)
    made_units = ExportUnit.objects.bulk_create(
        ExportUnit(
            unit_id=f"u{i}",
            run_id=f"plan{plan}",
            extractor="E",
            extractor_path=EVENTS,
            table_name="t",
            first_day=datetime.date(2030, 1, 1),
            last_day=datetime.date(2030, 1, 1),
            status=status,
            queued_at=_ago(age),
            finished_at=_ago(age) + datetime.timedelta(days=after)
            if status in FINISHED_UNIT
            else None,
        )
        for i, (plan, status, age, after) in enumerate(units)
    )
    made_runs = ExportRun.objects.bulk_create(
        ExportRun(
            run_id=f"r{i}",
            extractor=table,
            table_name=table,
            started_at=_ago(age),
            finished_at=None if after is None else _ago(age) + datetime.timedelta(days=after),
            status="running" if after is None else "success",
        )
        for i, (table, age, after) in enumerate(runs)
    )
    # The newest plan: the last unit queued (the last made, among equals).
    newest = max(range(len(made_units)), key=lambda i: (made_units[i].queued_at, i), default=None)
    newest_plan = None if newest is None else made_units[newest].run_id
    newest_run = {r.table_name: i for i, r in enumerate(made_runs)}  # the last made per table
    keep_units = {
        u.unit_id
        for u in made_units
        if u.status not in FINISHED_UNIT
        or u.finished_at is None
        or u.finished_at >= cutoff
        or u.run_id == newest_plan
    }
    keep_runs = {
        r.run_id
        for i, r in enumerate(made_runs)
        if r.finished_at is None or r.finished_at >= cutoff or newest_run[r.table_name] == i
    }

    deleted = prune_history(KEEP, now=NOW)

    assert set(ExportUnit.objects.values_list("unit_id", flat=True)) == keep_units
    assert set(ExportRun.objects.values_list("run_id", flat=True)) == keep_runs
    assert deleted == (len(made_runs) - len(keep_runs), len(made_units) - len(keep_units))


def test_the_setting(settings: Any) -> None:
    """90 days by default; None keeps everything (wrong values: tests/test_settings.py)."""
    assert get_settings().history_days == 90
    settings.SMOLQWERY_HISTORY_DAYS = None
    assert get_settings().history_days is None
    assert prune_history(None) == (0, 0)


def test_exports_months_apart_keep_a_bounded_history_and_every_exported_day(
    settings: Any, duckdb_warehouse: DuckDBWarehouse
) -> None:
    """The in-process exporter prunes as a run starts, the planner (``--jobs``, ``--enqueue``)
    once its plan is recorded; a unit still queued (a re-export never delivered) stays."""
    from smolqwery.fanout import make_plan
    from smolqwery.runner import export

    configurer(settings)([EVENTS], d(6, 1))
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(duckdb_warehouse.path)
    settings.SMOLQWERY_DATASET = duckdb_warehouse.dataset
    settings.SMOLQWERY_HISTORY_DAYS = KEEP
    create_tables(duckdb_warehouse, EventExtractor)
    days = date_range(d(6, 1), d(9, 30))
    for k, day in enumerate(days):
        add_events(day, k % 3, PARIS)

    def moment(day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time(4), tzinfo=PARIS)

    with at(moment(d(6, 4))):
        assert export(warehouse=duckdb_warehouse).ok  # 6/1..6/3
        stuck = Unit(unit_id_of("lost", "event_row", d(6, 1), d(6, 2)), "lost", "EventExtractor",
                     EVENTS, "event_row", d(6, 1), d(6, 2), forced=True)  # fmt: skip
        record_units([stuck])  # queued, its message lost: never pruned
    with at(moment(d(6, 5))):
        assert export(warehouse=duckdb_warehouse).ok  # 6/4
    first_runs = list(ExportRun.objects.order_by("id").values_list("run_id", flat=True))
    assert len(first_runs) == 2 and ExportUnit.objects.count() == 3

    with at(moment(d(8, 1))):  # 57 days later
        assert export(warehouse=duckdb_warehouse).ok  # 6/5..7/31
    # The first run's row and unit went; the second run is kept (the newest of its table when
    # the third started), and so is its unit (of the newest plan then).
    runs = list(ExportRun.objects.order_by("id").values_list("run_id", flat=True))
    assert runs[:1] == first_runs[1:] and len(runs) == 2
    assert set(ExportUnit.objects.values_list("run_id", "status")) == {
        ("lost", "queued"),
        (runs[0], "done"),
        (runs[1], "done"),
    }

    with at(moment(d(9, 15))):  # the planner prunes too
        plan = make_plan()
    assert len(plan.units) == 1  # 8/1..9/14, queued
    assert set(ExportUnit.objects.values_list("run_id", "status")) == {
        ("lost", "queued"),
        (plan.run_id, "queued"),
    }
    assert list(ExportRun.objects.values_list("run_id", flat=True)) == runs[1:]
    # What was exported is the ledger's, untouched by the pruning.
    exported = source_counts(date_range(d(6, 1), d(7, 31)), PARIS)
    assert ledger_counts(duckdb_warehouse, "event_row") == exported
