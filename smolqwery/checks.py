"""Django system checks (``manage.py check``): ids ``smolqwery.E0xx``, each with a hint.

The checks read only the settings a project sets (0.1.3 defect D17: a project with smolqwery
installed and no ``SMOLQWERY_*`` setting at all is valid, with the DuckDB default), and never
raise: a broken extractor module or an unexpected error becomes a message, not a traceback.
Messages never contain key material.

========== ==========================================================================
id         problem
========== ==========================================================================
E001       an ``SMOLQWERY_EXTRACTORS`` entry cannot be imported
E002       an entry is not a concrete ``BaseExtractor`` subclass (or has an unknown ``read_as``)
E003       an extractor's dataclass / schema is invalid (the ``SchemaError`` message)
E004       two extractors (or a table and a view) share one warehouse name
E005       ``SMOLQWERY_DATASET`` is not a valid dataset name
E006       a table name is invalid or starts with the reserved ``smolqwery_``
E007       ``SMOLQWERY_FIRST_DATE`` cannot be parsed
W008       ``SMOLQWERY_FIRST_DATE`` is in the future (today in ``TIME_ZONE``)
E009       BigQuery is chosen but no usable credentials are found (the backend's check)
E010       ``SMOLQWERY_DJANGO_APP`` is not an installed app label
E011       any other invalid ``SMOLQWERY_*`` setting (``SMOLQWERY_DATABASE_ALIAS`` included)
E012       the chosen warehouse's package is not installed (duckdb when extractors are set;
           google-cloud-bigquery) — the backend's check
W013       extractors are set but ``SMOLQWERY_FIRST_DATE`` or ``SMOLQWERY_DJANGO_APP`` is not
W014       the warehouse, ``SMOLQWERY_DATASET`` or the DuckDB file changed after the first export
W015       ``TIME_ZONE`` changed after the first export (day boundaries would move)
W020       a table made by 0.1.3 has DATE/INT64 where the dataclass says datetime/bool: a
           migration will rebuild it with the right types
E030       the warehouse would refuse a table (BigQuery's limits: more than 4 clustering
           columns, a table description over 16,384 or a column one over 1,024 characters)
========== ==========================================================================

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils import timezone
from django.utils.module_loading import import_string

from .errors import ConfigurationError, SchemaError
from .identifiers import (
    RESERVED_TABLE_PREFIX,
    validate_dataset_name,
    validate_table_name,
)
from .settings import SmolqwerySettings, get_settings, parse_date

__all__ = ["TAG", "check_extractors", "check_legacy_types", "check_settings"]

#: ``manage.py check --tag smolqwery`` runs only these checks.
TAG = "smolqwery"

_EXTRACTOR_HINT = (
    "Each SMOLQWERY_EXTRACTORS entry is the dotted path of a class, e.g. "
    "'myapp.extractors.UserExtractor'."
)


def _applies(app_configs: Sequence[AppConfig] | None) -> bool:
    """``manage.py check someapp`` asks about other apps only: stay quiet then."""
    return app_configs is None or any(c.name == "smolqwery" for c in app_configs)


def _is_set(name: str) -> bool:
    return getattr(django_settings, name, None) not in (None, "")


def _today() -> datetime.date:
    """Today in Django's ``TIME_ZONE`` (works with ``USE_TZ = False`` too)."""
    try:
        tz = timezone.get_default_timezone()
    except Exception:  # TIME_ZONE = None: the system's zone
        return datetime.date.today()
    return datetime.datetime.now(tz=tz).date()


