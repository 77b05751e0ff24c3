"""Settings of the child processes started by the reliability tests (``--settings=…``).

Each scenario has its own database and warehouse, so everything that differs comes from the
environment, set by ``tests/fixtures/crash.py``:

``SMOLQWERY_TEST_DB``       ``sqlite`` or ``postgres``, as for the test suite;
``SMOLQWERY_CRASH_DB``      the SQLite file, or the PostgreSQL database name;
``SMOLQWERY_CRASH_TZ``      ``TIME_ZONE``;
``SMOLQWERY_CRASH_SQLITE_WAL`` if set, SQLite in WAL journal mode;
``SMOLQWERY_CRASH_SETTINGS`` a JSON object of further settings (warehouse, dataset, extractors,
                            first date, timeouts, Google key, ``LOGGING``…), applied last.

The kill switch (:mod:`tests.crashapp.killswitch`) is armed here, before any command runs, when
its own environment variables are set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.crashapp.killswitch import arm_from_environment

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "crash-tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = os.environ.get("SMOLQWERY_CRASH_TZ", "Europe/Paris")
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "smolqwery",
    "tests.crashapp",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_DB = os.environ.get("SMOLQWERY_TEST_DB", "sqlite")
_NAME = os.environ.get("SMOLQWERY_CRASH_DB", "")
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _NAME or "smolqwery_crash",
            "USER": os.environ.get("SMOLQWERY_TEST_PG_USER", "postgres"),
            "HOST": os.environ.get("SMOLQWERY_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("SMOLQWERY_TEST_PG_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _NAME or str(BASE_DIR / "crash.sqlite3"),
            # Two overlapping exports write to the same file: wait for each other's writes.
            "OPTIONS": {"timeout": 30},
        }
    }
    if os.environ.get("SMOLQWERY_CRASH_SQLITE_WAL"):
        # Readers no longer block writers (and the reverse): the mode to run cron exports in.
        DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"

SMOLQWERY_WAREHOUSE = "duckdb"
SMOLQWERY_DJANGO_APP = "crashapp"
SMOLQWERY_EXTRACTORS = [
    "tests.crashapp.extractors.CrashEventExtractor",
    "tests.crashapp.extractors.CrashDailyExtractor",
]
SMOLQWERY_DATASET = "crash"

globals().update(json.loads(os.environ.get("SMOLQWERY_CRASH_SETTINGS") or "{}"))

arm_from_environment()
