"""The benchmark command runs end to end on a few rows and prints its figures (issue 8).

Only that it works and that every path wrote exactly the generated rows: no timing is asserted
(speed is measured by ``bench/run`` and recorded in bench/RESULTS.md, never by tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.emulator]


def test_bench_command_prints_figures_and_ratios(tmp_path: Path) -> None:
    db = os.environ.get("SMOLQWERY_TEST_DB", "sqlite")
    out_json = tmp_path / "figures.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DJANGO_"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--rows",
            "3000",
            "--days",
            "3",
            "--small",
            "600",
            "--backfill-days",
            "5",
            "--db",
            db,
            "--pg-name",
            f"smolqwery_bench_smoke_{os.getpid()}",
            "--json",
            str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for label in (
        "(1) floor",
        "(2) smolqwery_extract -> DuckDB",
        "(3) smolqwery_extract -> emulator",
        "(4) 0.1.3 insert_rows_json",
        "rows/s",
        "peak RSS",
        "(2)/(1) = ",
        "(4)/(3) = ",
        "load job(s)",
    ):
        assert label in text, f"{label!r} missing from:\n{text}"

    figures = json.loads(out_json.read_text())
    by_step = {(m["size"], m["step"]): m for m in figures["results"]}
    for step in ("floor", "duckdb", "bigquery"):
        assert by_step[(600, step)]["rows"] == 600
        assert by_step[(3000, step)]["rows"] == 3000
    legacy = by_step[(3000, "legacy")]
    assert legacy["rows"] == 3000 and legacy["extra"]["errors"] == 0
    backfill = by_step[(3000, "backfill")]
    # One aggregated row per day, written by a single load job however many days.
    assert backfill["rows"] == 5
    assert backfill["extra"]["load_jobs"] == 1
    for m in figures["results"]:
        assert m["seconds"] > 0 and m["rss_mb"] > 0