def _first_date_messages() -> list[CheckMessage]:
    if not _is_set("SMOLQWERY_FIRST_DATE"):
        return []
    raw = getattr(django_settings, "SMOLQWERY_FIRST_DATE", None)
    try:
        first = parse_date(raw, "SMOLQWERY_FIRST_DATE")
    except ConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="Set SMOLQWERY_FIRST_DATE = datetime.date(2024, 1, 1) or '2024-01-01'.",
                id="smolqwery.E007",
            )
        ]
    today = _today()
    if first > today:
        return [
            Warning(
                f"SMOLQWERY_FIRST_DATE ({first.isoformat()}) is after today "
                f"({today.isoformat()} in {django_settings.TIME_ZONE}): nothing will be "
                "exported before then.",
                hint="Only complete past days are exported; use the first day you have data for.",
                id="smolqwery.W008",
            )
        ]
    return []


def _dataset_messages() -> list[CheckMessage]:
    if not _is_set("SMOLQWERY_DATASET"):
        return []
    try:
        validate_dataset_name(getattr(django_settings, "SMOLQWERY_DATASET", None))
    except ValueError as exc:
        return [
            Error(
                f"SMOLQWERY_DATASET: {exc}",
                hint="A BigQuery dataset name, e.g. 'analytics' (no dashes, dots or spaces).",
                id="smolqwery.E005",
            )
        ]
    return []


def _django_app_messages() -> list[CheckMessage]:
    if not _is_set("SMOLQWERY_DJANGO_APP"):
        return []
    label = getattr(django_settings, "SMOLQWERY_DJANGO_APP", None)
    if isinstance(label, str) and label in {c.label for c in apps.get_app_configs()}:
        return []
    hint = "Name the label of an app in INSTALLED_APPS; smolqwery writes its migrations there."
    by_name = [c.label for c in apps.get_app_configs() if c.name == label]
    if by_name:
        hint = f"Use the app's label, not its module path: SMOLQWERY_DJANGO_APP = {by_name[0]!r}."
    return [
        Error(
            f"SMOLQWERY_DJANGO_APP = {label!r} is not the label of an installed app.",
            hint=hint,
            id="smolqwery.E010",
        )
    ]


@register(TAG)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Settings: dataset, first date, migrations app, any other value, and credentials."""
    if not _applies(app_configs):
        return []
    reported: set[str] = set()
    messages: list[CheckMessage] = []
    for name, found in (
        ("SMOLQWERY_DATASET", _dataset_messages()),
        ("SMOLQWERY_FIRST_DATE", _first_date_messages()),
        ("SMOLQWERY_DJANGO_APP", _django_app_messages()),
    ):
        messages.extend(found)
        if any(m.is_serious() for m in found):
            reported.add(name)
    try:
        config = get_settings()
    except ConfigurationError as exc:
        text = str(exc)
        # get_settings() stops at its first problem: do not report a setting twice.
        if not any(name in text for name in reported):
            messages.append(
                Error(
                    text,
                    hint="See the settings table in smolqwery's docs/configuration.md.",
                    id="smolqwery.E011",
                )
            )
        return messages
    except Exception as exc:  # never crash manage.py check
        messages.append(
            Error(
                f"smolqwery settings could not be read ({type(exc).__name__}: {exc}).",
                hint="See the settings table in smolqwery's docs/configuration.md.",
                id="smolqwery.E011",
            )
        )
        return messages

    if config.database_alias not in django_settings.DATABASES:
        messages.append(
            Error(
                f"SMOLQWERY_DATABASE_ALIAS = {config.database_alias!r} is not in DATABASES.",
                hint="Name the database whose `migrate` creates the warehouse tables "
                "(default 'default').",
                id="smolqwery.E011",
            )
        )
    if config.extractors:
        messages.extend(_needed_by_extractors())
    messages.extend(_warehouse_messages(config))
    return messages


def _warehouse_messages(config: SmolqwerySettings) -> list[CheckMessage]:
    """The backend's own checks (E009, E012…), or E011 when there is no such backend."""
    from .warehouses import backend_class

    try:
        backend = backend_class(config.warehouse)
        backend.validate_settings(config)
    except ConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="See the settings table in smolqwery's docs/configuration.md.",
                id="smolqwery.E011",
            )
        ]
    try:
        return backend.check_settings(config)
    except Exception as exc:  # a backend's check never crashes manage.py check
        return [
            Error(
                f"the {backend.display_name} warehouse's checks failed ({type(exc).__name__}).",
                hint="See the settings table in smolqwery's docs/configuration.md.",
                id="smolqwery.E011",
            )
        ]


