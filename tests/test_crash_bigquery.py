"""The kill matrix of :mod:`tests.test_crash`, on the emulator (issue 6; 0.1.3 defect D5).

A file of its own so that pytest-xdist (``--dist loadfile``) runs it beside the DuckDB matrix.
Fewer kill points than on DuckDB (12 against 22, still every stage at its first and last
occurrence): each killed run and its recovery cost the emulator seconds of a core, and the
22-point matrix took 10 minutes of CI's 25 on a loaded machine.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.crash import EXTRACTORS, Scenario, ScenarioFactory
from tests.test_crash import assert_outcomes, run_kill_matrix

pytestmark = [pytest.mark.slow, pytest.mark.source_db, pytest.mark.emulator]

KILL_POINTS = 12
MIN_KILLS = 10
#: Four days in batches of two: two transactions, so a kill between them counts.
DAYS = 4


def test_d05_killed_bigquery_export_resumes_exactly(
    crash_scenarios: ScenarioFactory, bigquery_emulator: Any
) -> None:
    # One extractor: each emulator job takes a while, and the emulator serves one at a time.
    def make() -> Scenario:
        return crash_scenarios.new(
            "bigquery",
            bigquery_emulator,
            days=DAYS,
            settings={"SMOLQWERY_EXTRACTORS": [EXTRACTORS[0]]},
        )

    assert_outcomes(run_kill_matrix(make, KILL_POINTS), MIN_KILLS)
