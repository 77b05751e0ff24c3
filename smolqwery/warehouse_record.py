"""Where the exports are, remembered: the settings that must not change behind the ledger's back.

The ledger lives in the warehouse, so a changed ``SMOLQWERY_DATASET`` or DuckDB file points
smolqwery at an empty place (every day looks pending, the tables of applied migrations are
missing), and a changed ``TIME_ZONE`` moves the boundaries of the days still to export. The
values in force at the first ``migrate`` or export are kept in the project's database
(:class:`~smolqwery.models.WarehouseRecord`); ``manage.py check`` reports a difference
(``smolqwery.W014``, ``W015``), and ``migrate``'s warehouse operations and exports refuse to run
until the settings are set back or the change is accepted with
``manage.py smolqwery_accept_settings``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from django.conf import settings as django_settings
from django.db import connections
from django.utils import timezone

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .models import WarehouseRecord
    from .settings import SmolqwerySettings

logger = logging.getLogger("smolqwery.settings")

ACCEPT_COMMAND = "manage.py smolqwery_accept_settings"


@dataclasses.dataclass(frozen=True)
class Change:
    """One remembered value that differs from the settings, with what to do about it."""

    what: str
    message: str
    hint: str
    time_zone: bool = False


def current_values(config: SmolqwerySettings) -> dict[str, str]:
    """The remembered fields, as the settings give them now.

    ``warehouse`` is the backend's vendor name (a short name and the dotted path of one backend
    are the same warehouse); ``duckdb_path`` holds the backend's :meth:`recorded_location`
    (the file of a file-backed warehouse, empty otherwise).
    """
    from .warehouses import backend_class

    backend = backend_class(config.warehouse)
    return {
        "warehouse": backend.vendor,
        "dataset": config.dataset,
        "duckdb_path": backend.recorded_location(config),
        "time_zone": str(getattr(django_settings, "TIME_ZONE", None) or "UTC"),
    }


def _table_exists(alias: str) -> bool:
    from .models import WarehouseRecord

    connection = connections[alias]
    with connection.cursor() as cursor:
        names = connection.introspection.table_names(cursor)
    return WarehouseRecord._meta.db_table in names


def recorded(config: SmolqwerySettings) -> WarehouseRecord | None:
    """The remembered values, None before the first ``migrate``/export (or before smolqwery's
    own migrations are applied)."""
    from .models import WarehouseRecord

    if not _table_exists(config.database_alias):
        return None
    record: WarehouseRecord | None = (
        WarehouseRecord.objects.using(config.database_alias).filter(name="default").first()
    )
    return record


def changes(config: SmolqwerySettings) -> list[Change]:
    """What differs from the remembered values (empty when nothing is remembered yet)."""
    record = recorded(config)
    if record is None:
        return []
    now = current_values(config)
    since = f"since {timezone.localtime(record.recorded_at):%Y-%m-%d}"
    accept = f"run `{ACCEPT_COMMAND}`"
    out: list[Change] = []
    if record.warehouse != now["warehouse"]:
        out.append(
            Change(
                "warehouse",
                f"the warehouse is now {now['warehouse']} but the exports {since} are in "
                f"{record.warehouse}",
                f"Set SMOLQWERY_WAREHOUSE = {record.warehouse!r}; or, to start over in "
                f"{now['warehouse']}, {accept} (it creates the tables there).",
            )
        )
    elif record.duckdb_path != now["duckdb_path"]:
        from .warehouses import backend_class

        backend = backend_class(config.warehouse)
        setting, noun = backend.location_setting, backend.location_noun
        out.append(
            Change(
                setting,
                f"the {noun} is now {now['duckdb_path']} but the exports {since} are in "
                f"{record.duckdb_path}",
                f"Set {setting} = {record.duckdb_path!r}; or move the {noun} to "
                f"{now['duckdb_path']} (or start an empty one there), then {accept}.",
            )
        )
    if record.dataset != now["dataset"]:
        out.append(
            Change(
                "SMOLQWERY_DATASET",
                f"SMOLQWERY_DATASET is now {now['dataset']!r} but the exports {since} are in "
                f"{record.dataset!r}",
                f"Set SMOLQWERY_DATASET = {record.dataset!r}; or copy the tables (and their "
                f"ledgers, smolqwery_ledger*) of {record.dataset!r} to {now['dataset']!r} "
                f"(or start an empty one), then {accept}.",
            )
        )
    if record.time_zone != now["time_zone"]:
        out.append(
            Change(
                "TIME_ZONE",
                f"TIME_ZONE is now {now['time_zone']!r} but the days exported {since} are days "
                f"of {record.time_zone!r}",
                f"Set TIME_ZONE = {record.time_zone!r}; or {accept} and re-export the "
                "days already exported in the new zone (`manage.py smolqwery_extract --from "
                "FIRST_DAY --to LAST_DAY` replaces them).",
                time_zone=True,
            )
        )
    return out


def require_unchanged(config: SmolqwerySettings) -> None:
    """Raise a :class:`ConfigurationError` saying what changed and what to do."""
    found = changes(config)
    if found:
        raise ConfigurationError(
            "settings changed after the first export: "
            + " ".join(f"{c.message}. {c.hint}" for c in found)
        )


def record_if_missing(config: SmolqwerySettings) -> None:
    """Remember the current values at the first ``migrate``/export; later ones keep them."""
    from .models import WarehouseRecord

    if not _table_exists(config.database_alias):
        return
    _, created = WarehouseRecord.objects.using(config.database_alias).get_or_create(
        name="default", defaults={**current_values(config), "recorded_at": timezone.now()}
    )
    if created:
        logger.info("recorded the warehouse settings: %s", current_values(config))


def accept(config: SmolqwerySettings) -> dict[str, str]:
    """Remember the current values (after the user moved the data or chose to start over)."""
    from .models import WarehouseRecord

    values = current_values(config)
    WarehouseRecord.objects.using(config.database_alias).update_or_create(
        name="default", defaults={**values, "recorded_at": timezone.now()}
    )
    return values
