"""Fan-out over real Celery workers and real brokers (issue 17): exactly once, whatever happens.

Every test is a crash scenario (its own SQLite database and DuckDB file, the real
``smolqwery_extract`` command in a child process) with six extractors over sixty days, cut into
units of ten days; the workers are real ``celery worker`` processes, the brokers private Redis and
RabbitMQ nodes (:mod:`tests.fixtures.brokers`), each test run on both.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smolqwery.warehouses.testing import fetch_rows
from tests.crashapp.fanout_extractors import EXTRACTORS
from tests.crashapp.killswitch import PLAN_ENV, Plan
from tests.fixtures.brokers import Broker, Workers
from tests.fixtures.crash import Scenario, ScenarioFactory

pytestmark = pytest.mark.slow

DAYS = 60
UNIT_DAYS = 10
EVENT_TABLES = ("fan_event_1", "fan_event_2", "fan_event_3", "fan_event_4")
DAILY_TABLES = ("fan_daily_1", "fan_daily_2")


def _scenario(factory: ScenarioFactory, broker: Broker, **settings: Any) -> tuple[Scenario, str]:
    queue = f"smolqwery-{uuid.uuid4().hex[:8]}"
    scenario = factory.new(
        "duckdb",
        days=DAYS,
        settings={
            "SMOLQWERY_EXTRACTORS": list(EXTRACTORS),
            "SMOLQWERY_BATCH_DAYS": UNIT_DAYS,
            "SMOLQWERY_LOCK_TIMEOUT": 20,
            "SMOLQWERY_CELERY_APP": "tests.celeryapp.app",
            **settings,
        },
        create_tables=False,
    )
    scenario.create_tables(EXTRACTORS)
    scenario.extra_env.update(
        {
            "SMOLQWERY_TEST_BROKER_URL": broker.url,
            "SMOLQWERY_TEST_QUEUE": queue,
            "DJANGO_SETTINGS_MODULE": "tests.crash_settings",
        }
    )
    return scenario, queue


def problems(scenario: Scenario) -> list[str]:
    """Every table holds each day's source rows exactly once, with its ledger entry."""
    tz = ZoneInfo(scenario.tz)
    source = scenario.expected
    out: list[str] = []
    with scenario.warehouse() as wh:
        for table in EVENT_TABLES:
            rows = fetch_rows(wh, table, order_by=["id"])
            ids = [r["id"] for r in rows]
            if len(ids) != len(set(ids)):
                out.append(f"{table}: duplicated ids")
            got: dict[datetime.date, set[int]] = {}
            for r in rows:
                got.setdefault(r["timestamp"].astimezone(tz).date(), set()).add(r["id"])
            for day, events in source.items():
                if got.get(day, set()) != {e.id for e in events}:
                    out.append(f"{table} {day}: {sorted(got.get(day, set()))}")
            ledger = {d: e.rows for d, e in wh.exported_days(table).items()}
            if ledger != {d: len(e) for d, e in source.items()}:
                out.append(f"ledger of {table}: {ledger}")
        for table in DAILY_TABLES:
            daily: dict[datetime.date, list[int]] = {}
            for r in fetch_rows(wh, table, order_by=["date"]):
                daily.setdefault(r["date"], []).append(r["events"])
            want = {d: [len(e)] for d, e in source.items()}
            if daily != want:
                out.append(f"{table}: {daily} != {want}")
            if set(wh.exported_days(table)) != set(source):
                out.append(f"ledger of {table}: {sorted(wh.exported_days(table))}")
    return out


