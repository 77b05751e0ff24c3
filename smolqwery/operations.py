"""Django migration operations that create smolqwery's warehouse objects.

``smolqwery_make_migrations`` writes these into ordinary Django migration files, carrying the
table schema as plain literals (``TableSchema.to_dict()``): ``MigrationWriter`` serialises them
through :meth:`deconstruct`, ``squashmigrations`` keeps them, and the warehouse state is rebuilt
from them without importing any extractor. They change no Django model state.

When they run, and against what:

* only on the database alias ``SMOLQWERY_DATABASE_ALIAS`` (default ``"default"``), so a project
  with several databases applies them once per ``migrate``;
* never inside a test run (``manage.py test``, pytest-django), which creates its test database
  by applying every migration: Django's ``setup_test_environment()`` is detected and the
  operation is skipped with a log line, unless ``SMOLQWERY_MIGRATE_IN_TESTS = True``. This does
  not look at ``mail.outbox``, which a production locmem e-mail backend also creates (0.1.3
  defect D13);
* forwards are idempotent: an identical existing table is left alone, a different one is an
  error listing the differences (D10);
* backwards never drop an export table unless ``SMOLQWERY_ALLOW_DROP = True``; otherwise they
  warn and leave it (D12). Views hold no data and are dropped.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db.migrations.operations.base import Operation
from django.db.models.signals import post_migrate

from .errors import SmolqweryError, WarehouseMigrationError
from .schema import TableSchema
from .sql_views import VIEW_KINDS, render_view_sql

if TYPE_CHECKING:
    from django.apps import AppConfig
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations import Migration
    from django.db.migrations.state import ProjectState

    from .settings import SmolqwerySettings
    from .warehouses.base import Warehouse

logger = logging.getLogger("smolqwery.migrations")

__all__ = [
    "CreateWarehouseTable",
    "CreateWarehouseView",
    "EnsureDataset",
    "RebuildWarehouseTable",
    "WarehouseOperation",
    "WarehouseRunPython",
    "in_test_environment",
    "reconcile_dataset",
    "warehouse_operations_enabled",
]


def in_test_environment() -> bool:
    """True between Django's ``setup_test_environment()`` and its teardown.

    Both ``manage.py test`` (DiscoverRunner) and pytest-django call it before creating test
    databases, and nothing else does: unlike ``mail.outbox`` it cannot be set by production code.
    """
    from django.test import utils

    return hasattr(getattr(utils, "_TestState", None), "saved_data")


def warehouse_operations_enabled(alias: str, what: str, *, quiet: bool = False) -> bool:
    """Whether a migration on database ``alias`` may touch the warehouse (logs why not)."""
    from django.conf import settings

    from .settings import get_settings

    # Decided before the settings are validated: a test database is created even when the
    # project's warehouse settings are incomplete in its test settings.
    if in_test_environment() and not getattr(settings, "SMOLQWERY_MIGRATE_IN_TESTS", False):
        logger.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s: skipped in a test run (the warehouse is never touched by test databases; "
            "set SMOLQWERY_MIGRATE_IN_TESTS = True to apply it)",
            what,
        )
        return False
    config = get_settings()
    if alias != config.database_alias:
        logger.debug(
            "%s: skipped on database %r (warehouse operations run on SMOLQWERY_DATABASE_ALIAS=%r)",
            what,
            alias,
            config.database_alias,
        )
        return False
    return True


def open_warehouse() -> Warehouse:
    """The configured warehouse (imported late: reading migrations must not need it)."""
    from .warehouses import get_warehouse

    return get_warehouse()


def create_table(warehouse: Warehouse, table: TableSchema) -> None:
    """Create ``table`` unless an identical one exists (raises on a different one)."""
    if warehouse.create_table(table):
        logger.info("created table %s", warehouse.qualified_name(table.name))
    else:
        logger.info("table %s exists already, unchanged", warehouse.qualified_name(table.name))


def keep_or_drop_table(warehouse: Warehouse, name: str) -> None:
    """Reverse a table creation: drop only when ``SMOLQWERY_ALLOW_DROP`` says so."""
    from .settings import get_settings

    if get_settings().allow_drop:
        logger.warning(
            "dropping table %s and its exported data (SMOLQWERY_ALLOW_DROP is set)",
            warehouse.qualified_name(name),
        )
        warehouse.drop_table(name)
    else:
        logger.warning(
            "table %s was left in place with its exported data; set SMOLQWERY_ALLOW_DROP = True "
            "to drop tables when migrations are reversed",
            warehouse.qualified_name(name),
        )


def create_view(warehouse: Warehouse, name: str, kind: str, table: TableSchema) -> None:
    """Create or replace a view of ``table``, rendered for this warehouse's dialect."""
    sql = render_view_sql(kind, table, warehouse)
    description = f"{kind} view of {table.name} (smolqwery)"
    warehouse.create_or_replace_view(name, sql, description)
    logger.info("created view %s", warehouse.qualified_name(name))


