"""``smolqwery_make_migrations``, 1/3: the warehouse state the migration files create.

The state is rebuilt from migration files only — smolqwery's operations and the ``coconut`` of
0.1.3 migrations — never from the warehouse: writing a migration needs no credentials (0.1.3
defect D19). :mod:`smolqwery.migration_diff` compares it with the extractors' tables and
:mod:`smolqwery.migration_writer` writes the difference as a migration file.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .operations import (
    CreateWarehouseTable,
    CreateWarehouseView,
    RebuildWarehouseTable,
    WarehouseRunPython,
)
from .schema import TableSchema

if TYPE_CHECKING:
    from django.db.migrations import Migration
    from django.db.migrations.graph import MigrationGraph


logger = logging.getLogger("smolqwery.migrations")

#: Kind recorded for the delta views 0.1.3 created (wrong across gaps, replaced once).
LEGACY_VIEW_KIND = "legacy_delta"

MigrationKey = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class TableState:
    """A table as created by the migrations."""

    schema: TableSchema
    origin: MigrationKey
    legacy: bool = False


@dataclasses.dataclass(frozen=True)
class ViewState:
    """A view as created by the migrations; ``table`` is what it was rendered from."""

    name: str
    kind: str
    table: TableSchema
    origin: MigrationKey


@dataclasses.dataclass
class WarehouseState:
    """Tables and views the applied-in-order migrations create."""

    tables: dict[str, TableState] = dataclasses.field(default_factory=dict)
    views: dict[str, ViewState] = dataclasses.field(default_factory=dict)
    #: Migrations holding warehouse objects, in plan order.
    origins: list[MigrationKey] = dataclasses.field(default_factory=list)

    def add_table(self, schema: TableSchema, origin: MigrationKey, *, legacy: bool) -> None:
        # A later creation of the same table (squashed duplicates, re-declared legacy tables)
        # describes the same warehouse object: the first one wins, as in the warehouse.
        self.tables.setdefault(schema.name, TableState(schema, origin, legacy))
        self._origin(origin)

    def rebuild_table(self, schema: TableSchema, origin: MigrationKey) -> None:
        self.tables[schema.name] = TableState(schema, origin, legacy=False)
        self._origin(origin)

    def add_view(self, name: str, kind: str, table: TableSchema, origin: MigrationKey) -> None:
        self.views[name] = ViewState(name, kind, table, origin)  # create-or-replace semantics
        self._origin(origin)

    def _origin(self, origin: MigrationKey) -> None:
        if origin not in self.origins:
            self.origins.append(origin)


# -- state from migrations ---------------------------------------------------------------


def plan_order(graph: MigrationGraph) -> list[MigrationKey]:
    """Every node of the graph in an order migrate could apply them (deterministic)."""
    seen: set[MigrationKey] = set()
    order: list[MigrationKey] = []
    for leaf in sorted(graph.leaf_nodes()):
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                order.append(key)
    return order


def state_from_migrations(migrations: Iterable[Migration]) -> WarehouseState:
    """The warehouse state created by ``migrations`` applied in the given order."""
    state = WarehouseState()
    for migration in migrations:
        origin = (migration.app_label, migration.name)
        coconut = getattr(migration, "coconut", None)
        if isinstance(coconut, WarehouseRunPython):
            for table in coconut.tables:
                state.add_table(table, origin, legacy=True)
                if any(c.differentiate for c in table.columns):
                    state.add_view(table.delta_view_name, LEGACY_VIEW_KIND, table, origin)
        for operation in migration.operations:
            if isinstance(operation, CreateWarehouseTable):
                state.add_table(operation.schema, origin, legacy=False)
            elif isinstance(operation, RebuildWarehouseTable):
                state.rebuild_table(operation.schema, origin)
            elif isinstance(operation, CreateWarehouseView):
                state.add_view(operation.name, operation.kind, operation.schema, origin)
    return state


def load_state() -> tuple[WarehouseState, MigrationGraph]:
    """State and graph from the migration files on disk (no database, no warehouse)."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    graph = loader.graph
    return state_from_migrations(graph.nodes[key] for key in plan_order(graph)), graph


__all__ = [
    "LEGACY_VIEW_KIND",
    "MigrationKey",
    "TableState",
    "ViewState",
    "WarehouseState",
    "load_state",
    "plan_order",
    "state_from_migrations",
]
