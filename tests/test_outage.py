"""A warehouse outage in the middle of a run: retries, a clear failure, then a clean catch-up.

A BigQuery emulator of the test's own (the session's one must not go down) on a fixed port and
data directory. The export is paused by the kill switch just before its second load job — the
first batch is committed — the emulator is stopped, and the export resumed: it must retry with
backoff until ``SMOLQWERY_RETRY_DEADLINE``, then fail with a message saying so and a non-zero
exit. The emulator is started again on the same port and data; the next run must complete with
every day exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crashapp.killswitch import Plan
from tests.fixtures.crash import (
    EXTRACTORS,
    ScenarioFactory,
    paused_child,
)
from tests.fixtures.emulator import Emulator, EmulatorUnavailable, _free_port, install
from tests.fixtures.emulator import start as start_emulator

pytestmark = [pytest.mark.slow, pytest.mark.emulator]

RETRY_DEADLINE = 8


class Restartable:
    """An emulator that can be stopped and started again as the same server."""

    def __init__(self, data_dir: Path) -> None:
        self.inst = install()
        self.data_dir = data_dir
        self.port, self.grpc_port = _free_port(), _free_port()
        self.current: Emulator = self.start()

    def start(self) -> Emulator:
        self.current = start_emulator(self.inst, self.data_dir, self.port, self.grpc_port)
        return self.current

    def stop(self) -> None:
        self.current.stop()


@pytest.fixture
def own_emulator(tmp_path: Path) -> Iterator[Restartable]:
    try:
        emulator = Restartable(tmp_path / "emulator")
    except EmulatorUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield emulator
    finally:
        emulator.stop()


def test_outage_mid_run_fails_clearly_then_next_run_catches_up(
    own_emulator: Restartable, crash_scenarios: ScenarioFactory
) -> None:
    scenario = crash_scenarios.new(
        "bigquery",
        own_emulator.current,
        days=4,
        settings={
            "SMOLQWERY_EXTRACTORS": [EXTRACTORS[0]],
            "SMOLQWERY_RETRY_DEADLINE": RETRY_DEADLINE,
            "SMOLQWERY_LOCK_TIMEOUT": 120,
        },
    )
    pause_dir = scenario.root / "pause"
    proc = scenario.start(
        plan=Plan("bigquery.load_table_from_file", "before", 2, "pause"), pause_dir=pause_dir
    )
    with paused_child(pause_dir, proc):
        own_emulator.stop()
    failed = scenario.finish(proc, timeout=RETRY_DEADLINE * 10 + 60)
    assert failed.returncode not in (0, -9), failed.describe()
    assert "Traceback" not in failed.output, failed.describe()
    assert "crash_event" in failed.output, failed.describe()
    assert "SMOLQWERY_RETRY_DEADLINE" in failed.output, failed.describe()
    assert failed.output.count("retrying") >= 2, failed.describe()  # backoff, several tries

    own_emulator.start()
    # The first batch was committed before the outage: the ledger still says so, exactly.
    assert len(scenario.problems(complete=False)) == 0
    with scenario.warehouse() as wh:
        assert len(wh.exported_days("crash_event")) == 2
    again = scenario.run_until_done()
    assert again.returncode == 0 and not again.locked_out, again.describe()
    assert "2 day(s) to export" in again.output, again.describe()
    assert scenario.problems() == []


def test_emulator_down_before_the_run_fails_within_the_deadline(
    own_emulator: Restartable, crash_scenarios: ScenarioFactory
) -> None:
    """Nothing listening at all: the same clear failure, the lock released for the next run."""
    scenario = crash_scenarios.new(
        "bigquery",
        own_emulator.current,
        days=2,
        settings={"SMOLQWERY_RETRY_DEADLINE": RETRY_DEADLINE, "SMOLQWERY_LOCK_TIMEOUT": 120},
    )
    own_emulator.stop()
    failed = scenario.run(timeout=RETRY_DEADLINE * 10 + 60)
    assert failed.returncode not in (0, -9), failed.describe()
    assert "SMOLQWERY_RETRY_DEADLINE" in failed.output, failed.describe()
    own_emulator.start()
    # A lock held by the failed run would make this one exit with "another export is running".
    again = scenario.run()
    assert again.returncode == 0 and not again.locked_out, again.describe()
    assert scenario.problems() == []


def test_status_with_the_emulator_down_answers_within_its_own_deadline(
    own_emulator: Restartable, crash_scenarios: ScenarioFactory
) -> None:
    """Monitoring during an outage: every table unreadable, exit 2, after the status deadline
    (2 s), not the export's (600 s, per table). A hang is killed by the harness and fails."""
    scenario = crash_scenarios.new(
        "bigquery",
        own_emulator.current,
        days=2,
        settings={"SMOLQWERY_RETRY_DEADLINE": 600, "SMOLQWERY_STATUS_DEADLINE": 2},
    )
    own_emulator.stop()
    result = scenario.run(command="smolqwery_status", timeout=120)
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.output, result.describe()
    for table in ("crash_event", "crash_daily"):
        assert f"{table} cannot be read" in result.stderr, result.describe()
    assert "Connection refused" in result.stderr, result.describe()
    assert "after 2 s of retries (SMOLQWERY_STATUS_DEADLINE)" in result.stderr, result.describe()
    assert "SMOLQWERY_STATUS_DEADLINE (2 s) spent" in result.stderr, result.describe()
