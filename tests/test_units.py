"""``run_unit``, the one function that runs a unit of work (issue 17), in process on DuckDB.

The property: whatever units are run, in whatever order, however many times (a redelivery, a
duplicate message, two plans covering the same days, forced or not), every day a unit covered
holds its source rows exactly once, with its ledger entry.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolqwery.locking import acquire, table_lock_name
from smolqwery.models import ExportUnit
from smolqwery.units import Unit, run_unit, unit_id_of
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.exportapp.extractors import EventExtractor
from tests.exportapp.testing import (
    EVENTS,
    PARIS,
    YEAR,
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

NOW = datetime.datetime(YEAR, 6, 20, 4, 0, tzinfo=PARIS)
DAYS = date_range(d(6, 1), d(6, 12))


def unit(run: str, first: datetime.date, last: datetime.date, forced: bool = False) -> Unit:
    return Unit(
        unit_id=unit_id_of(run, "event_row", first, last),
        run_id=run,
        extractor="EventExtractor",
        extractor_path=EVENTS,
        table="event_row",
        first_day=first,
        last_day=last,
        forced=forced,
    )


@pytest.fixture
def project(settings: Any, duckdb_warehouse: DuckDBWarehouse) -> DuckDBWarehouse:
    configurer(settings)([EVENTS], d(6, 1))
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(duckdb_warehouse.path)
    settings.SMOLQWERY_DATASET = duckdb_warehouse.dataset
    create_tables(duckdb_warehouse, EventExtractor)
    for k, day in enumerate(DAYS):
        add_events(day, k % 4, PARIS)
    return duckdb_warehouse


def test_a_unit_run_twice_writes_once_and_the_second_run_is_skipped(
    project: DuckDBWarehouse,
) -> None:
    with at(NOW):
        first = run_unit(unit("r1", d(6, 1), d(6, 5)))
        again = run_unit(unit("r1", d(6, 1), d(6, 5)))
        other_plan = run_unit(unit("r2", d(6, 1), d(6, 5)))  # not forced: the ledger has it
    assert first.status == "done" and first.rows == sum(k % 4 for k in range(5))
    assert again.status == "skipped" and again.note == "already done"
    assert other_plan.status == "skipped" and other_plan.note == "already in the ledger"
    expected = source_counts(date_range(d(6, 1), d(6, 5)), PARIS)
    assert ledger_counts(project, "event_row") == expected
    assert exported_counts(project, "event_row", PARIS) == {k: n for k, n in expected.items() if n}
    record = ExportUnit.objects.get(unit_id=unit_id_of("r1", "event_row", d(6, 1), d(6, 5)))
    assert (record.status, record.attempts) == ("done", 1)


def test_the_ledger_is_asked_only_when_a_unit_may_be_done(project: DuckDBWarehouse) -> None:
    """A unit no attempt has touched runs without reading the ledger; if the ledger did hold
    its days (here: the project's unit rows were lost), the run still leaves one copy."""
    with at(NOW):
        assert run_unit(unit("r1", d(6, 1), d(6, 5))).status == "done"
        ExportUnit.objects.all().delete()  # nothing says the days were attempted
        rerun = run_unit(unit("r2", d(6, 1), d(6, 5)))
        overlapping = run_unit(unit("r3", d(6, 3), d(6, 4)))  # r2 was attempted: read
    assert rerun.status == "done"
    assert overlapping.status == "skipped" and overlapping.note == "already in the ledger"
    expected = source_counts(date_range(d(6, 1), d(6, 5)), PARIS)
    assert ledger_counts(project, "event_row") == expected
    assert exported_counts(project, "event_row", PARIS) == {k: n for k, n in expected.items() if n}


def test_a_busy_table_is_locked_not_failed(project: DuckDBWarehouse) -> None:
    with at(NOW):
        holder = acquire(table_lock_name("event_row"), "elsewhere:1:other", 600)
        result = run_unit(unit("r1", d(6, 1), d(6, 2)), wait=False)
    assert result.status == "locked" and "another export of table event_row" in result.error
    assert ExportUnit.objects.get().status == "queued"  # nothing done, still to do
    holder.release()


def test_a_superseded_unit_from_a_queue_is_skipped(project: DuckDBWarehouse) -> None:
    from smolqwery.units import record_units, run_unit_by_id

    old = unit("r1", d(6, 1), d(6, 3))
    record_units([old])
    record_units([unit("r2", d(6, 1), d(6, 3))])  # a later plan covers the days again
    with at(NOW):
        result = run_unit_by_id(old.unit_id)
    assert result is not None and result.status == "skipped"
    assert ledger_counts(project, "event_row") == {}


def test_a_forced_unit_still_queued_is_kept_by_a_later_plan_that_is_not_forced(
    project: DuckDBWarehouse,
) -> None:
    """A re-export asked with --from/--to must not be dropped by the next cron plan."""
    from smolqwery.units import record_units

    forced = unit("r1", d(6, 1), d(6, 3), forced=True)
    record_units([forced])
    record_units([unit("r2", d(6, 1), d(6, 3))])  # the nightly plan: not forced
    record_units([other_table_unit("r3", d(6, 1), d(6, 3), forced=True)])  # another table
    assert ExportUnit.objects.get(unit_id=forced.unit_id).status == "queued"
    record_units([unit("r4", d(6, 1), d(6, 2), forced=True)])  # covers only part of it
    assert ExportUnit.objects.get(unit_id=forced.unit_id).status == "queued"
    record_units([unit("r5", d(6, 1), d(6, 1), forced=True), unit("r5", d(6, 2), d(6, 3), True)])
    assert ExportUnit.objects.get(unit_id=forced.unit_id).status == "superseded"


def other_table_unit(run: str, first: datetime.date, last: datetime.date, forced: bool) -> Unit:
    return Unit(
        unit_id=unit_id_of(run, "other_row", first, last),
        run_id=run,
        extractor="Other",
        extractor_path="tests.exportapp.extractors.Other",
        table="other_row",
        first_day=first,
        last_day=last,
        forced=forced,
    )


spans = st.tuples(st.integers(0, len(DAYS) - 1), st.integers(0, 3)).map(
    lambda t: (DAYS[t[0]], DAYS[min(t[0] + t[1], len(DAYS) - 1)])
)


@given(
    st.lists(
        st.tuples(st.sampled_from(("r1", "r2", "r3")), spans, st.booleans()),
        min_size=1,
        max_size=8,
    )
)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_any_units_any_order_any_repeats_leave_one_copy(
    project: DuckDBWarehouse, runs: list[tuple[str, tuple[datetime.date, datetime.date], bool]]
) -> None:
    import duckdb

    con = duckdb.connect(str(project.path))
    try:
        for table in ("event_row", "smolqwery_ledger"):
            con.execute(f"DELETE FROM {project.qualified_name(table)}")
    finally:
        con.close()
    ExportUnit.objects.all().delete()
    covered: set[datetime.date] = set()
    with at(NOW):
        for run, (first, last), forced in runs:
            result = run_unit(unit(run, first, last, forced=forced))
            assert result.status in ("done", "skipped"), result.error
            covered.update(date_range(first, last))
    expected = source_counts(sorted(covered), PARIS)
    assert ledger_counts(project, "event_row") == expected
    assert exported_counts(project, "event_row", PARIS) == {d: n for d, n in expected.items() if n}


plans = st.lists(st.lists(st.tuples(spans, st.booleans()), min_size=1, max_size=3), max_size=4)


@given(plans, st.lists(st.integers(0, 20), max_size=8), st.randoms(use_true_random=False))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_queued_plans_delivered_in_any_order_export_every_asked_day_once(
    project: DuckDBWarehouse,
    planned: list[list[tuple[tuple[datetime.date, datetime.date], bool]]],
    early: list[int],
    rnd: Any,
) -> None:
    """Plans recorded one after another while a queue delivers their units late, early or in
    any order: every day asked is exported once, and every day a plan forced is replaced by a
    forced unit that ran (its own, or a later plan's that superseded it)."""
    import duckdb

    from smolqwery.units import record_units, run_unit_by_id

    con = duckdb.connect(str(project.path))
    try:
        for table in ("event_row", "smolqwery_ledger"):
            con.execute(f"DELETE FROM {project.qualified_name(table)}")
    finally:
        con.close()
    ExportUnit.objects.all().delete()
    asked: set[datetime.date] = set()
    forced_asked: set[datetime.date] = set()
    queue: list[str] = []
    with at(NOW):
        for k, plan in enumerate(planned):
            units = [unit(f"p{k}", first, last, forced) for (first, last), forced in plan]
            units = list({u.unit_id: u for u in units}.values())
            record_units(units)
            queue += [u.unit_id for u in units]
            for u in units:
                asked.update(u.days)
                if u.forced:
                    forced_asked.update(u.days)
            # Some messages arrive before the next plan is recorded.
            for index in early[k::4]:
                if queue:
                    result = run_unit_by_id(queue.pop(index % len(queue)))
                    assert result is not None and result.status in ("done", "skipped")
        rnd.shuffle(queue)
        for unit_id in queue:
            result = run_unit_by_id(unit_id)
            assert result is not None and result.status in ("done", "skipped")
    statuses = set(ExportUnit.objects.values_list("status", flat=True))
    assert statuses <= {"done", "superseded"}
    forced_done = {
        day
        for r in ExportUnit.objects.filter(status="done", forced=True)
        for day in date_range(r.first_day, r.last_day)
    }
    assert forced_asked <= forced_done
    expected = source_counts(sorted(asked), PARIS)
    assert ledger_counts(project, "event_row") == expected
    assert exported_counts(project, "event_row", PARIS) == {d: n for d, n in expected.items() if n}
