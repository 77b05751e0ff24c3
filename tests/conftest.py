"""Shared fixtures. Each concern keeps its fixtures in a ``tests/fixtures`` module."""

pytest_plugins = [
    "tests.fixtures.crash",
    "tests.fixtures.emulator",
    "tests.fixtures.legacy",
    "tests.fixtures.warehouses",
]
