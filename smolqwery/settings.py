"""Every ``SMOLQWERY_*`` setting, its default and its validation, in one place.

Settings are read when needed, not at import or app-ready time (0.1.3 defect D17: every process,
web servers included, needed all 16 settings). Only what the chosen warehouse needs is required,
and the error says which setting is missing.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings

from .errors import ConfigurationError

#: A ``SMOLQWERY_WAREHOUSE`` value: a short name of :data:`WAREHOUSES` or the dotted path of a
#: backend class (resolved by :func:`smolqwery.warehouses.backend_class`).
WarehouseName = str
#: The short names of the built-in backends.
WAREHOUSES: tuple[str, ...] = ("bigquery", "duckdb")
_DOTTED_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")

#: The fields of a service-account JSON key, as split into settings by 0.1.3.
GOOGLE_KEY_FIELDS = (
    "type",
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
)
GOOGLE_SETTING_NAMES = tuple(f"SMOLQWERY_GOOGLE_{f.upper()}" for f in GOOGLE_KEY_FIELDS)

DEFAULT_DATASET = "smolqwery"
DEFAULT_DUCKDB_FILENAME = "smolqwery.duckdb"


def _get(name: str, default: Any = None) -> Any:
    return getattr(django_settings, name, default)


def parse_date(value: object, setting: str) -> datetime.date:
    """A ``datetime.date`` from a date or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime.datetime):
        raise ConfigurationError(f"{setting} must be a date, not a datetime: {value!r}")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigurationError(f"{setting} must be a datetime.date or 'YYYY-MM-DD', got {value!r}")


@dataclasses.dataclass(frozen=True)
class SmolqwerySettings:
    """A validated snapshot of the ``SMOLQWERY_*`` settings."""

    warehouse: WarehouseName
    extractors: tuple[str, ...]
    django_app: str | None
    first_date: datetime.date | None
    dataset: str
    dataset_location: str | None
    dataset_labels: Mapping[str, str]
    acl_groups: tuple[str, ...]
    google_key_info: Mapping[str, str] | None = dataclasses.field(repr=False)
    google_credentials_file: str | None
    bigquery_project: str | None
    bigquery_api_endpoint: str | None
    bigquery_anonymous: bool
    #: None when no project directory is known to resolve it from (see :func:`project_root`).
    duckdb_path: Path | None
    batch_days: int
    retry_deadline: float
    allow_drop: bool
    migrate_in_tests: bool
    lock_timeout: float
    #: The one database alias whose ``migrate`` applies warehouse operations.
    database_alias: str = "default"
    #: Seconds ``smolqwery_status`` and the admin page wait for the warehouse, in all.
    status_deadline: float = 10.0
    #: DuckDB's ``memory_limit`` (``"512MB"``); None: DuckDB's default, 80% of RAM.
    duckdb_memory_limit: str | None = None
    #: The Celery app ``--enqueue`` publishes with (dotted path); empty: Celery's current app.
    celery_app: str = ""
    #: The queue units are published to; empty: the app's default queue.
    celery_queue: str = ""
    #: What ``--enqueue`` hands units to: ``celery``, or ``django`` (``django.tasks``).
    queue: str = "celery"
    #: Seconds ``--enqueue`` waits for the broker (to connect, and for each publish) before it
    #: gives up: a broker down or hung never makes cron hang.
    publish_timeout: float = 10.0
    #: Seconds a Celery worker waits for a busy table's lease before putting the unit back on
    #: the queue, to be tried again after as many seconds.
    busy_retry: float = 30.0
    #: Days finished runs and units are kept (:mod:`smolqwery.history`); None: for ever.
    history_days: int | None = 90

    def require_first_date(self) -> datetime.date:
        if self.first_date is None:
            raise ConfigurationError(
                "SMOLQWERY_FIRST_DATE is not set: set it to the first day to export, "
                "e.g. datetime.date(2024, 1, 1)"
            )
        return self.first_date

    def require_duckdb_path(self) -> Path:
        if self.duckdb_path is None:
            raise ConfigurationError(
                "the DuckDB file's location is unknown (no BASE_DIR, no settings module): set "
                "SMOLQWERY_DUCKDB_PATH to an absolute path"
            )
        return self.duckdb_path

    def require_django_app(self) -> str:
        if not self.django_app:
            raise ConfigurationError(
                "SMOLQWERY_DJANGO_APP is not set: name the installed app (its label) that holds "
                "smolqwery's migrations, e.g. SMOLQWERY_DJANGO_APP = 'analytics'"
            )
        return self.django_app


