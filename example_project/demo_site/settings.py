"""Settings of the smolqwery example project: SQLite plus the embedded DuckDB warehouse.

Nothing here needs a Google account. Both files live in a state directory that git ignores
(``example_project/smolqwery_demo/`` by default; ``SMOLQWERY_DEMO_DIR`` moves it, which is how
the tests run the demo in a temporary directory).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from zoneinfo import ZoneInfo

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("SMOLQWERY_DEMO_DIR") or BASE_DIR / "smolqwery_demo")
# SQLite does not create missing directories; the state directory is the demo's own.
STATE_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "smolqwery",
    "shop",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "demo_site.urls"
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
WSGI_APPLICATION = "demo_site.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": STATE_DIR / "db.sqlite3",
    }
}
if os.environ.get("SMOLQWERY_DEMO_POSTGRES"):
    # The demo on PostgreSQL instead (the tests run it so): a database name; the server and
    # user come from libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD environment variables.
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["SMOLQWERY_DEMO_POSTGRES"],
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
# Days are exported in this time zone: a day runs from local midnight to local midnight.
TIME_ZONE = "Europe/Paris"
STATIC_URL = "static/"

# --- smolqwery ------------------------------------------------------------------------------
#: How many complete days of data ``generate_demo_data`` creates by default (before today).
SMOLQWERY_DEMO_DAYS = int(os.environ.get("SMOLQWERY_DEMO_DAYS", "30"))

# The embedded warehouse: a DuckDB file with the same tables and views BigQuery would get.
SMOLQWERY_WAREHOUSE = "duckdb"
SMOLQWERY_DUCKDB_PATH = STATE_DIR / "warehouse.duckdb"
SMOLQWERY_DATASET = "shop_analytics"
# The app whose migrations folder receives smolqwery's migrations.
SMOLQWERY_DJANGO_APP = "shop"
SMOLQWERY_EXTRACTORS = [
    "shop.extractors.UserExtractor",
    "shop.extractors.EmailExtractor",
    "shop.extractors.ContractStatsExtractor",
    "shop.extractors.Signups",
    "shop.extractors.ActiveCustomers",
]
# The demo data starts SMOLQWERY_DEMO_DAYS days ago; a real project writes a fixed date here,
# e.g. datetime.date(2024, 1, 1).
SMOLQWERY_FIRST_DATE = datetime.datetime.now(ZoneInfo(TIME_ZONE)).date() - datetime.timedelta(
    days=SMOLQWERY_DEMO_DAYS
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"smolqwery": {"handlers": ["console"], "level": "WARNING"}},
}
