"""``manage.py show_warehouse [--table NAME] [--last N]``: look at what the warehouse holds.

Reads through smolqwery's warehouse interface, so it shows the same thing on DuckDB and on
BigQuery. Without ``--table`` it lists the tables and views with their row counts.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.report import render_table, render_tables
from smolqwery.errors import SmolqweryError


class Command(BaseCommand):
    help = "List the warehouse's tables, or print the last rows of one table or view."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--table", "-t", action="append", help="Table or view (repeatable).")
        parser.add_argument("--last", type=int, default=7, help="Rows to print (default: 7).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if not options["table"]:
                self.stdout.write(render_tables())
                return
            for name in options["table"]:
                self.stdout.write(render_table(name, options["last"]))
        except (SmolqweryError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
