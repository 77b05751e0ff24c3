"""A full disk under the DuckDB file (issue 13): the user reads "No space left on device" and
what to do — not DuckDB's "cannot rollback" that hid it — nothing of the batch is written, and
once space is freed the next run exports every day exactly once.

The disk is real: a 2 MiB tmpfs mounted for the test (needs root; skipped otherwise), filled
up with a file after the tables are created, so the export's first commit meets ENOSPC.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.crash import ScenarioFactory

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``; unmounted whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is emulated with a tmpfs mount, which needs root")
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system refuses: ENOSPC."""
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def test_a_full_disk_says_so_and_the_next_run_catches_up(
    crash_scenarios: ScenarioFactory, tmp_path: Path
) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        scenario = crash_scenarios.new(
            "duckdb", settings={"SMOLQWERY_DUCKDB_PATH": str(disk / "wh.duckdb")}
        )
        filler = disk / "filler"
        fill(filler)

        failed = scenario.run()
        assert failed.returncode != 0, failed.describe()
        assert "No space left on device" in failed.output, failed.describe()
        assert "free space on its disk" in failed.output, failed.describe()
        assert "nothing of this change was written" in failed.output, failed.describe()
        assert "cannot rollback" not in failed.output, failed.describe()
        assert "Traceback" not in failed.output, failed.describe()
        filler.unlink()
        assert scenario.problems(complete=False) == []  # nothing half-written

        again = scenario.run()
        assert again.returncode == 0, again.describe()
        assert scenario.problems() == []
