"""``smolqwery_status`` answers fast, reads only, and says when it cannot tell (issue 13).

Each test runs the real command in a child process (``tests.fixtures.crash`` scenarios) against
a warehouse that cannot answer: a BigQuery endpoint that accepts connections and never replies
(before, status waited forever there), a DuckDB file held by an export, a missing DuckDB file.
The export's ``SMOLQWERY_RETRY_DEADLINE`` stays at 600 s; status must use its own short
``SMOLQWERY_STATUS_DEADLINE`` and exit 2. The harness kills a child that runs for minutes, so
a hang fails the test; no assertion is about speed.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.crash import TABLES, ChildResult, Scenario, ScenarioFactory

pytestmark = pytest.mark.slow

#: The export's deadline, which status must not wait for.
EXPORT_DEADLINE = 600
STATUS_DEADLINE = 2
#: Far beyond the status deadline, far below the export's: a child still running is hung.
HARNESS_TIMEOUT = 120.0


def status(scenario: Scenario, *args: str) -> ChildResult:
    return scenario.run(*args, command="smolqwery_status", timeout=HARNESS_TIMEOUT)


def settings(**more: object) -> dict[str, object]:
    return {
        "SMOLQWERY_RETRY_DEADLINE": EXPORT_DEADLINE,
        "SMOLQWERY_STATUS_DEADLINE": STATUS_DEADLINE,
        **more,
    }


def assert_unreadable(result: ChildResult) -> None:
    """Exit 2, every table reported unreadable, one line each, no traceback."""
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.output, result.describe()
    for table in TABLES:
        assert f"{table}: ERROR: " in result.stderr, result.describe()
        assert f"{table} cannot be read" in result.stderr, result.describe()


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def duckdb_held(path: Path, *, read_only: bool) -> Iterator[None]:
    """Another process with the DuckDB file open (an export writing, or a reader)."""
    code = (
        "import duckdb, sys, time; "
        f"con = duckdb.connect(sys.argv[1], read_only={read_only}); "
        "print('ready', flush=True); time.sleep(300)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()


def test_status_gives_up_on_a_bigquery_endpoint_that_never_answers(
    crash_scenarios: ScenarioFactory,
) -> None:
    with silent_endpoint() as endpoint:
        scenario = crash_scenarios.new(
            "duckdb",
            create_tables=False,
            settings=settings(
                SMOLQWERY_WAREHOUSE="bigquery",
                SMOLQWERY_BIGQUERY_API_ENDPOINT=endpoint,
                SMOLQWERY_BIGQUERY_ANONYMOUS=True,
                SMOLQWERY_BIGQUERY_PROJECT="status-test",
            ),
        )
        result = status(scenario)
    assert_unreadable(result)
    assert "SMOLQWERY_STATUS_DEADLINE (2 s) spent" in result.stderr, result.describe()


def test_status_gives_up_on_a_duckdb_file_held_by_an_export(
    crash_scenarios: ScenarioFactory,
) -> None:
    scenario = crash_scenarios.new("duckdb", settings=settings())
    with duckdb_held(Path(scenario.settings["SMOLQWERY_DUCKDB_PATH"]), read_only=False):
        result = status(scenario)
    assert_unreadable(result)
    assert "is held by another process" in result.stderr, result.describe()


def test_status_opens_the_duckdb_file_read_only(crash_scenarios: ScenarioFactory) -> None:
    """A read-only reader elsewhere shuts out writers, not readers: status reads along."""
    scenario = crash_scenarios.new("duckdb", settings=settings())
    exported = scenario.run()
    assert exported.returncode == 0, exported.describe()
    with duckdb_held(Path(scenario.settings["SMOLQWERY_DUCKDB_PATH"]), read_only=True):
        result = status(scenario, "--max-lag=0")
    assert result.returncode == 0, result.describe()
    for table in TABLES:
        assert f"\n{table} " in result.stdout, result.describe()


def test_status_does_not_create_a_missing_duckdb_file(crash_scenarios: ScenarioFactory) -> None:
    scenario = crash_scenarios.new("duckdb", create_tables=False, settings=settings())
    path = Path(scenario.settings["SMOLQWERY_DUCKDB_PATH"])
    result = status(scenario)
    assert_unreadable(result)
    assert f"DuckDB file {path} does not exist" in result.stderr, result.describe()
    assert not path.exists()
