"""``smolqwery_make_migrations``, 2/3: what changes between the migrations' state and the
tables the configured extractors describe.

Tables are immutable, as in 0.1.3: a table whose columns (names, types, nullability, order),
differentiated columns, kind, date column or clustering changed is refused, naming each
difference and the way out (a new table). Adding a column, even an ``Optional`` one, is refused
too: historical rows would read NULL where the value was really unknown, and the table could
not be re-filled by re-exporting. Views follow their table: new delta or rollup views are added
by later migrations, and the delta views of 0.1.3 (wrong across gaps, D7) are replaced once.
Tables of extractors removed from the settings are left alone (never dropped).

One change is made instead of refused: a table created by 0.1.3 whose only differences are the
types 0.1.3 got wrong — ``bool`` stored as INT64 (D1), ``datetime`` as DATE (D2) — gets a
:class:`~smolqwery.operations.RebuildWarehouseTable`, so upgrading never means rewriting
extractors or renaming tables; ``manage.py check`` warns about it first (``smolqwery.W020``).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import SchemaError, TableChangedError
from .migration_state import TableState, WarehouseState, load_state
from .operations import (
    CreateWarehouseTable,
    CreateWarehouseView,
    EnsureDataset,
    RebuildWarehouseTable,
)
from .schema import TableSchema
from .sql_views import views_of
from .warehouses.base import RESERVED_PREFIX

if TYPE_CHECKING:
    from django.db.migrations.operations.base import Operation

    from .interface import BaseExtractor
    from .settings import SmolqwerySettings

_MAX_NAME = 60


def desired_tables(extractors: Iterable[BaseExtractor[Any]]) -> list[TableSchema]:
    """Tables of the configured extractors, sorted by name; duplicate names are an error."""
    tables: dict[str, tuple[TableSchema, str]] = {}
    for extractor in extractors:
        schema = extractor.get_schema()
        name = extractor.get_name()
        if schema.name in tables:
            raise SchemaError(
                f"{name} and {tables[schema.name][1]} both export to table {schema.name!r}: "
                "override get_table_name() in one of them"
            )
        if schema.name.startswith(RESERVED_PREFIX):
            raise SchemaError(
                f"{name}: table name {schema.name!r} starts with {RESERVED_PREFIX!r}, which "
                "smolqwery reserves for its own tables"
            )
        tables[schema.name] = (schema, name)
    return [tables[n][0] for n in sorted(tables)]


def _layout(c: Any) -> str:
    return f"{c.type} {c.mode}"


def table_changes(existing: TableState, wanted: TableSchema) -> list[str]:
    """Each way ``wanted`` differs from the existing table, in words (empty: unchanged)."""
    old = existing.schema
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in wanted.columns}
    out: list[str] = []
    for col in old.columns:
        new = after.get(col.name)
        if new is None:
            out.append(f"column {col.name!r} ({_layout(col)}) was removed")
            continue
        if (col.type, col.mode) != (new.type, new.mode):
            out.append(f"column {col.name!r} changed from {_layout(col)} to {_layout(new)}")
        if col.differentiate != new.differentiate:
            state = "now" if new.differentiate else "no longer"
            out.append(f"column {col.name!r} is {state} differentiated (delta view)")
    for col in wanted.columns:
        if col.name not in before:
            out.append(
                f"column {col.name!r} ({_layout(col)}) was added"
                + (" (adding even an Optional column is not supported)" if col.nullable else "")
            )
    if not out and old.column_names != wanted.column_names:
        out.append(
            f"columns were reordered: {list(old.column_names)} -> {list(wanted.column_names)}"
        )
    if existing.legacy:
        # 0.1.3 stored neither kind, date column nor clustering: only columns can be compared.
        return out
    if old.kind is not wanted.kind:
        out.append(f"kind changed from {old.kind.value} to {wanted.kind.value}")
    if old.date_column != wanted.date_column:
        out.append(f"date column changed from {old.date_column!r} to {wanted.date_column!r}")
    if old.clustering != wanted.clustering:
        out.append(f"clustering changed from {list(old.clustering)} to {list(wanted.clustering)}")
    return out


#: The type changes a 0.1.3 table gets rebuilt for: bool as INT64 (D1), datetime as DATE (D2).
LEGACY_TYPE_FIXES = frozenset({("INT64", "BOOL"), ("DATE", "TIMESTAMP")})


def legacy_type_fixes(existing: TableState, wanted: TableSchema) -> list[str]:
    """The columns of a 0.1.3 table to rebuild with ``wanted``'s types, as ``name (OLD ->
    NEW)``; empty unless these fixes are the table's only changes."""
    old = existing.schema
    if not existing.legacy or [(c.name, c.mode, c.differentiate) for c in old.columns] != [
        (c.name, c.mode, c.differentiate) for c in wanted.columns
    ]:
        return []
    pairs = [(a, b) for a, b in zip(old.columns, wanted.columns, strict=True) if a.type != b.type]
    if not all((a.type, b.type) in LEGACY_TYPE_FIXES for a, b in pairs):
        return []
    return [f"{a.name} ({a.type} -> {b.type})" for a, b in pairs]


