"""Fan-out over real Celery workers and real brokers (issue 17): exactly once, whatever happens.

Every test is a crash scenario (its own SQLite database and DuckDB file, the real
``smolqwery_extract`` command in a child process) with six extractors over sixty days, cut into
units of ten days; the workers are real ``celery worker`` processes, the brokers private Redis and
RabbitMQ nodes (:mod:`tests.fixtures.brokers`), each test run on both.
"""

from __future__ import annotations

import datetime
import socket
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


def _scenario(
    factory: ScenarioFactory, broker: Broker, days: int = DAYS, **settings: Any
) -> tuple[Scenario, str]:
    queue = f"smolqwery-{uuid.uuid4().hex[:8]}"
    scenario = factory.new(
        "duckdb",
        days=days,
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
    """A unit's message published twice (a publisher retry, a broker duplicate). Twenty days
    (four units, eight messages): scripts/test-versions runs it too, on the lowest Celery."""
    scenario, queue = _scenario(
        crash_scenarios, broker, days=20, SMOLQWERY_EXTRACTORS=list(EXTRACTORS[:2])
    )
    result = scenario.run("--enqueue")  # no worker yet: the units wait on the queue
    assert result.returncode == 0, result.describe()
    # Every unit's message again, from this process (a plain Celery client: no Django needed).
    from celery import Celery

    publisher = Celery("duplicates", broker=broker.url)
    try:
        with sqlite3.connect(scenario.db) as con:
            for (unit_id,) in con.execute("SELECT unit_id FROM smolqwery_exportunit"):
                publisher.send_task("smolqwery.run_unit", args=[unit_id], queue=queue)
    finally:
        publisher.close()
    celery_workers.start(scenario.env(), queue, count=2)
    wait_for(lambda: all(s == "done" for *_, s in units(scenario)), "every unit done")
    wait_for(  # the duplicates are consumed too
        lambda: (
            "".join(w.output() for w in celery_workers.started).count("succeeded")
            >= 2 * len(units(scenario))
        ),
        "both copies of every message",
    )
    _exactly_once(scenario, ("fan_event_1", "fan_event_2"))
    assert len(units(scenario)) == 4
    assert {a for _, _, a, _ in units(scenario)} == {1}  # each unit ran once, then was skipped
    # Nobody waited (cron's --enqueue): the worker that finished the last unit recorded the run.
    with sqlite3.connect(scenario.db) as con:
        runs = con.execute("SELECT table_name, status, days FROM smolqwery_exportrun").fetchall()
    assert sorted(runs) == [("fan_event_1", "success", 20), ("fan_event_2", "success", 20)], runs


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
    # Each table's days to export first, as an in-process run says them.
    assert sum(f": {DAYS} day(s) to export" in line for line in result.stdout.splitlines()) == len(
        EXTRACTORS
    ), result.stdout
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
    again = scenario.run("--jobs=3", "--no-progress")
    assert again.returncode == 0, again.describe()
    assert sum(line.endswith(": up to date") for line in again.stdout.splitlines()) == len(
        EXTRACTORS
    ), again.stdout


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
    _exactly_once(scenario, ("fan_event_1", "fan_event_2"))


# -- operations: the broker down when publishing, a busy table, following a run later ---------

SECRET = "s3cret-Broker-pw"


def _small(factory: ScenarioFactory, broker_url: str, **settings: Any) -> tuple[Scenario, str]:
    """Two extractors over twenty days: four units (the operations tests need few)."""
    scenario = factory.new(
        "duckdb",
        days=20,
        settings={
            "SMOLQWERY_EXTRACTORS": list(EXTRACTORS[:2]),
            "SMOLQWERY_BATCH_DAYS": UNIT_DAYS,
            "SMOLQWERY_LOCK_TIMEOUT": 20,
            "SMOLQWERY_CELERY_APP": "tests.celeryapp.app",
            **settings,
        },
        create_tables=False,
    )
    scenario.create_tables(EXTRACTORS[:2])
    queue = f"smolqwery-{uuid.uuid4().hex[:8]}"
    scenario.extra_env.update(
        {
            "SMOLQWERY_TEST_BROKER_URL": broker_url,
            "SMOLQWERY_TEST_QUEUE": queue,
            "DJANGO_SETTINGS_MODULE": "tests.crash_settings",
        }
    )
    return scenario, queue


def _exactly_once(scenario: Scenario, tables: tuple[str, ...]) -> None:
    with scenario.warehouse() as wh:
        for table in tables:
            rows = fetch_rows(wh, table)
            want = sum(len(e) for e in scenario.expected.values())
            assert len(rows) == len({r["id"] for r in rows}) == want, table
            assert set(wh.exported_days(table)) == set(scenario.expected), table


@pytest.mark.parametrize(
    ("scheme", "how"), [("redis", "hung"), ("amqp", "down")], ids=["redis-hung", "amqp-down"]
)
def test_enqueue_with_the_broker_down_or_hung_fails_fast_in_one_line_without_secrets(
    crash_scenarios: ScenarioFactory, scheme: str, how: str
) -> None:
    """A broker that accepts connections and never answers (redis-py alone waits forever: the
    command hung), or nothing listening on its port: ``--enqueue`` exits 1 within
    ``SMOLQWERY_PUBLISH_TIMEOUT``, one line names the broker with its password masked, and no
    unit is recorded (nothing waits as "queued" for a worker that will never get it)."""
    from tests.fixtures.brokers import free_port

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # the kernel completes handshakes; nobody ever reads
        port = hung.getsockname()[1] if how == "hung" else free_port()
        url = {
            "redis": f"redis://:{SECRET}@127.0.0.1:{port}/0",
            "amqp": f"amqp://guest:{SECRET}@127.0.0.1:{port}//",
        }[scheme]
        # No tables: the broker is checked before anything is planned.
        scenario = crash_scenarios.new(
            "duckdb",
            days=20,
            settings={
                "SMOLQWERY_EXTRACTORS": list(EXTRACTORS[:2]),
                "SMOLQWERY_CELERY_APP": "tests.celeryapp.app",
                "SMOLQWERY_PUBLISH_TIMEOUT": 1,
            },
            create_tables=False,
        )
        scenario.extra_env.update(
            {"SMOLQWERY_TEST_BROKER_URL": url, "DJANGO_SETTINGS_MODULE": "tests.crash_settings"}
        )
        started = time.monotonic()
        result = scenario.run("--enqueue", timeout=60)
        took = time.monotonic() - started
    assert result.returncode == 1, result.describe()
    assert SECRET not in result.output, result.describe()
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    masked = {
        "redis": f"redis://:**@127.0.0.1:{port}/0",
        "amqp": f"amqp://guest:**@127.0.0.1:{port}",
    }
    assert len(errors) == 1 and masked[scheme] in errors[0], result.describe()
    assert "cannot be reached" in errors[0] and "nothing was queued" in errors[0], errors
    assert took < 12, took  # a child's start (~2 s) + at most ~3 x 1 s
    assert units(scenario) == []


def test_enqueue_without_a_celery_app_says_so_and_queues_nothing(
    crash_scenarios: ScenarioFactory,
) -> None:
    """A project that never set Celery up: Celery's fallback app would publish to
    amqp://localhost (a RabbitMQ there takes the messages, no worker of the project ever
    does). ``--enqueue`` refuses before planning, and says what to set."""
    scenario = crash_scenarios.new(
        "duckdb",
        days=20,
        settings={"SMOLQWERY_EXTRACTORS": list(EXTRACTORS[:2]), "SMOLQWERY_CELERY_APP": ""},
        create_tables=False,
    )
    scenario.extra_env.update({"DJANGO_SETTINGS_MODULE": "tests.crash_settings"})
    result = scenario.run("--enqueue", timeout=60)
    assert result.returncode == 1, result.describe()
    assert "--enqueue found no Celery app" in result.stderr, result.describe()
    assert "SMOLQWERY_CELERY_APP" in result.stderr and "Traceback" not in result.stderr
    assert units(scenario) == []
    # The layout of Celery's Django guide: the project's app imported with the project (its
    # Django fixup makes it Celery's default app), SMOLQWERY_CELERY_APP not set: it is used.
    scenario.create_tables(EXTRACTORS[:2])
    guide = scenario.run(
        "-c",
        "import tests.celeryapp; from django.core.management import call_command; "
        "call_command('smolqwery_extract', '--enqueue')",
        command="shell",
        timeout=60,
    )
    assert guide.returncode == 0, guide.describe()
    queued = len(units(scenario))
    assert queued > 0 and f"{queued} unit(s) queued" in guide.output, guide.describe()


def test_a_broker_gone_mid_publish_marks_the_rest_not_published_and_the_next_run_plans_them(
    brokers: dict[str, Broker], crash_scenarios: ScenarioFactory
) -> None:
    """Redis stopped after two of four messages: ``--enqueue`` exits 1 in one line naming the
    broker; the two units published stay queued, the other two are marked failed ("not
    published") at once; ``--wait --run`` reports the run as failed; the next run (broker
    back) plans every missing day again. (That its units then export each day exactly once is
    the other tests' business.)"""
    from tests.crashapp.killswitch import PAUSE_DIR_ENV
    from tests.fixtures.crash import paused_child

    broker = brokers["redis"]
    if not broker.running:
        broker.start()
    scenario, _ = _small(crash_scenarios, broker.url, SMOLQWERY_PUBLISH_TIMEOUT=2)
    pause = scenario.root / "pause"
    run = scenario.start(
        "--enqueue",
        plan=Plan("kombu.publish", "before", 3, "pause"),
        env={PAUSE_DIR_ENV: str(pause)},
    )
    try:
        with paused_child(pause, run):
            broker.stop()
        result = scenario.finish(run, timeout=60)
    finally:
        if not broker.running:
            broker.start()
    assert result.returncode == 1, result.describe()
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.describe()
    assert f"the broker redis://127.0.0.1:{broker.port}/0 failed" in errors[0], errors
    assert "2 of 4 unit(s) queued, the other 2 marked failed (not published)" in errors[0]
    run_id = errors[0].split("run ", 1)[1].split(":", 1)[0]
    assert sorted(s for *_, s in units(scenario)) == ["failed", "failed", "queued", "queued"]
    with sqlite3.connect(scenario.db) as con:
        reasons = [e for (e,) in con.execute("SELECT error FROM smolqwery_exportunit")]
    assert sum(e.startswith("not published: the broker redis://") for e in reasons) == 2

    # Following that run later: it failed (the broker lost the two it had taken).
    follow = scenario.run("--wait", "--run", run_id, "--wait-timeout=1", "--no-progress")
    assert follow.returncode == 1, follow.describe()
    assert "not published" in follow.output and "did not finish" in follow.output

    # The next run (the broker back) plans every day again: the units not published, and the
    # two whose messages died with the broker, which its published units supersede.
    again = scenario.run("--enqueue")
    assert again.returncode == 0, again.describe()
    with sqlite3.connect(scenario.db) as con:
        by_run = con.execute(
            "SELECT run_id = ?, status, count(*) FROM smolqwery_exportunit GROUP BY 1, 2",
            [run_id],
        ).fetchall()
    assert sorted(by_run) == [(0, "queued", 4), (1, "failed", 2), (1, "superseded", 2)]


def test_a_busy_table_is_retried_by_the_worker_and_the_run_is_followed_later(
    brokers: dict[str, Broker], crash_scenarios: ScenarioFactory, celery_workers: Workers
) -> None:
    """Cron's ``--enqueue`` returns; the table's lease is held by a live process meanwhile: the
    worker puts the unit back (``SMOLQWERY_BUSY_RETRY``), the unit stays queued, never failed;
    once the lease is released, ``--wait --run last`` (an operator, later) sees every unit
    done, each run once, and exits 0."""
    broker = brokers["redis"]
    if not broker.running:
        broker.start()
    scenario, queue = _small(
        crash_scenarios,
        broker.url,
        SMOLQWERY_EXTRACTORS=[EXTRACTORS[0]],
        SMOLQWERY_BUSY_RETRY=1,
    )
    held, release = scenario.root / "held", scenario.root / "release"
    holder = scenario.start(
        "-c",
        "import pathlib, time\n"
        "from smolqwery.locking import table_lock\n"
        "with table_lock('fan_event_1', 'holder', 120):\n"
        f"    pathlib.Path({str(held)!r}).touch()\n"
        f"    while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.05)\n",
        command="shell",
    )
    try:
        wait_for(held.exists, "the holder to take the table's lease", timeout=60)
        worker = celery_workers.start(scenario.env(), queue)[0]
        queued = scenario.run("--enqueue")
        assert queued.returncode == 0, queued.describe()
        run_id = queued.output.split("run ", 1)[1].split(":", 1)[0]
        try:
            wait_for(lambda: worker.output().count("retry: Retry in 1") >= 2, "retries", timeout=30)
        except AssertionError:
            raise AssertionError(worker.output()[-4000:]) from None
        assert {(a, s) for _, _, a, s in units(scenario)} == {(0, "queued")}
        assert f"run {run_id}: 2 unit(s) queued" in queued.output
        follow = scenario.start("--wait", "--run", "last", "--wait-timeout=30", "--no-progress")
    finally:
        release.touch()
    assert scenario.finish(holder).returncode == 0
    result = scenario.finish(follow, timeout=90)
    assert result.returncode == 0, result.describe()
    assert "fan_event_1" in result.stdout, result.describe()
    assert sorted(units(scenario)) == sorted((t, f, 1, "done") for t, f, _, _ in units(scenario))
    _exactly_once(scenario, ("fan_event_1",))
    with sqlite3.connect(scenario.db) as con:
        runs = con.execute("SELECT status FROM smolqwery_exportrun WHERE run_id = ?", [run_id])
        assert runs.fetchall() == [("success",)]
