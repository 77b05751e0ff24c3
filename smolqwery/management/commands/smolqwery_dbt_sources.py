"""``manage.py smolqwery_dbt_sources``: a dbt ``sources.yml`` for the export tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from smolqwery.dbt_sources import Freshness, build_sources, to_yaml
from smolqwery.errors import SmolqweryError
from smolqwery.registry import load_extractors
from smolqwery.settings import get_settings

from ._options import non_negative_arg
from ._output import SmolqweryCommand


class Command(SmolqweryCommand):
    help = (
        "Write a dbt sources.yml describing the export tables, their views and the ledger "
        "(columns, types, descriptions; freshness from the ledger). Reads the warehouse's "
        "ledger, read-only."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", metavar="PATH", help="Write here (default: stdout).")
        parser.add_argument("--name", default="smolqwery", help="The dbt source's name.")
        parser.add_argument(
            "--database",
            help="dbt 'database': the BigQuery project (default: the configured one) or the "
            "DuckDB catalog, i.e. the file's name without extension (default) or its alias in "
            "your dbt profile.",
        )
        parser.add_argument("--warn-after-hours", type=non_negative_arg, default=36)
        parser.add_argument("--error-after-hours", type=non_negative_arg, default=72)
        parser.add_argument(
            "--loaded-at-field",
            action="store_true",
            help="Freshness from each table's date column (loaded_at_field) instead of the "
            "ledger's last export (loaded_at_query, dbt 1.10 and later).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = get_settings()
            tables = [e.get_schema() for e in load_extractors(config)]
            from smolqwery.warehouses import get_warehouse

            with get_warehouse(config, deadline=config.status_deadline, read_only=True) as wh:
                ledgers = {t.name: wh.exported_days(t.name) for t in tables}
                ops, label, dataset = wh.ops, wh.display_name, wh.dataset
                database = options["database"] or getattr(wh, "project", None)
                if database is None and getattr(wh, "path", None) is not None:
                    database = Path(str(getattr(wh, "path", ""))).stem
        except SmolqweryError as exc:
            raise CommandError(str(exc)) from exc
        document = build_sources(
            ops,
            label,
            dataset,
            tables,
            ledgers,
            database=database,
            source_name=options["name"],
            freshness=Freshness(
                options["warn_after_hours"],
                options["error_after_hours"],
                options["loaded_at_field"],
            ),
        )
        text = "# Written by manage.py smolqwery_dbt_sources; regenerate it, do not edit.\n"
        text += to_yaml(document) + "\n"
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']} ({len(tables)} export tables)")
        else:
            self.stdout.write(text, ending="")
