"""Settings of the test suite. ``SMOLQWERY_TEST_DB=sqlite|postgres|mariadb`` chooses the
database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Paris"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "smolqwery",
    "tests.testapp",
    "tests.exportapp",
    "tests.activityapp",
    "tests.arrowapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_DB = os.environ.get("SMOLQWERY_TEST_DB", "sqlite")
DATABASES: dict[str, dict[str, Any]]
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("SMOLQWERY_TEST_PG_NAME", "smolqwery"),
            "USER": os.environ.get("SMOLQWERY_TEST_PG_USER", "postgres"),
            "HOST": os.environ.get("SMOLQWERY_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("SMOLQWERY_TEST_PG_PORT", "5432"),
        }
    }
elif _DB == "mariadb":
    # MariaDB (or MySQL) through Django's MySQL backend (mysqlclient: pip install
    # smolqwery[mysql], which builds against libmariadb-dev).
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("SMOLQWERY_TEST_MYSQL_NAME", "smolqwery"),
            "USER": os.environ.get("SMOLQWERY_TEST_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("SMOLQWERY_TEST_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("SMOLQWERY_TEST_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("SMOLQWERY_TEST_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"},
        }
    }
elif _DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "test.sqlite3"),
        }
    }
else:
    raise RuntimeError(f"SMOLQWERY_TEST_DB must be 'sqlite', 'postgres' or 'mariadb', got {_DB!r}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

# smolqwery: tests use the embedded DuckDB warehouse unless a test says otherwise.
SMOLQWERY_WAREHOUSE = "duckdb"
SMOLQWERY_DJANGO_APP = "testapp"
SMOLQWERY_EXTRACTORS: list[str] = []
SMOLQWERY_DATASET = "smolqwery_tests"
