"""Test-only extractors and dataclasses for the checks, schema and API-compatibility tests."""
