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
EXIT_LATE = 1  # a table lags more than --max-lag days; with --run, a unit of the run failed
EXIT_UNKNOWN = 2  # a table could not be read, or the settings are invalid: status unknown


class Command(SmolqweryCommand):
    help = (
        "Per table: first and last exported day, missing days, rows and lag behind yesterday "
        "(in TIME_ZONE). Exits with status 2 when a table cannot be read (within "
        "SMOLQWERY_STATUS_DEADLINE seconds) and, with --max-lag N, 1 when a table is more than "
        "N days behind: a check for monitoring. --run RUN_ID lists the units of a run (1 when "
        "one failed)."
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
        parser.add_argument(
            "--run",
            metavar="RUN_ID",
            help=(
                "List every unit of this run (the id smolqwery_extract --enqueue printed; "
                "'last': the newest run with units) with its state, attempts and error; exit "
                "status 1 when one failed, was not published or lost its worker (0 while they "
                "are queued or running). Waits for nothing: --wait --run on smolqwery_extract "
                "does."
            ),
        )
        parser.add_argument("--format", choices=("table", "json"), default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            last, statuses = table_status(options["extractors"])
        except SmolqweryError as exc:
            raise CommandError(str(exc), returncode=EXIT_UNKNOWN) from exc
        max_lag: int | None = options["max_lag"]
        run: str | None = options["run"]
        units = unit_progress(run)
        if run is not None and units is None:
            raise CommandError(
                f"no unit recorded for run {run!r} (a run that queued 0 units records none): "
                "give the id of a run that queued units, or 'last'",
                returncode=EXIT_UNKNOWN,
            )
        if options["format"] == "json":
            shown: dict[str, Any] = {
                "yesterday": last.isoformat(),
                "tables": [s.to_dict() for s in statuses],
            }
            if units is not None:
                shown["units"] = units.to_dict(units=run is not None)
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
                if run is None:
                    for pending in units.unfinished[:20]:
                        self.stdout.write(f"  unit {pending}")
                for u in units.units if run is not None else ():
                    tries = f"{u['attempts']} attempt(s)"
                    done = f", {u['rows']:,} rows" if u["state"] == "done" else ""
                    worker = f", {u['worker']}" if u["worker"] else ""
                    error = f": {u['error']}" if u["error"] else ""
                    self.stdout.write(
                        f"  {u['table']} {u['days']} {u['state']} ({tries}{done}{worker}){error}"
                    )
            for s in statuses:
                if s.missing_days:
                    self.stdout.write(f"{s.table}: missing {format_days(s.missing_days)}")
                if s.error:
                    self.stderr.write(f"{s.table or s.extractor}: ERROR: {s.error}")
        broken = [s for s in statuses if s.error]
        late = [s for s in statuses if max_lag is not None and s.lag > max_lag]
        failed_run = run is not None and units is not None and units.failed > 0
        if broken or late or failed_run:
            problems = [f"{s.table or s.extractor} cannot be read" for s in broken]
            problems += [f"{s.table} lags {s.lag} day(s) (max {max_lag})" for s in late]
            if failed_run and units is not None:
                problems.append(f"run {units.run_id}: {units.failed} unit(s) failed")
            raise CommandError(
                "; ".join(problems), returncode=EXIT_UNKNOWN if broken else EXIT_LATE
            )
