"""A killed export does not block the next one (issue 13).

A real ``smolqwery_extract`` is SIGKILLed in the middle of its run, its lease having an hour to
go (``SMOLQWERY_LOCK_TIMEOUT = 3600``). ``smolqwery_status`` must show that run as
``interrupted``, and the next run, started at once, must take the dead run's lock over and
export every day exactly once.
"""

from __future__ import annotations

import json

import pytest

from tests.crashapp.killswitch import Plan
from tests.fixtures.crash import ScenarioFactory

pytestmark = [pytest.mark.slow, pytest.mark.source_db]


def last_runs(output: str) -> set[str]:
    """The status word of each table's last run in ``smolqwery_status --format json``."""
    return {t["last_run"].split()[0] for t in json.loads(output)["tables"] if t["last_run"]}


def test_a_killed_run_is_taken_over_at_once_and_shown_interrupted(
    crash_scenarios: ScenarioFactory,
) -> None:
    scenario = crash_scenarios.new("duckdb", settings={"SMOLQWERY_LOCK_TIMEOUT": 3600})
    # After the first batch committed: some days exported, the lock and a run left behind.
    killed = scenario.run(plan=Plan("duckdb.execute:COMMIT", "after", 1))
    assert killed.killed, killed.describe()
    assert scenario.problems(complete=False) == []

    status = scenario.run("--format=json", command="smolqwery_status")
    assert status.returncode == 0, status.describe()
    assert "interrupted" in last_runs(status.stdout), status.describe()

    again = scenario.run()  # no waiting: the lease still has about an hour to run
    assert again.returncode == 0 and not again.locked_out, again.describe()
    assert "no longer exists" in again.output, again.describe()
    assert scenario.problems() == []

    status = scenario.run("--format=json", command="smolqwery_status")
    assert status.returncode == 0, status.describe()
    assert last_runs(status.stdout) == {"success"}, status.describe()