def units(scenario: Scenario) -> list[tuple[str, str, int, str]]:
    """``(table, first day, attempts, status)`` of every recorded unit (the scenario's DB)."""
    with sqlite3.connect(scenario.db) as con:
        return [
            (t, f, a, s)
            for t, f, a, s in con.execute(
                "SELECT table_name, first_day, attempts, status FROM smolqwery_exportunit"
            )
        ]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_workers_export_six_extractors_over_sixty_days_exactly_once(
    broker: Broker, crash_scenarios: ScenarioFactory, celery_workers: Workers
) -> None:
    scenario, queue = _scenario(crash_scenarios, broker)
    celery_workers.start(scenario.env(), queue, count=2)
    result = scenario.run("--enqueue", "--wait", "--wait-timeout=90", "--no-progress")
    assert result.returncode == 0, result.describe()
    assert "36 unit(s) queued" in result.output, result.describe()
    assert problems(scenario) == []
    recorded = units(scenario)
    assert len(recorded) == 6 * (DAYS // UNIT_DAYS)
    assert {s for *_, s in recorded} == {"done"}

    # The same forced range enqueued twice (two plans; a worker may run both): one copy.
    first = scenario.first_day + datetime.timedelta(days=20)
    last = first + datetime.timedelta(days=14)
    for _ in range(2):
        again = scenario.run(
            "--enqueue", f"--from={first}", f"--to={last}", "--extractor=fan_event_1"
        )
        assert again.returncode == 0, again.describe()
    # The second plan supersedes whichever forced units of the first were still queued.
    wait_for(
        lambda: all(s in ("done", "superseded") for *_, s in units(scenario)),
        "the forced units",
        timeout=90,
    )
    assert problems(scenario) == []
    # Both workers took part.
    logs = [w.output() for w in celery_workers.started]
    assert all("smolqwery.run_unit" in log and "succeeded" in log for log in logs), logs


def test_the_same_message_delivered_twice_leaves_one_copy(
    broker: Broker, crash_scenarios: ScenarioFactory, celery_workers: Workers
) -> None:
    """A unit's message published twice (a publisher retry, a broker duplicate)."""
    scenario, queue = _scenario(crash_scenarios, broker, SMOLQWERY_EXTRACTORS=list(EXTRACTORS[:2]))
    result = scenario.run("--enqueue")  # no worker yet: the units wait on the queue
    assert result.returncode == 0, result.describe()
    env = scenario.env()
    duplicate = scenario.run(
        "-c",
        "from tests.celeryapp import app; from smolqwery.models import ExportUnit; "
        "[app.send_task('smolqwery.run_unit', args=[u]) "
        "for u in ExportUnit.objects.values_list('unit_id', flat=True)]",
        command="shell",
        env={"SMOLQWERY_TEST_QUEUE": queue},
    )
    assert duplicate.returncode == 0, duplicate.describe()
    celery_workers.start(env, queue, count=2)
    wait_for(lambda: all(s == "done" for *_, s in units(scenario)), "every unit done")
    wait_for(  # the duplicates are consumed too
        lambda: (
            "".join(w.output() for w in celery_workers.started).count("succeeded")
            >= 2 * len(units(scenario))
        ),
        "both copies of every message",
    )
    with scenario.warehouse() as wh:
        for table in ("fan_event_1", "fan_event_2"):
            rows = fetch_rows(wh, table)
            assert (
                len(rows)
                == len({r["id"] for r in rows})
                == sum(len(e) for e in scenario.expected.values())
            )
    assert {a for _, _, a, _ in units(scenario)} == {1}  # each unit ran once, then was skipped


def test_a_worker_killed_mid_unit_gets_its_unit_redelivered_exactly_once(
    broker: Broker, crash_scenarios: ScenarioFactory, celery_workers: Workers
) -> None:
    scenario, queue = _scenario(crash_scenarios, broker)
    # The victim dies with SIGKILL at the 7th row it extracts: in the middle of its first unit.
    victim = celery_workers.start(
        scenario.env({PLAN_ENV: Plan("extract.yield", "at", 7).encode()}), queue
    )[0]
    run = scenario.start("--enqueue", "--wait", "--wait-timeout=90", "--no-progress")
    victim.proc.wait(timeout=120)
    assert victim.proc.returncode == -9, victim.output()
    celery_workers.start(scenario.env(), queue, count=2)
    result = scenario.finish(run)
    assert result.returncode == 0, result.describe()
    assert problems(scenario) == []
    recorded = units(scenario)
    assert {s for *_, s in recorded} == {"done"}
    assert max(a for _, _, a, _ in recorded) == 2  # the killed unit ran again, once


def test_a_broker_stopped_mid_run_leaves_units_the_next_run_completes(
    broker: Broker, crash_scenarios: ScenarioFactory, celery_workers: Workers
) -> None:
    if not broker.stoppable:
        pytest.skip("the system RabbitMQ is shared: never stopped by a test")
    scenario, queue = _scenario(crash_scenarios, broker)
    slow = scenario.env({"SMOLQWERY_TEST_DAY_DELAY": "0.2"})  # 2 s a unit
    workers = celery_workers.start(slow, queue, count=1)
    run = scenario.start("--enqueue", "--wait", "--wait-timeout=15", "--no-progress")
    wait_for(lambda: sum(s == "done" for *_, s in units(scenario)) >= 2, "two units done")
    broker.stop()
    result = scenario.finish(run)
    assert result.returncode == 1, result.describe()
    assert "unit(s) did not finish" in result.output, result.describe()
    assert problems(scenario) != []  # not everything is there yet...
    for worker in workers:
        worker.kill()
    broker.start()
    celery_workers.start(scenario.env(), queue, count=2)
    again = scenario.run("--enqueue", "--wait", "--wait-timeout=90", "--no-progress")
    assert again.returncode == 0, again.describe()
    assert problems(scenario) == []  # ...and the next run completed it, exactly once


def test_jobs_runs_units_in_local_processes_on_one_duckdb_file(
    crash_scenarios: ScenarioFactory,
) -> None:
    """``--jobs 3`` on DuckDB: three processes extract at once and take turns to write; no lock
    error reaches the user, every day is there once, and status lists the units done."""
    scenario = crash_scenarios.new(
        "duckdb",
        days=DAYS,
        settings={
            "SMOLQWERY_EXTRACTORS": list(EXTRACTORS),
            "SMOLQWERY_BATCH_DAYS": UNIT_DAYS,
            "SMOLQWERY_RETRY_DEADLINE": 5,  # a writer waiting on DuckDB's lock would fail fast
            "SMOLQWERY_LOCK_TIMEOUT": 20,
        },
        create_tables=False,
    )
    scenario.create_tables(EXTRACTORS)
    result = scenario.run("--jobs=3", "--no-progress")
    assert result.returncode == 0, result.stderr[:6000]
    # The summary's seconds are the units' own (they were 0.0 for units run elsewhere).
    lines = [line.split() for line in result.stdout.splitlines() if " success " in line]
    assert len(lines) == len(EXTRACTORS) and all(float(f[-1]) > 0 for f in lines), result.stdout
    assert "held by another process" not in result.output, result.describe()
    assert "database is locked" not in result.output, result.describe()
    assert problems(scenario) == []
    assert {s for *_, s in units(scenario)} == {"done"}
    status = scenario.run(command="smolqwery_status")
    assert status.returncode == 0, status.describe()
    assert "units of run " in status.stdout and "36 done" in status.stdout, status.describe()


def test_the_same_units_run_as_django_tasks(crash_scenarios: ScenarioFactory) -> None:
    """``SMOLQWERY_QUEUE = "django"``: ``--enqueue`` hands each unit to ``django.tasks`` (the
    backport here; the immediate backend runs it at once): same units, exactly once."""
    scenario = crash_scenarios.new(
        "duckdb",
        days=20,
        settings={
            "SMOLQWERY_EXTRACTORS": list(EXTRACTORS[:2]),
            "SMOLQWERY_BATCH_DAYS": UNIT_DAYS,
            "SMOLQWERY_QUEUE": "django",
            "TASKS": {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}},
        },
        create_tables=False,
    )
    scenario.create_tables(EXTRACTORS[:2])
    result = scenario.run("--enqueue", "--wait", "--wait-timeout=30", "--no-progress")
    assert result.returncode == 0, result.describe()
    assert {s for *_, s in units(scenario)} == {"done"} and len(units(scenario)) == 4
    with scenario.warehouse() as wh:
        for table in ("fan_event_1", "fan_event_2"):
            rows = fetch_rows(wh, table)
            assert (
                len(rows)
                == len({r["id"] for r in rows})
                == sum(len(e) for e in scenario.expected.values())
            )
