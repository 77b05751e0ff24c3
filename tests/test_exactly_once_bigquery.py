"""The exactly-once state machine of :mod:`tests.test_exactly_once_state_machine`, on the emulator.

A file of its own so that pytest-xdist (``--dist loadfile``) runs it beside the DuckDB machine
instead of after it: it is the longest test of the suite.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_exactly_once_state_machine import EMULATOR_EXAMPLES, EMULATOR_STEPS, play

pytestmark = [pytest.mark.django_db, pytest.mark.emulator, pytest.mark.slow]


def test_exactly_once_on_the_bigquery_emulator(bigquery_warehouse: Any) -> None:
    play(bigquery_warehouse, examples=EMULATOR_EXAMPLES, steps=EMULATOR_STEPS)
