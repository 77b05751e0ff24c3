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


def emptied(project: DuckDBWarehouse) -> None:
    """No exported row, ledger entry or unit: each hypothesis example starts afresh."""
    import duckdb

    con = duckdb.connect(str(project.path))
    try:
        for table in ("event_row", "smolqwery_ledger"):
            con.execute(f"DELETE FROM {project.qualified_name(table)}")
    finally:
        con.close()
    ExportUnit.objects.all().delete()


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
    emptied(project)
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
    from smolqwery.units import record_units, run_unit_by_id

    emptied(project)
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


def test_a_plan_not_published_supersedes_nothing_and_following_it_reports_why(
    project: DuckDBWarehouse,
) -> None:
    """``--enqueue`` records its units without superseding, publishes, and only then
    supersedes what the published units cover; units the broker never took are failed ("not
    published"). Following that run later (``--wait --run``) reports them; following it again
    replaces the recorded outcome (one ``ExportRun`` per extractor)."""
    from smolqwery import runs
    from smolqwery.errors import SmolqweryError
    from smolqwery.models import ExportRun
    from smolqwery.units import mark_not_published, record_units, supersede_earlier

    earlier = unit("r1", d(6, 1), d(6, 4))
    record_units([earlier])
    published, lost = unit("r2", d(6, 1), d(6, 2)), unit("r2", d(6, 3), d(6, 4))
    record_units([published, lost], supersede=False)
    mark_not_published([lost], "not published: the broker redis://h:6379/0 failed (boom)")
    supersede_earlier([published])  # covers only half of r1: r1 stays queued, to be run
    states = dict(ExportUnit.objects.values_list("unit_id", "status"))
    assert states == {
        earlier.unit_id: "queued",
        published.unit_id: "queued",
        lost.unit_id: "failed",
    }

    with pytest.raises(SmolqweryError, match="no unit recorded for run 'nope'"):
        runs.recorded_plan("nope")
    plan = runs.recorded_plan("last")
    assert plan.run_id == "r2" and [u.unit_id for u in plan.units] == [
        published.unit_id,
        lost.unit_id,
    ]
    for _ in range(2):
        report = runs.finish(plan)
        (result,) = report.results
        assert result.status == "failed" and "not published: the broker" in result.error
        assert "1 unit(s) did not finish" in result.error
    assert ExportRun.objects.filter(run_id="r2").count() == 1
    # A look without waiting, for monitoring: every unit of the run, exit status 1 (one failed).
    import io
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    with at(NOW), pytest.raises(CommandError) as info:
        call_command("smolqwery_status", "--run", "last", stdout=out, stderr=io.StringIO())
    assert info.value.returncode == 1 and "run r2: 1 unit(s) failed" in str(info.value)
    lines = out.getvalue().splitlines()
    assert "units of run r2: 1 failed, 1 queued" in lines
    assert f"  event_row {YEAR}-06-01..{YEAR}-06-02 queued (0 attempt(s))" in lines
    assert (
        f"  event_row {YEAR}-06-03..{YEAR}-06-04 failed (0 attempt(s)): not published: the broker "
        "redis://h:6379/0 failed (boom)"
    ) in lines
    out = io.StringIO()
    with at(NOW), pytest.raises(CommandError):
        call_command("smolqwery_status", "--run", "r2", "--format=json", stdout=out)
    shown = json.loads(out.getvalue())["units"]
    assert [u["state"] for u in shown["units"]] == ["queued", "failed"]
    with pytest.raises(CommandError) as info:
        call_command("smolqwery_status", "--run", "nope", stdout=io.StringIO())
    assert info.value.returncode == 2 and "no unit recorded for run 'nope'" in str(info.value)
    # A 0-unit --enqueue printed a run id that this refused with "give the id --enqueue printed".
    assert "a run that queued 0 units records none" in str(info.value)


def test_the_worker_that_finishes_a_run_records_its_report_once(project: DuckDBWarehouse) -> None:
    """A run nobody waits for (cron's ``--enqueue``) is recorded by its last unit's worker; a
    unit a later plan superseded is not a failure of this run; closing twice records once."""
    from smolqwery.models import ExportRun
    from smolqwery.runs import close_if_finished
    from smolqwery.units import record_units, run_unit_by_id

    first, second = unit("r1", d(6, 1), d(6, 2)), unit("r1", d(6, 3), d(6, 4))
    taken_over = unit("r1", d(6, 5), d(6, 5))
    record_units([first, second, taken_over])
    record_units([unit("r2", d(6, 5), d(6, 6))])  # supersedes r1's last unit
    with at(NOW):
        assert run_unit_by_id(first.unit_id) is not None
        assert close_if_finished("r1") is None  # a unit of r1 is still queued
        assert not ExportRun.objects.filter(run_id="r1").exists()
        assert run_unit_by_id(second.unit_id) is not None
        report = close_if_finished("r1")
        assert close_if_finished("r1") is not None  # again: replaces, never adds
    assert report is not None and report.ok
    (run,) = ExportRun.objects.filter(run_id="r1")
    assert (run.status, run.days, run.first_day, run.last_day) == ("success", 4, d(6, 1), d(6, 4))
    assert run.rows == sum(source_counts(date_range(d(6, 1), d(6, 4)), PARIS).values())


def test_following_units_nobody_runs_says_what_it_waits_for_then_gives_up(
    project: DuckDBWarehouse,
) -> None:
    """``--wait`` with no worker running: a line every 30 s while no unit moves, then the
    report names the units that did not finish (time is the test's: a clock it advances)."""
    from smolqwery import fanout, runs
    from smolqwery.exporter import Progress
    from smolqwery.units import record_units

    record_units([unit("r1", d(6, 1), d(6, 2)), unit("r1", d(6, 3), d(6, 4))])
    ExportUnit.objects.filter(unit_id=unit("r1", d(6, 3), d(6, 4)).unit_id).update(status="running")
    notes: list[str] = []

    class Notes(Progress):
        def note(self, text: str) -> None:
            notes.append(text)

    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    report = fanout.follow(
        runs.recorded_plan("r1"), Notes(), stall=100, poll=5, sleep=sleep, clock=lambda: now[0]
    )
    waiting = [n for n in notes if "waiting" in n]
    assert waiting == [
        f"run r1: waiting for 2 unit(s) (1 queued, 1 running); none moved for {s} s, giving up "
        "after 100 s (is a worker running? manage.py smolqwery_status --run r1)"
        for s in (30, 60, 90)
    ]
    (result,) = report.results
    assert result.failed and "2 unit(s) did not finish" in result.error