def _google_key_info() -> dict[str, str] | None:
    """The 0.1.3 split key settings as a key dict, or None when none of them is set."""
    values = {f: _get(s) for f, s in zip(GOOGLE_KEY_FIELDS, GOOGLE_SETTING_NAMES, strict=True)}
    if all(v in (None, "") for v in values.values()):
        return None
    info = {k: str(v) for k, v in values.items() if v not in (None, "")}
    if "private_key" in info and "\\n" in info["private_key"]:
        # Keys pasted into environment variables often carry literal "\n" sequences.
        info["private_key"] = info["private_key"].replace("\\n", "\n")
    info.setdefault("type", "service_account")
    info.setdefault("token_uri", "https://oauth2.googleapis.com/token")
    return info


def _choose_warehouse(key_info: Mapping[str, str] | None, key_file: str | None) -> WarehouseName:
    """The backend's short name or dotted path (imported when a warehouse is needed)."""
    explicit = _get("SMOLQWERY_WAREHOUSE")
    if explicit is not None:
        if not isinstance(explicit, str) or not (
            explicit in WAREHOUSES or _DOTTED_PATH.fullmatch(explicit)
        ):
            raise ConfigurationError(
                f"SMOLQWERY_WAREHOUSE must be one of {', '.join(WAREHOUSES)} or the dotted path "
                f"of a warehouse backend class, got {explicit!r}"
            )
        return explicit
    # A 0.1.3 project (Google settings present, no SMOLQWERY_WAREHOUSE) keeps exporting to
    # BigQuery: never silently switch it to a local file.
    if key_info is not None or key_file:
        return "bigquery"
    return "duckdb"


def project_root() -> Path | None:
    """The project's directory: ``BASE_DIR``, else the directory the settings module is
    imported from (``mysite.settings`` in ``/srv/proj/mysite/settings.py`` → ``/srv/proj``,
    where ``startproject`` puts ``manage.py``). Never the working directory: a command run from
    elsewhere must find the same warehouse (issue 14)."""
    base = _get("BASE_DIR")
    if base:
        return Path(base).resolve()
    # override_settings() hides SETTINGS_MODULE; the variable Django read it from does not.
    name = getattr(django_settings, "SETTINGS_MODULE", None) or os.environ.get(
        "DJANGO_SETTINGS_MODULE"
    )
    module = sys.modules.get(name) if isinstance(name, str) else None
    file = getattr(module, "__file__", None)
    if not isinstance(name, str) or not file:
        return None  # settings.configure(): no module to start from
    path = Path(file).resolve()
    levels = name.count(".") + (2 if path.stem == "__init__" else 1)
    return path.parents[levels - 1]


def _duckdb_path(value: object) -> Path | None:
    """``SMOLQWERY_DUCKDB_PATH`` (relative to the project's directory) or the default."""
    root = project_root()
    path = Path(str(value)) if value else Path(DEFAULT_DUCKDB_FILENAME)
    if path.is_absolute():
        return path
    return None if root is None else root / path


def _positive(name: str, default: float) -> float:
    value = _get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _positive_int(name: str, default: int) -> int:
    value = _get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive whole number, got {value!r}")
    return value


_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _memory_size(name: str) -> str | None:
    """A size DuckDB understands (``"512MB"``, ``"2GiB"``), or None when unset."""
    value = _get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _MEMORY_SIZE.fullmatch(value.strip()):
        raise ConfigurationError(
            f"{name} must be a size such as '512MB' or '2GB' (or None), got {value!r}"
        )
    return value.strip()


def _string_list(name: str) -> tuple[str, ...]:
    value = _get(name, ())
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigurationError(f"{name} must be a list of strings, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{name} must be a list of strings, got {value!r}")
    return tuple(value)


def _dataset() -> str:
    from .identifiers import validate_dataset_name

    value = _get("SMOLQWERY_DATASET") or DEFAULT_DATASET
    try:
        return validate_dataset_name(value)
    except ValueError as exc:
        raise ConfigurationError(f"SMOLQWERY_DATASET: {exc}") from None


