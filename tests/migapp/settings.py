"""Settings of the Django processes the migration tests start (``--settings``).

Everything comes from ``SQ_*`` environment variables set by :mod:`tests.migapp.harness`: the
run directory (databases, DuckDB file, generated migrations), the extractors and the warehouse.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RUN_DIR = Path(os.environ["SQ_RUN_DIR"])
sys.path.insert(0, str(RUN_DIR))

BASE_DIR = RUN_DIR
SECRET_KEY = "tests-only-not-secret"
USE_TZ = True
TIME_ZONE = "Europe/Paris"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "smolqwery",
    "tests.migapp",
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(RUN_DIR / "default.sqlite3")},
    "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(RUN_DIR / "other.sqlite3")},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Generated migrations live in the run directory, never in the repository.
MIGRATION_MODULES = {"migapp": os.environ.get("SQ_MIGRATIONS_MODULE", "migapp_migrations")}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"smolqwery": {"handlers": ["stderr"], "level": "INFO"}},
}

SMOLQWERY_DJANGO_APP = "migapp"
SMOLQWERY_EXTRACTORS = [
    f"tests.migapp.extractors.{name}"
    for name in os.environ.get("SQ_EXTRACTORS", "").split(",")
    if name
]
SMOLQWERY_DATASET = os.environ.get("SQ_DATASET", "smolqwery_mig")
SMOLQWERY_DATASET_LABELS = json.loads(os.environ.get("SQ_LABELS", '{"env": "test"}'))
SMOLQWERY_ACL_GROUPS = [g for g in os.environ.get("SQ_ACL_GROUPS", "").split(",") if g]
SMOLQWERY_ALLOW_DROP = os.environ.get("SQ_ALLOW_DROP") == "1"
SMOLQWERY_MIGRATE_IN_TESTS = os.environ.get("SQ_MIGRATE_IN_TESTS") == "1"
SMOLQWERY_RETRY_DEADLINE = float(os.environ.get("SQ_RETRY_DEADLINE", "30"))

if os.environ.get("SQ_WAREHOUSE") == "bigquery":
    SMOLQWERY_WAREHOUSE = "bigquery"
    SMOLQWERY_BIGQUERY_API_ENDPOINT = os.environ["SQ_BQ_ENDPOINT"]
    SMOLQWERY_BIGQUERY_PROJECT = os.environ.get("SQ_BQ_PROJECT", "test-project")
    SMOLQWERY_BIGQUERY_ANONYMOUS = os.environ.get("SQ_BQ_ANONYMOUS", "1") == "1"
else:
    SMOLQWERY_WAREHOUSE = "duckdb"
    SMOLQWERY_DUCKDB_PATH = str(RUN_DIR / "warehouse.duckdb")

if os.environ.get("SQ_LOCMEM_OUTBOX") == "1":
    # What a production locmem e-mail backend leaves behind: 0.1.3 took it for a test run (D13).
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    mail.outbox = []
