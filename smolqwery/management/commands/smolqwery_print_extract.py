"""``manage.py smolqwery_print_extract``: show the rows an export would write, write nothing."""

from __future__ import annotations

import base64
import csv
import datetime
import decimal
import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from smolqwery.days import local_now, yesterday
from smolqwery.errors import SmolqweryError
from smolqwery.preview import PreviewChunk, preview
from smolqwery.reporting import format_failure

from ._options import day_arg
from ._output import SmolqweryCommand


def _plain(value: Any) -> Any:
    """A JSON/CSV-friendly value: days and times in ISO, Decimals exact, bytes in base64."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


#: Characters a table cell shows escaped: one row stays one line, and a value reads back
#: unambiguously (JSON and CSV carry them as they are).
_CELL_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(_plain(value)).translate(_CELL_ESCAPES)


class Command(SmolqweryCommand):
    help = (
        "Print, per extractor and day, exactly the rows smolqwery_extract would write (same "
        "validation), without writing anything anywhere. Both days are included."
    )
    # A dry run needs no warehouse and no credentials; problems are reported per extractor.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-f",
            "--first-date",
            type=day_arg,
            metavar="YYYY-MM-DD",
            help="First day (default: the last day).",
        )
        parser.add_argument(
            "-l",
            "--last-date",
            type=day_arg,
            metavar="YYYY-MM-DD",
            help="Last day, included (default: yesterday in TIME_ZONE).",
        )
        parser.add_argument(
            "--extractor",
            action="append",
            dest="extractors",
            metavar="NAME",
            help="Only this extractor: dotted path or table name (repeatable).",
        )
        parser.add_argument(
            "--format",
            choices=("table", "json", "csv"),
            default="table",
            help="Output format (default: table).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tz = timezone.get_default_timezone()
        last: datetime.date = options["last_date"] or yesterday(local_now(tz), tz)
        first: datetime.date = options["first_date"] or last
        fmt: str = options["format"]
        failures = 0
        tracebacks = options["verbosity"] >= 2 or bool(options.get("traceback"))
        printer = {"table": self._table, "json": self._json, "csv": self._csv}[fmt]
        self._started = False
        self._csv_tables: set[str] = set()
        try:
            for item in preview(first, last, options["extractors"]):
                if isinstance(item, PreviewChunk):
                    printer(item)
                else:
                    failures += 1
                    label = item.table or item.extractor
                    self.stderr.write(format_failure(label, item.error, item.exception, tracebacks))
        except SmolqweryError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if fmt == "json":
                self.stdout.write("[]" if not self._started else "\n]")
        if failures:
            raise CommandError(
                f"{failures} extractor(s) failed; an export would write nothing for them"
            )

    def _table(self, chunk: PreviewChunk) -> None:
        names = list(chunk.table.column_names)
        self.stdout.write(
            f"== {chunk.table.name} {chunk.day.isoformat()} ({len(chunk.rows)} row(s))"
        )
        if not chunk.rows:
            return
        cells = [names] + [[_cell(row[n]) for n in names] for row in chunk.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(names))]
        for i, line in enumerate(cells):
            self.stdout.write(
                "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            )
            if i == 0:
                self.stdout.write("  ".join("-" * w for w in widths))

    def _json(self, chunk: PreviewChunk) -> None:
        doc = {
            "extractor": chunk.extractor,
            "table": chunk.table.name,
            "day": chunk.day.isoformat(),
            "rows": [{k: _plain(v) for k, v in row.items()} for row in chunk.rows],
        }
        self.stdout.write(("[\n" if not self._started else ",\n") + json.dumps(doc), ending="")
        self._started = True

    def _csv(self, chunk: PreviewChunk) -> None:
        names = list(chunk.table.column_names)
        writer = csv.writer(self.stdout, lineterminator="\n")
        if chunk.table.name not in self._csv_tables:
            if self._csv_tables:
                self.stdout.write("")
            self._csv_tables.add(chunk.table.name)
            writer.writerow(["table", *names])
        for row in chunk.rows:
            writer.writerow([chunk.table.name, *(_plain(row[n]) for n in names)])