def get_settings() -> SmolqwerySettings:
    """Read and validate the settings now (cheap; call it where they are needed)."""
    key_info = _google_key_info()
    key_file = _get("SMOLQWERY_GOOGLE_CREDENTIALS_FILE") or None
    first = _get("SMOLQWERY_FIRST_DATE")
    labels = _get("SMOLQWERY_DATASET_LABELS", {}) or {}
    if not isinstance(labels, Mapping):
        raise ConfigurationError(f"SMOLQWERY_DATASET_LABELS must be a dict, got {labels!r}")
    duckdb_path = _get("SMOLQWERY_DUCKDB_PATH")
    return SmolqwerySettings(
        warehouse=_choose_warehouse(key_info, key_file),
        extractors=_string_list("SMOLQWERY_EXTRACTORS"),
        django_app=_get("SMOLQWERY_DJANGO_APP"),
        first_date=None if first is None else parse_date(first, "SMOLQWERY_FIRST_DATE"),
        dataset=_dataset(),
        dataset_location=_get("SMOLQWERY_DATASET_LOCATION") or None,
        dataset_labels={str(k): str(v) for k, v in labels.items()},
        acl_groups=_string_list("SMOLQWERY_ACL_GROUPS"),
        google_key_info=key_info,
        google_credentials_file=str(key_file) if key_file else None,
        bigquery_project=_get("SMOLQWERY_BIGQUERY_PROJECT") or None,
        bigquery_api_endpoint=_get("SMOLQWERY_BIGQUERY_API_ENDPOINT") or None,
        bigquery_anonymous=bool(_get("SMOLQWERY_BIGQUERY_ANONYMOUS", False)),
        duckdb_path=_duckdb_path(duckdb_path),
        batch_days=_positive_int("SMOLQWERY_BATCH_DAYS", 366),
        retry_deadline=_positive("SMOLQWERY_RETRY_DEADLINE", 600.0),
        allow_drop=bool(_get("SMOLQWERY_ALLOW_DROP", False)),
        migrate_in_tests=bool(_get("SMOLQWERY_MIGRATE_IN_TESTS", False)),
        lock_timeout=_positive("SMOLQWERY_LOCK_TIMEOUT", 3600.0),
        database_alias=str(_get("SMOLQWERY_DATABASE_ALIAS") or "default"),
        status_deadline=_positive("SMOLQWERY_STATUS_DEADLINE", 10.0),
        duckdb_memory_limit=_memory_size("SMOLQWERY_DUCKDB_MEMORY_LIMIT"),
        celery_app=str(_get("SMOLQWERY_CELERY_APP") or ""),
        celery_queue=str(_get("SMOLQWERY_CELERY_QUEUE") or ""),
        queue=_queue_kind(),
        publish_timeout=_positive("SMOLQWERY_PUBLISH_TIMEOUT", 10.0),
        busy_retry=_positive("SMOLQWERY_BUSY_RETRY", 30.0),
        history_days=_history_days(),
    )


def _history_days() -> int | None:
    """``SMOLQWERY_HISTORY_DAYS``: a positive whole number of days, or None (keep for ever)."""
    value = _get("SMOLQWERY_HISTORY_DAYS", 90)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"SMOLQWERY_HISTORY_DAYS must be a positive whole number of days or None (keep "
            f"every run), got {value!r}"
        )
    return value


def _queue_kind() -> str:
    value = str(_get("SMOLQWERY_QUEUE") or "celery")
    if value not in ("celery", "django"):
        raise ConfigurationError(
            f"SMOLQWERY_QUEUE must be 'celery' or 'django' (django.tasks), got {value!r}"
        )
    return value


#: Names that moved into the BigQuery backend (:mod:`smolqwery.warehouses.bigquery_auth`),
#: still importable from here for code written against 1.0 previews.
_MOVED = {
    "CredentialsError": "smolqwery.warehouses.bigquery_auth",
    "GOOGLE_REQUIRED_FIELDS": "smolqwery.warehouses.bigquery_auth",
    "bigquery_credentials": "smolqwery.warehouses.bigquery_auth",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