def _require_unchanged() -> None:
    """Never create or change warehouse objects in a place other than the exports' own."""
    from .settings import get_settings
    from .warehouse_record import require_unchanged

    require_unchanged(get_settings())


class WarehouseOperation(Operation):
    """Base of smolqwery's operations: no model state, applied to the warehouse only."""

    reduces_to_sql = False
    reversible = True
    # One key of the table literal per line in migration files (readable diffs).
    serialization_expand_args = ["table"]
    # A warehouse operation is never optimised away or merged by squashmigrations.
    elidable = False

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        """Django models are unaffected."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if not warehouse_operations_enabled(schema_editor.connection.alias, self.describe()):
            return
        with self._reported(self.describe()):
            _require_unchanged()
            with open_warehouse() as warehouse:
                self.forwards(warehouse)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if not warehouse_operations_enabled(
            schema_editor.connection.alias, f"reverse: {self.describe()}"
        ):
            return
        with self._reported(f"reverse: {self.describe()}"):
            _require_unchanged()
            with open_warehouse() as warehouse:
                self.backwards(warehouse)

    @staticmethod
    @contextlib.contextmanager
    def _reported(what: str) -> Iterator[None]:
        """Our own errors leave as :class:`WarehouseMigrationError`, naming the operation."""
        try:
            yield
        except WarehouseMigrationError:
            raise
        except SmolqweryError as exc:
            raise WarehouseMigrationError(f"{what}: {exc}") from exc

    def forwards(self, warehouse: Warehouse) -> None:
        raise NotImplementedError

    def backwards(self, warehouse: Warehouse) -> None:
        raise NotImplementedError

    def references_model(self, name: str, app_label: str) -> bool:
        # Warehouse objects are not Django models: never a reason to keep model operations
        # apart, but also never optimised across (``reduce`` below).
        return False

    def reduce(self, operation: Operation, app_label: str) -> bool | list[Operation]:
        # Keep every warehouse operation, in order, when squashing.
        return False


def _table_literal(table: dict[str, Any] | TableSchema) -> dict[str, Any]:
    schema = table if isinstance(table, TableSchema) else TableSchema.from_dict(table)
    return schema.to_dict()


class EnsureDataset(WarehouseOperation):
    """Create the dataset if needed and reconcile its location, labels and ACL groups (D11).

    Reversing it does nothing: the dataset may hold tables of other migrations.
    """

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (type(self).__qualname__, [], {})

    def forwards(self, warehouse: Warehouse) -> None:
        warehouse.ensure_dataset()
        logger.info("dataset %s ensured", warehouse.dataset)

    def backwards(self, warehouse: Warehouse) -> None:
        logger.info("dataset %s left in place", warehouse.dataset)

    def describe(self) -> str:
        return "Ensure the smolqwery warehouse dataset"

    @property
    def migration_name_fragment(self) -> str:
        return "smolqwery_dataset"


class CreateWarehouseTable(WarehouseOperation):
    """Create an export table, partitioned by day on its date column."""

    def __init__(self, table: dict[str, Any] | TableSchema) -> None:
        self.table: dict[str, Any] = _table_literal(table)

    @property
    def schema(self) -> TableSchema:
        return TableSchema.from_dict(self.table)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (type(self).__qualname__, [], {"table": self.table})

    def forwards(self, warehouse: Warehouse) -> None:
        create_table(warehouse, self.schema)

    def backwards(self, warehouse: Warehouse) -> None:
        keep_or_drop_table(warehouse, self.schema.name)

    def describe(self) -> str:
        return f"Create warehouse table {self.table['name']}"

    @property
    def migration_name_fragment(self) -> str:
        return f"smolqwery_{self.table['name']}"


class RebuildWarehouseTable(WarehouseOperation):
    """Rebuild a table with corrected column types, every row kept (0.1.3 defects D1, D2).

    smolqwery 0.1.3 created ``bool`` fields as INT64 and ``datetime`` fields as DATE. This
    turns ``previous`` into ``table``: a new day-partitioned table filled by a ``SELECT`` with
    casts, swapped in atomically (:meth:`Warehouse.rebuild_table`). A DATE becomes midnight UTC
    (0.1.3 never stored a time of day: see docs/migrations.md), an INT64 0/1 a BOOL. Reversing
    casts back: the old rows come back exactly; a time of day exported since is cut to its UTC
    date, as a DATE column holds nothing else. Both ways are idempotent.
    """

    def __init__(
        self, table: dict[str, Any] | TableSchema, previous: dict[str, Any] | TableSchema
    ) -> None:
        self.table: dict[str, Any] = _table_literal(table)
        self.previous: dict[str, Any] = _table_literal(previous)

    serialization_expand_args = ["table", "previous"]

    @property
    def schema(self) -> TableSchema:
        return TableSchema.from_dict(self.table)

    @property
    def previous_schema(self) -> TableSchema:
        return TableSchema.from_dict(self.previous)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (type(self).__qualname__, [], {"table": self.table, "previous": self.previous})

    def forwards(self, warehouse: Warehouse) -> None:
        self._rebuild(warehouse, self.previous_schema, self.schema)

    def backwards(self, warehouse: Warehouse) -> None:
        self._rebuild(warehouse, self.schema, self.previous_schema)

    @staticmethod
    def _rebuild(warehouse: Warehouse, old: TableSchema, new: TableSchema) -> None:
        name = warehouse.qualified_name(new.name)
        if warehouse.rebuild_table(old, new):
            logger.info("rebuilt table %s with its new column types, rows kept", name)
        else:
            logger.info("table %s has its new column types already, unchanged", name)

    def describe(self) -> str:
        changed = [
            f"{a.name} {a.type} -> {b.type}"
            for a, b in zip(self.previous_schema.columns, self.schema.columns, strict=False)
            if a.type != b.type
        ]
        return f"Rebuild warehouse table {self.table['name']} ({', '.join(changed)})"

    @property
    def migration_name_fragment(self) -> str:
        return f"smolqwery_rebuild_{self.table['name']}"


class CreateWarehouseView(WarehouseOperation):
    """Create (or replace) a view of ``kind`` on ``table``; its SQL is rendered when applied."""

    def __init__(self, name: str, kind: str, table: dict[str, Any] | TableSchema) -> None:
        if kind not in VIEW_KINDS:
            raise ValueError(f"unknown view kind {kind!r}: expected one of {VIEW_KINDS}")
        self.name = name
        self.kind = kind
        self.table: dict[str, Any] = _table_literal(table)

    @property
    def schema(self) -> TableSchema:
        return TableSchema.from_dict(self.table)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            type(self).__qualname__,
            [],
            {"name": self.name, "kind": self.kind, "table": self.table},
        )

    def forwards(self, warehouse: Warehouse) -> None:
        create_view(warehouse, self.name, self.kind, self.schema)

    def backwards(self, warehouse: Warehouse) -> None:
        # A view holds no data; the table it reads is untouched.
        warehouse.drop_view(self.name)
        logger.info("dropped view %s", warehouse.qualified_name(self.name))

    def describe(self) -> str:
        return f"Create warehouse {self.kind} view {self.name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"smolqwery_{self.name}"


# -- the dataset, on every migrate ------------------------------------------------------------


class WarehouseRunPython:
    """The object a ``RunPython`` migration runs to create warehouse objects, kept in the
    migration's ``coconut`` attribute: 0.1.3's ``Coconut`` (:mod:`smolqwery.compat`) is one.
    Migrations recognise it by this base class, without importing the compatibility code."""

    @property
    def tables(self) -> list[TableSchema]:
        """The tables it creates: existing warehouse state for ``smolqwery_make_migrations``."""
        raise NotImplementedError


def is_warehouse_migration(migration: Migration) -> bool:
    """Whether a migration creates warehouse objects (our operations, or a 0.1.3 coconut)."""
    return isinstance(getattr(migration, "coconut", None), WarehouseRunPython) or any(
        isinstance(op, WarehouseOperation) for op in migration.operations
    )


def _has_applied_warehouse_migrations(alias: str) -> bool:
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connections[alias], ignore_no_migrations=True)
    applied = loader.applied_migrations or {}
    return any(
        key in loader.graph.nodes and is_warehouse_migration(loader.graph.nodes[key])
        for key in applied
    )


#: The one :class:`~smolqwery.models.DatasetState` row.
_STATE_KEY = "dataset"


def dataset_fingerprint(config: SmolqwerySettings) -> str:
    """A hash of the settings that shape the dataset (never of credentials)."""
    from .warehouses import backend_class

    # The API endpoint is left out: another address to the same project is the same dataset.
    backend = backend_class(config.warehouse)
    shape = [
        backend.vendor,
        backend.location_of(config) or None,
        config.dataset,
        config.dataset_location,
        sorted(config.dataset_labels.items()),
        sorted(config.acl_groups),
    ]
    return hashlib.sha256(json.dumps(shape, default=str).encode()).hexdigest()


def _reconciled_fingerprint(using: str) -> str | None:
    """The fingerprint last reconciled on database ``using``; None before 0002 is applied."""
    from django.db import connections

    from .models import DatasetState

    if DatasetState._meta.db_table not in connections[using].introspection.table_names():
        return None
    state = DatasetState.objects.using(using).filter(key=_STATE_KEY).first()
    return state.fingerprint if state else None


def _remember(using: str, fingerprint: str) -> None:
    from django.db import connections
    from django.utils import timezone

    from .models import DatasetState

    if DatasetState._meta.db_table in connections[using].introspection.table_names():
        DatasetState.objects.using(using).update_or_create(
            key=_STATE_KEY,
            defaults={"fingerprint": fingerprint, "reconciled_at": timezone.now()},
        )


def reconcile_dataset(
    sender: object,
    app_config: AppConfig,
    using: str,
    plan: list[tuple[Migration, bool]] | None = None,
    **kwargs: Any,
) -> None:
    """``post_migrate``: reconcile the dataset when its settings changed (D11).

    Location, labels and ACL groups changed in the settings reach an existing dataset without
    a new migration. A ``migrate`` with nothing to apply and the same dataset settings as last
    time (a hash in :class:`~smolqwery.models.DatasetState`) does not open the warehouse: a
    deploy does not wait for BigQuery. Runs once per ``migrate`` (smolqwery's own
    ``post_migrate``), on ``SMOLQWERY_DATABASE_ALIAS`` only, never in test runs, and only for a
    project whose applied migrations create warehouse objects. Connected when this module is
    imported, which every smolqwery migration file does (0.1.3 ones through
    :mod:`smolqwery.compat`): ``migrate`` loads them all before sending the signal.
    """
    from .settings import get_settings

    if app_config.name != "smolqwery":
        return
    if not warehouse_operations_enabled(using, "reconcile the dataset", quiet=True):
        return
    from .warehouse_record import changes, record_if_missing

    config = get_settings()
    fingerprint = dataset_fingerprint(config)
    applied = _has_applied_warehouse_migrations(using)
    if applied and changes(config):
        # `manage.py check` (run by migrate) said what changed: create nothing in a new place.
        logger.warning("dataset not reconciled: the settings changed (see smolqwery.W014)")
        return
    if applied:
        record_if_missing(config)
    if plan and any(
        isinstance(op, EnsureDataset)
        for migration, backwards in plan
        if not backwards
        for op in migration.operations
    ):
        _remember(using, fingerprint)
        return  # this migrate just did it
    if not applied:
        return
    if _reconciled_fingerprint(using) == fingerprint:
        logger.debug("dataset settings unchanged since the last migrate: warehouse not opened")
        return
    with open_warehouse() as warehouse:
        warehouse.ensure_dataset()
        logger.info("dataset %s reconciled with the settings", warehouse.dataset)
    _remember(using, fingerprint)


post_migrate.connect(reconcile_dataset, dispatch_uid="smolqwery.operations.reconcile_dataset")
