"""``manage.py smolqwery_accept_settings``: accept a changed dataset, DuckDB file or time zone."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from smolqwery.errors import SmolqweryError


class Command(BaseCommand):
    help = (
        "After changing SMOLQWERY_DATASET, the DuckDB file, the warehouse or TIME_ZONE on "
        "purpose (smolqwery.W014/W015): remember the current settings, and create the dataset, "
        "tables and views of the applied migrations where they are missing. Existing tables "
        "are left as they are."
    )
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._accept()
        except SmolqweryError as exc:
            raise CommandError(str(exc)) from exc

    def _accept(self) -> None:
        from django.db import connections
        from django.db.migrations.loader import MigrationLoader

        from smolqwery.migration_state import plan_order, state_from_migrations
        from smolqwery.operations import create_table, create_view
        from smolqwery.settings import get_settings
        from smolqwery.warehouse_record import accept, changes
        from smolqwery.warehouses import get_warehouse

        config = get_settings()
        found = changes(config)
        loader = MigrationLoader(connections[config.database_alias], ignore_no_migrations=True)
        applied = loader.applied_migrations or {}
        state = state_from_migrations(
            loader.graph.nodes[key] for key in plan_order(loader.graph) if key in applied
        )
        if state.tables:
            with get_warehouse(config) as warehouse:
                warehouse.ensure_dataset()
                for table in state.tables.values():
                    create_table(warehouse, table.schema)
                for view in state.views.values():
                    if view.kind != "legacy_delta":  # replaced by a later migration
                        create_view(warehouse, view.name, view.kind, view.table)
        values = accept(config)
        for change in found:
            self.stdout.write(f"accepted: {change.message}")
        self.stdout.write(
            "recorded: "
            + ", ".join(f"{key} {value!r}" for key, value in values.items() if value)
            + f"; {len(state.tables)} table(s) present"
        )
