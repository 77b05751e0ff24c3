"""Shared fixtures. Each concern keeps its fixtures in a ``tests/fixtures`` module."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.brokers",
    "tests.fixtures.crash",
    "tests.fixtures.emulator",
    "tests.fixtures.legacy",
    "tests.fixtures.packaging",
    "tests.fixtures.warehouses",
]

#: Fixtures that start the BigQuery emulator: a test using one is an ``emulator`` test, so
#: ``-m "not emulator"`` never starts it, whatever the test's own marks say.
EMULATOR_FIXTURES = frozenset({"bigquery_emulator", "bigquery_warehouse"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if EMULATOR_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.emulator)
