"""The migration files written by smolqwery 0.1.3 keep loading and running.

Those files read::

    from smolqwery.swallow import Coconut

    class Migration(migrations.Migration):
        coconut = Coconut([{"regular_fields": [...], "delta_fields": {...}, "table_name": "user"}])
        operations = [migrations.RunPython(coconut.forward, coconut.backward)]

They keep importing and running: ``forward`` idempotently ensures the dataset, each table and
its delta view (tables that already exist in production are left alone), ``backward`` never
drops a table unless ``SMOLQWERY_ALLOW_DROP`` is set. ``smolqwery_make_migrations`` reads the
``coconut`` attribute of migrations as existing warehouse state, so an upgrading project gets
no new table; it does get one migration replacing the 0.1.3 delta views, which were wrong
across missing days (D7, see ``docs/defects-0.1.3.md``). Importing this module also connects
the dataset reconciliation of ``migrate`` (:func:`smolqwery.operations.reconcile_dataset`).

They import ``smolqwery.swallow``, a 0.1.3 spelling that warns: ``from smolqwery.compat import
Coconut`` is the name that stays until 0.1.3 migrations are no longer read.

0.1.3 stored no table kind. It is inferred: a table whose first column is ``date DATE`` is
date-aggregated on ``date`` (0.1.3 prepended that column to aggregated tables and nothing
else); any other table is an individual-rows table on its ``timestamp`` column, or else on its
first DATE/TIMESTAMP column.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SchemaError
from ..operations import (
    WarehouseRunPython,
    create_table,
    create_view,
    keep_or_drop_table,
    open_warehouse,
)
from ..operations import warehouse_operations_enabled as enabled
from ..schema import Column, TableSchema
from ..sql_views import views_of
from ..vocabulary import ExtractorType

if TYPE_CHECKING:
    from django.apps.registry import Apps
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

logger = logging.getLogger("smolqwery.migrations")

__all__ = ["Coconut", "legacy_table_schema"]

#: Legacy schema dict, as written in 0.1.3 migration files.
LegacySchema = Mapping[str, Any]


def legacy_table_schema(schema: LegacySchema) -> TableSchema:
    """The :class:`TableSchema` of one 0.1.3 schema dict (see the module docstring)."""
    try:
        name = schema["table_name"]
        fields: Sequence[Mapping[str, Any]] = schema["regular_fields"]
        delta: Iterable[str] = schema.get("delta_fields") or ()
    except (KeyError, TypeError) as exc:
        raise SchemaError(f"unreadable smolqwery 0.1.3 schema {schema!r}: {exc}") from exc
    differentiated = set(delta)
    columns = tuple(
        Column(
            name=f["name"],
            type=f["type"],
            mode="NULLABLE" if f.get("nullable") else "REQUIRED",
            differentiate=f["name"] in differentiated,
        )
        for f in fields
    )
    if columns and columns[0].name == "date" and columns[0].type == "DATE":
        kind, date_column = ExtractorType.date_aggregated, "date"
    else:
        kind = ExtractorType.individual_rows
        names = [c.name for c in columns]
        day_columns = [c.name for c in columns if c.type in ("DATE", "TIMESTAMP")]
        if "timestamp" in names:
            date_column = "timestamp"
        elif day_columns:
            date_column = day_columns[0]
        else:
            raise SchemaError(
                f"smolqwery 0.1.3 table {name!r} has no DATE or TIMESTAMP column to place rows "
                "in days"
            )
        # Only date-aggregated tables get delta views.
        columns = tuple(
            Column(c.name, c.type, c.mode, c.description, differentiate=False) for c in columns
        )
    return TableSchema(name=name, columns=columns, kind=kind, date_column=date_column)


class Coconut(WarehouseRunPython):
    """The object 0.1.3 migrations run through ``RunPython`` (the name is kept for them)."""

    def __init__(self, schemas: Sequence[LegacySchema], settings: object = None) -> None:
        # ``settings`` was 0.1.3's config provider; settings are read from Django now.
        self.schemas: list[LegacySchema] = list(schemas)

    @property
    def tables(self) -> list[TableSchema]:
        return [legacy_table_schema(s) for s in self.schemas]

    def forward(self, apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        """Ensure the dataset, the tables and their delta views (idempotent)."""
        tables = self.tables
        what = "smolqwery 0.1.3 migration of " + ", ".join(t.name for t in tables)
        if not enabled(schema_editor.connection.alias, what):
            return
        with open_warehouse() as warehouse:
            warehouse.ensure_dataset()
            for table in tables:
                create_table(warehouse, table)
                for view, kind in views_of(table):
                    create_view(warehouse, view, kind, table)

    def backward(self, apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        """Drop the delta views; keep the tables unless ``SMOLQWERY_ALLOW_DROP`` is set."""
        tables = self.tables
        what = "reverse smolqwery 0.1.3 migration of " + ", ".join(t.name for t in tables)
        if not enabled(schema_editor.connection.alias, what):
            return
        with open_warehouse() as warehouse:
            for table in tables:
                for view, _kind in views_of(table):
                    warehouse.drop_view(view)
                keep_or_drop_table(warehouse, table.name)

    def __repr__(self) -> str:
        return f"Coconut({self.schemas!r})"