def _needed_by_extractors() -> list[CheckMessage]:
    """Settings that are optional until extractors exist, then needed by the commands."""
    needed = {
        "SMOLQWERY_FIRST_DATE": "the first day smolqwery_extract exports, "
        "e.g. datetime.date(2024, 1, 1)",
        "SMOLQWERY_DJANGO_APP": "the label of the app smolqwery_make_migrations writes into",
    }
    return [
        Warning(
            f"SMOLQWERY_EXTRACTORS is set but {name} is not.",
            hint=f"Set {name}: {what}.",
            id="smolqwery.W013",
        )
        for name, what in needed.items()
        if not _is_set(name)
    ]


def _extractor_paths() -> list[str]:
    value = getattr(django_settings, "SMOLQWERY_EXTRACTORS", None) or []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return []  # reported as E011 by check_settings
    return [v for v in value if isinstance(v, str)]


def _view_names(schema: Any) -> list[str]:
    """The views smolqwery creates on a table (the same rule as the migrations use)."""
    from .sql_views import views_of

    return [name for name, _kind in views_of(schema)]


@register(TAG)
def check_extractors(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every ``SMOLQWERY_EXTRACTORS`` entry: importable, an extractor, a valid unique table."""
    if not _applies(app_configs):
        return []
    messages: list[CheckMessage] = []
    owners: dict[str, str] = {}  # lower-cased table or view name → what owns it
    for path in _extractor_paths():
        try:
            cls = import_string(path)
        except Exception as exc:  # ImportError, or whatever the module raises on import
            messages.append(
                Error(
                    f"SMOLQWERY_EXTRACTORS entry {path!r} cannot be imported "
                    f"({type(exc).__name__}: {exc}).",
                    hint=_EXTRACTOR_HINT,
                    obj=path,
                    id="smolqwery.E001",
                )
            )
            continue
        schema_or_messages = _extractor_schema(path, cls)
        if isinstance(schema_or_messages, list):
            messages.extend(schema_or_messages)
            continue
        schema = schema_or_messages
        messages.extend(_warehouse_limit_messages(path, schema))
        table_owner = f"table {schema.name!r} of {path}"
        for name, what in [(schema.name, table_owner)] + [
            (view, f"view {view!r} of {path}") for view in _view_names(schema)
        ]:
            other = owners.get(name.lower())
            if other is not None:
                messages.append(
                    Error(
                        f"{what} has the same name as the {other}.",
                        hint="Give one of the extractors another table name by overriding "
                        "get_table_name() (existing tables keep their names).",
                        obj=path,
                        id="smolqwery.E004",
                    )
                )
            else:
                owners[name.lower()] = what
    return messages


# -- the warehouse's limits (E030): BigQuery's, which the emulator and DuckDB accept ----------


def _warehouse_limit_messages(path: str, schema: Any) -> list[CheckMessage]:
    from .warehouses import backend_class

    try:
        backend = backend_class(get_settings().warehouse)
    except Exception:  # invalid settings are E011's business
        return []
    return [
        Error(
            f"extractor {path!r}: {problem}.",
            hint=f"{backend.display_name} would refuse to create the table; migrate would "
            "stop there.",
            obj=path,
            id="smolqwery.E030",
        )
        for problem in backend.table_problems(schema)
    ]


def _extractor_schema(path: str, cls: object) -> Any:
    """The extractor's :class:`TableSchema`, or the list of messages saying why there is none."""
    from .interface import BaseExtractor
    from .schema import build_table_schema

    if not (isinstance(cls, type) and issubclass(cls, BaseExtractor)):
        return [
            Error(
                f"SMOLQWERY_EXTRACTORS entry {path!r} is {cls!r}, not a subclass of "
                "smolqwery.BaseExtractor.",
                hint="Subclass smolqwery.BaseExtractor[YourDataclass] and implement "
                "get_dataclass(), get_extractor_type() and extract().",
                obj=path,
                id="smolqwery.E002",
            )
        ]
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        return [
            Error(
                f"extractor {path!r} does not implement {', '.join(abstract)}.",
                hint="Implement get_dataclass(), get_extractor_type() and extract().",
                obj=path,
                id="smolqwery.E002",
            )
        ]
    from .queryset_extractor import READ_AS, QuerySetExtractor

    if issubclass(cls, QuerySetExtractor) and cls.read_as not in READ_AS:
        return [
            Error(
                f"extractor {path!r} has read_as = {cls.read_as!r}.",
                hint=f"read_as is one of {', '.join(map(repr, READ_AS))} (default 'auto').",
                obj=path,
                id="smolqwery.E002",
            )
        ]
    schema_hint = (
        "Fields may be int, float, bool, str, bytes, Decimal, datetime.date or "
        "datetime.datetime, each optionally Optional[...]; see docs/configuration.md."
    )
    try:
        extractor = cls()
        table = extractor.get_table_name()
        try:
            validate_table_name(table)
        except ValueError as exc:
            return [_table_name_error(path, str(exc))]
        if table.lower().startswith(RESERVED_TABLE_PREFIX):
            return [
                _table_name_error(
                    path, f"table name {table!r} starts with {RESERVED_TABLE_PREFIX!r}"
                )
            ]
        return build_table_schema(extractor)
    except SchemaError as exc:
        return [Error(str(exc), hint=schema_hint, obj=path, id="smolqwery.E003")]
    except Exception as exc:  # the extractor's own code raised
        return [
            Error(
                f"extractor {path!r} raised {type(exc).__name__} while its table was being "
                f"described: {exc}",
                hint=schema_hint,
                obj=path,
                id="smolqwery.E003",
            )
        ]


def _table_name_error(path: str, detail: str) -> Error:
    return Error(
        f"extractor {path!r}: {detail}.",
        hint="Table names are letters, digits and underscores, not starting with a digit; "
        f"names starting with {RESERVED_TABLE_PREFIX!r} are smolqwery's own (ledger, staging). "
        "Override get_table_name() or rename the dataclass.",
        obj=path,
        id="smolqwery.E006",
    )


@register(TAG)
def check_legacy_types(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """0.1.3 tables with a bool stored as INT64 (D1) or a datetime as DATE (D2): warn before
    an export refuses them."""
    if not _applies(app_configs):
        return []
    from .migration_diff import pending_rebuilds

    try:
        pending = pending_rebuilds()
    except Exception:  # settings or extractors broken: the other checks say how
        return []
    return [
        Warning(
            f"table {name!r} was created by smolqwery 0.1.3 with the wrong column types: "
            + ", ".join(columns),
            hint="Run manage.py smolqwery_make_migrations, then manage.py migrate: the table "
            "is rebuilt with the right types, its rows kept (docs/migrations.md).",
            id="smolqwery.W020",
        )
        for name, columns in pending.items()
    ]


@register(TAG)
def check_recorded_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W014/W015: settings that changed since the first ``migrate``/export (issue 14).

    Reads one row of the project's database; says nothing when it cannot (no database yet,
    smolqwery's tables not migrated, invalid settings reported by the other checks).
    """
    if not _applies(app_configs):
        return []
    from .warehouse_record import changes

    try:
        found = changes(get_settings())
    except Exception:  # a check never crashes `manage.py check`
        return []
    return [
        Warning(
            f"{change.message}.",
            hint=change.hint,
            id="smolqwery.W015" if change.time_zone else "smolqwery.W014",
        )
        for change in found
    ]
