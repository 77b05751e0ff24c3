"""What the commands print, seen from real child processes (issue 14, points 4 and 5).

An extractor's own traceback reaches the user (``-v 2``, ``--traceback``, the project's logs);
without a terminal every line is timestamped, every day gets a line and each failure is
written once, on stderr; on a terminal a progress bar shows; ``print_extract | head -1`` ends
quietly.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.crashapp import hostile
from tests.fixtures.crash import REPO, django_command

RAISES = hostile.dotted_path("raises")
GOOD = "tests.crashapp.hostile.GoodExtractor"
HOSTILE_FILE = Path(hostile.__file__).resolve()
#: The line of the user's ``raise`` (found in the source, not hard-coded).
RAISE_LINE = next(
    number
    for number, line in enumerate(HOSTILE_FILE.read_text().splitlines(), start=1)
    if 'raise RuntimeError("the source database went away")' in line
)
USER_FRAME = f'File "{HOSTILE_FILE}", line {RAISE_LINE}, in _raise'
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d ")


def test_an_extractors_own_traceback_shows_its_file_and_line(
    scenario_on: Any, tmp_path: Path
) -> None:
    log = tmp_path / "smolqwery.log"
    logging_setting = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log)}},
        "loggers": {"smolqwery": {"handlers": ["file"], "level": "INFO"}},
    }
    scenario = scenario_on("duckdb", days=2, settings={"SMOLQWERY_EXTRACTORS": [RAISES, GOOD]})

    plain = scenario.run()
    assert plain.returncode == 1, plain.describe()
    # Once, on stderr, in one line; no traceback at the default verbosity.
    assert plain.stderr.count("the source database went away") == 1, plain.describe()
    assert "hostile_raises: FAILED: " in plain.stderr and "RuntimeError" in plain.stderr
    assert "Traceback" not in plain.output and "FAILED" not in plain.stdout
    assert "1 extractor(s) failed: hostile_raises" in plain.stderr

    for args in (["-v", "2"], ["--traceback"]):
        shown = scenario.run(*args)
        assert shown.returncode == 1, shown.describe()
        assert USER_FRAME in shown.stderr, shown.describe()

    scenario.settings["LOGGING"] = logging_setting
    logged = scenario.run()
    assert logged.returncode == 1, logged.describe()
    text = log.read_text()
    assert "hostile_raises" in text and "failed" in text
    assert USER_FRAME in text  # the project's logs get the traceback at any verbosity
    assert "Traceback" not in logged.output


def test_without_a_terminal_lines_are_timestamped_one_per_day(scenario_on: Any) -> None:
    days = 5
    scenario = scenario_on("duckdb", days=days, settings={"SMOLQWERY_EXTRACTORS": [GOOD, RAISES]})
    result = scenario.run()  # pipes, no terminal: what cron sees
    assert result.returncode == 1, result.describe()
    lines = result.stdout.splitlines() + result.stderr.splitlines()[:-1]  # last: CommandError
    assert lines and all(STAMP.match(line) for line in lines), result.describe()
    read = [
        line
        for line in result.stdout.splitlines()
        if "hostile_good: " in line and " read, " in line
    ]
    assert len(read) == days, result.describe()
    assert [line for line in result.stderr.splitlines() if "FAILED" in line] == [
        line for line in lines if "FAILED" in line
    ]
    assert len([line for line in lines if "FAILED" in line]) == 1


def test_print_extract_into_head_ends_quietly(scenario_on: Any) -> None:
    scenario = scenario_on("duckdb", days=2, settings={"SMOLQWERY_EXTRACTORS": [GOOD]})
    # Years of days: far more than a pipe buffer holds, so the pipe really breaks.
    command = django_command("smolqwery_print_extract", "-f", "2019-01-01", "--format", "json")
    producer = subprocess.Popen(
        command,
        cwd=REPO,
        env=scenario.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert producer.stdout is not None and producer.stderr is not None
    head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True, check=True)
    producer.stdout.close()
    error = producer.stderr.read().decode()
    producer.wait(timeout=240)
    assert head.stdout == b"[\n"
    assert error == ""
    assert producer.returncode == 141  # the pipe broke (128 + SIGPIPE), and nothing was shown


@pytest.mark.parametrize("jobs", [[], ["--jobs=2"]], ids=["in-process", "jobs"])
def test_on_a_terminal_extract_draws_a_progress_bar(scenario_on: Any, jobs: list[str]) -> None:
    """The bar counts the days once: read one by one in process, or as the units' batches
    commit in other processes (``--jobs``)."""
    scenario = scenario_on("duckdb", days=3, settings={"SMOLQWERY_EXTRACTORS": [GOOD]})
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        django_command("smolqwery_extract", *jobs),
        cwd=REPO,
        env={**scenario.env(), "COLUMNS": "120", "TERM": "xterm"},
        stdout=slave,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.stderr is not None
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=240) == 0, error
    text = screen.decode(errors="replace")
    assert "\x1b[" in text  # drawn with terminal escapes, not plain lines
    assert "hostile_good" in text and "3/3" in text and "days" in text
    assert "6/3" not in text
    assert not STAMP.match(text)
