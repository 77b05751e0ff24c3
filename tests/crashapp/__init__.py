"""Test-only app for the reliability suite (issue 6): source models, extractors, a kill switch.

Child processes started by ``tests/fixtures/crash.py`` run real management commands with
``--settings=tests.crash_settings``, which installs this app.
"""
