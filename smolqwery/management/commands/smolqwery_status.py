"""``manage.py smolqwery_status``: where each export table stands, for people and monitoring."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from smolqwery.errors import SmolqweryError
from smolqwery.reporting import format_days
from smolqwery.status import table_status, unit_progress

from ._options import non_negative_arg
from ._output import SmolqweryCommand

#: Exit statuses, for monitoring (0: all tables read, none too late).
EXIT_LATE = 1  # a table lags more than --max-lag days
EXIT_UNKNOWN = 2  # a table could not be read, or the settings are invalid: status unknown


class Command(SmolqweryCommand):
    help = (
        "Per table: first and last exported day, missing days, rows and lag behind yesterday "
        "(in TIME_ZONE). Exits with status 2 when a table cannot be read (within "
        "SMOLQWERY_STATUS_DEADLINE seconds) and, with --max-lag N, 1 when a table is more than "
        "N days behind: a check for monitoring."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-lag",
            type=non_negative_arg,
            metavar="N",
            help="Fail when a table lags more than N days behind yesterday.",
        )
        parser.add_argument(
            "--extractor",
            action="append",
            dest="extractors",
            metavar="NAME",
            help="Only this extractor: dotted path or table name (repeatable).",
        )
        parser.add_argument("--format", choices=("table", "json"), default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            last, statuses = table_status(options["extractors"])
        except SmolqweryError as exc:
            raise CommandError(str(exc), returncode=EXIT_UNKNOWN) from exc
        max_lag: int | None = options["max_lag"]
        units = unit_progress()
        if options["format"] == "json":
            shown: dict[str, Any] = {
                "yesterday": last.isoformat(),
                "tables": [s.to_dict() for s in statuses],
            }
            if units is not None:
                shown["units"] = units.to_dict()
            self.stdout.write(json.dumps(shown, indent=2))
        else:
            header = (
                "table",
                "first day",
                "last day",
                "days",
                "missing",
                "rows",
                "lag",
                "last run",
            )
            lines = [header]
            for s in statuses:
                # A table whose ledger was not read is unknown, never "0 missing, lag 0".
                counts = (
                    (str(s.exported_days), str(len(s.missing_days)), f"{s.rows:,}", str(s.lag))
                    if s.read
                    else ("?", "?", "?", "?")
                )
                lines.append(
                    (
                        s.table or s.extractor,
                        s.first_day.isoformat() if s.first_day else "-",
                        s.last_day.isoformat() if s.last_day else "-",
                        *counts,
                        s.last_run or "-",
                    )
                )
            widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
            for line in lines:
                self.stdout.write(
                    "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                )
            self.stdout.write(f"yesterday: {last.isoformat()}")
            if units is not None:
                tally = ", ".join(f"{n} {state}" for state, n in sorted(units.counts.items()))
                self.stdout.write(f"units of run {units.run_id}: {tally}")
                for pending in units.unfinished[:20]:
                    self.stdout.write(f"  unit {pending}")
            for s in statuses:
                if s.missing_days:
                    self.stdout.write(f"{s.table}: missing {format_days(s.missing_days)}")
                if s.error:
                    self.stderr.write(f"{s.table or s.extractor}: ERROR: {s.error}")
        broken = [s for s in statuses if s.error]
        late = [s for s in statuses if max_lag is not None and s.lag > max_lag]
        if broken or late:
            problems = [f"{s.table or s.extractor} cannot be read" for s in broken]
            problems += [f"{s.table} lags {s.lag} day(s) (max {max_lag})" for s in late]
            raise CommandError(
                "; ".join(problems), returncode=EXIT_UNKNOWN if broken else EXIT_LATE
            )