def pending_rebuilds(config: SmolqwerySettings | None = None) -> dict[str, list[str]]:
    """0.1.3 tables that ``smolqwery_make_migrations`` would rebuild, with their columns."""
    from .registry import load_extractors
    from .settings import get_settings

    state, _ = load_state()
    out: dict[str, list[str]] = {}
    for table in desired_tables(load_extractors(config or get_settings())):
        existing = state.tables.get(table.name)
        fixes = legacy_type_fixes(existing, table) if existing is not None else []
        if fixes:
            out[table.name] = fixes
    return out


def _legacy_hint(existing: TableState, wanted: TableSchema) -> str:
    if not existing.legacy:
        return ""
    after = {c.name: c.type for c in wanted.columns}
    hints = []
    for col in existing.schema.columns:
        if col.type == "INT64" and after.get(col.name) == "BOOL":
            hints.append(f"{col.name!r} is a bool field that smolqwery 0.1.3 stored as INT64 (D1)")
        if col.type == "DATE" and after.get(col.name) == "TIMESTAMP":
            hints.append(
                f"{col.name!r} is a datetime field that smolqwery 0.1.3 stored as DATE (D2), "
                "so its exports failed"
            )
    return (" Note: " + "; ".join(hints) + ".") if hints else ""


def refusal_message(name: str, existing: TableState, changes: Sequence[str], wanted: Any) -> str:
    where = f"{existing.origin[0]}.{existing.origin[1]}"
    return (
        f"table {name!r} (created by migration {where}) cannot change: "
        + "; ".join(changes)
        + f".{_legacy_hint(existing, wanted)} Warehouse tables are immutable. Either revert "
        f"the dataclass, or export to a new table: override get_table_name() to return e.g. "
        f"{_next_name(name)!r} and run smolqwery_make_migrations again (the old table stays, "
        "with its data)."
    )


def _next_name(name: str) -> str:
    stem = name.rstrip("0123456789")
    digits = name[len(stem) :]
    return f"{stem}{int(digits) + 1 if digits else 2}"


def _identity(table: TableSchema) -> dict[str, Any]:
    """What a view depends on: everything but descriptions, the list of rollups and the
    cohort marker (a retention view made before the marker existed is the same view)."""
    data = table.to_dict()
    data.pop("description", None)
    data.pop("rollups", None)
    data.pop("cohort", None)
    for col in data["columns"]:
        col.pop("description", None)
    return data


@dataclasses.dataclass
class Plan:
    """Operations of the next migration (empty: up to date)."""

    operations: list[Operation]
    new_tables: list[str]
    views: list[str]
    rebuilt: list[str] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.operations

    def suggest_name(self) -> str:
        parts = self.new_tables + [f"rebuild_{n}" for n in self.rebuilt] or self.views
        name = "smolqwery_" + "_".join(parts)
        if len(name) > _MAX_NAME:
            name = f"smolqwery_{parts[0]}_and_{len(parts) - 1}_more"
        return name


def plan_changes(state: WarehouseState, wanted: Sequence[TableSchema]) -> Plan:
    """The operations turning ``state`` into ``wanted``; raises when a table changed."""
    refusals: list[str] = []
    creates: list[Operation] = []
    view_ops: list[Operation] = []
    new_tables: list[str] = []
    views: list[str] = []
    rebuilt: list[str] = []
    for table in wanted:
        existing = state.tables.get(table.name)
        if existing is None:
            creates.append(CreateWarehouseTable(table=table))
            new_tables.append(table.name)
            for name, kind in views_of(table):
                creates.append(CreateWarehouseView(name=name, kind=kind, table=table))
            continue
        changes = table_changes(existing, table)
        if changes and legacy_type_fixes(existing, table):
            creates.append(RebuildWarehouseTable(table=table, previous=existing.schema))
            rebuilt.append(table.name)
        elif changes:
            refusals.append(refusal_message(table.name, existing, changes, table))
            continue
        for name, kind in views_of(table):
            view = state.views.get(name)
            if view is None or view.kind != kind or _identity(view.table) != _identity(table):
                view_ops.append(CreateWarehouseView(name=name, kind=kind, table=table))
                views.append(name)
    if refusals:
        raise TableChangedError("\n".join(refusals))
    operations: list[Operation] = creates + view_ops
    if operations:
        operations.insert(0, EnsureDataset())
    return Plan(operations=operations, new_tables=new_tables, views=views, rebuilt=rebuilt)


__all__ = [
    "LEGACY_TYPE_FIXES",
    "Plan",
    "desired_tables",
    "legacy_type_fixes",
    "pending_rebuilds",
    "plan_changes",
    "refusal_message",
    "table_changes",
]
