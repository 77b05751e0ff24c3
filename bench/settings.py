"""Django settings of the benchmark; every variable part comes from ``BENCH_*`` variables.

The orchestrator (``python -m bench``) sets them for each measurement subprocess, so one
settings module serves SQLite and PostgreSQL, DuckDB and the BigQuery emulator.
"""

from __future__ import annotations

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory and ruin the RSS figures
USE_TZ = True
TIME_ZONE = os.environ.get("BENCH_TIME_ZONE", "Europe/Paris")
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "smolqwery", "bench"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_DB = os.environ.get("BENCH_DB", "sqlite")
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "smolqwery_bench"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", "/tmp/smolqwery-bench.sqlite3"),
        }
    }

SMOLQWERY_DJANGO_APP = "bench"
SMOLQWERY_EXTRACTORS = [p for p in os.environ.get("BENCH_EXTRACTORS", "").split(",") if p] or [
    "bench.extractors.BenchEventExtractor",
    "bench.extractors.BenchDailyExtractor",
    "bench.extractors.BenchEventQuerySetExtractor",
]
SMOLQWERY_DATASET = os.environ.get("BENCH_DATASET", "smolqwery_bench")
SMOLQWERY_WAREHOUSE = os.environ.get("BENCH_WAREHOUSE", "duckdb")
if "BENCH_FIRST_DATE" in os.environ:
    SMOLQWERY_FIRST_DATE = os.environ["BENCH_FIRST_DATE"]
if "BENCH_DUCKDB_PATH" in os.environ:
    SMOLQWERY_DUCKDB_PATH = os.environ["BENCH_DUCKDB_PATH"]
# DuckDB's buffer pool (issue 16: RSS from 1M to 10M rows); unset: DuckDB's default.
SMOLQWERY_DUCKDB_MEMORY_LIMIT = os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT")
if "BENCH_BQ_ENDPOINT" in os.environ:
    SMOLQWERY_BIGQUERY_API_ENDPOINT = os.environ["BENCH_BQ_ENDPOINT"]
    SMOLQWERY_BIGQUERY_ANONYMOUS = True
    SMOLQWERY_BIGQUERY_PROJECT = os.environ.get("BENCH_BQ_PROJECT", "test-project")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"smolqwery": {"handlers": ["stderr"], "level": "WARNING"}},
}
