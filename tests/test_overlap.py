"""Overlapping exports leave exactly one copy of every row (issue 6; 0.1.3 defect D6).

Real ``smolqwery_extract`` processes on one project: started together; started while another
holds the lock in the middle of a transaction (it is paused there by the kill switch); with
``--wait``; after the lock holder was killed on another host (its lease must expire, then be
taken over; on this host it is taken over at once, ``tests/test_dead_holder.py``); and
a holder stalled past its lease, which must stop rather than write over its successor.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.crashapp.killswitch import Plan
from tests.fixtures.crash import LOCKED_MESSAGE, Scenario, ScenarioFactory, paused_child

pytestmark = [pytest.mark.slow, pytest.mark.source_db]

KINDS = ["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)]


@pytest.fixture
def make_scenario(crash_scenarios: ScenarioFactory, request: pytest.FixtureRequest) -> Any:
    def make(kind: str, **settings: Any) -> Scenario:
        emulator = request.getfixturevalue("bigquery_emulator") if kind == "bigquery" else None
        return crash_scenarios.new(kind, emulator, days=4, settings=settings)

    return make


def exported_rows(output: str) -> bool:
    """Whether a run's summary says it wrote rows (as opposed to finding nothing to do)."""
    return "exported " in output


@pytest.mark.parametrize("kind", KINDS)
def test_d06_two_exports_started_together(kind: str, make_scenario: Any) -> None:
    scenario = make_scenario(kind, SMOLQWERY_LOCK_TIMEOUT=120)
    first, second = scenario.start(), scenario.start()
    results = [scenario.finish(first), scenario.finish(second)]
    for result in results:
        assert result.returncode == 0, result.describe()
    assert scenario.problems() == []
    # One did the work; the other found the lock taken, or (if it started late) nothing to do.
    assert sum(exported_rows(r.output) for r in results) == 1, [r.output for r in results]
    for result in results:
        if not exported_rows(result.output):
            assert result.locked_out or "0 day(s) to export" in result.output, result.describe()


SQLITE = os.environ.get("SMOLQWERY_TEST_DB", "sqlite") == "sqlite"


def second_export_while_first_is_in_its_transaction(scenario: Scenario) -> None:
    pause_dir = scenario.root / "pause"
    holder = scenario.start(plan=Plan("extract.yield", "at", 2, "pause"), pause_dir=pause_dir)
    with paused_child(pause_dir, holder):
        late = scenario.run(timeout=120)
        assert late.returncode == 0, late.describe()
        assert LOCKED_MESSAGE in late.output.lower(), late.describe()
        assert not exported_rows(late.output)
    done = scenario.finish(holder)
    assert done.returncode == 0, done.describe()
    assert scenario.problems() == []


@pytest.mark.parametrize("kind", KINDS)
def test_second_export_while_one_is_in_its_transaction_exits_0(
    kind: str, make_scenario: Any
) -> None:
    second_export_while_first_is_in_its_transaction(make_scenario(kind, SMOLQWERY_LOCK_TIMEOUT=120))


@pytest.mark.skipif(not SQLITE, reason="SQLite journal modes")
def test_second_export_exits_0_on_sqlite_in_wal_mode(make_scenario: Any) -> None:
    scenario = make_scenario("duckdb", SMOLQWERY_LOCK_TIMEOUT=120)
    scenario.extra_env = {"SMOLQWERY_CRASH_SQLITE_WAL": "1"}
    second_export_while_first_is_in_its_transaction(scenario)


def test_wait_option_waits_for_the_running_export(make_scenario: Any) -> None:
    scenario = make_scenario("duckdb", SMOLQWERY_LOCK_TIMEOUT=120)
    pause_dir = scenario.root / "pause"
    holder = scenario.start(plan=Plan("extract.yield", "at", 2, "pause"), pause_dir=pause_dir)
    with paused_child(pause_dir, holder):
        waiter = scenario.start("--wait")
        time.sleep(3)  # long enough for the waiter to start and find the lock taken
        assert waiter.poll() is None, "--wait must wait while the lock is held"
    done = scenario.finish(holder)
    waited = scenario.finish(waiter)
    assert done.returncode == 0, done.describe()
    assert waited.returncode == 0, waited.describe()
    assert not exported_rows(waited.output), waited.describe()  # nothing left to do
    assert scenario.problems() == []


#: The lock's owner as a run on another host would have written it (same pid and run id).
#: Every lease the killed run held (the export's and its table's) moved to another host.
MOVE_LOCK_ELSEWHERE = (
    "from smolqwery.models import ExportLock\n"
    "for lock in ExportLock.objects.all():\n"
    "    lock.owner = 'another-host:' + lock.owner.split(':', 1)[1]; lock.save()"
)


@pytest.mark.parametrize("kind", KINDS)
def test_lock_of_a_killed_export_is_taken_over_once_expired(kind: str, make_scenario: Any) -> None:
    """Killed on another host: nothing here can tell it is dead, its lease must run out."""
    lease = 10.0
    scenario = make_scenario(kind, SMOLQWERY_LOCK_TIMEOUT=lease)
    killed = scenario.run(plan=Plan("extract.yield", "at", 2))
    assert killed.killed, killed.describe()
    died = time.monotonic()
    elsewhere = scenario.run("-c", MOVE_LOCK_ELSEWHERE, command="shell")
    assert elsewhere.returncode == 0, elsewhere.describe()
    blocked = scenario.run()
    if time.monotonic() - died < lease - 1:  # the child started well within the lease
        assert blocked.locked_out, blocked.describe()
    final = scenario.run_until_done(patience=lease + 60)
    assert final.returncode == 0 and not final.locked_out, final.describe()
    assert scenario.problems() == []


@pytest.mark.parametrize("kind", KINDS)
def test_stalled_holder_whose_lease_expired_stops(kind: str, make_scenario: Any) -> None:
    """A holder paused (outside any warehouse call) past its lease; another run takes over and
    exports everything; the stalled one, resumed, must not write a second copy."""
    lease = 3.0
    scenario = make_scenario(kind, SMOLQWERY_LOCK_TIMEOUT=lease)
    pause_dir = scenario.root / "pause"
    # After the first batch is committed and recorded, before the lease is renewed.
    plan = Plan("django.sql:UPDATE:exportrun", "after", 1, "pause")
    stalled = scenario.start(plan=plan, pause_dir=pause_dir)
    with paused_child(pause_dir, stalled):
        time.sleep(lease)
        successor = scenario.run_until_done(patience=lease + 60)
        assert successor.returncode == 0 and not successor.locked_out, successor.describe()
        assert scenario.problems() == []
    resumed = scenario.finish(stalled)
    # A lost lease is reported (non-zero: the lease timeout is too short for this project).
    assert resumed.returncode not in (-9,), resumed.describe()
    assert "taken over" in resumed.output, resumed.describe()
    assert "Traceback" not in resumed.output, resumed.describe()
    assert scenario.problems() == []
