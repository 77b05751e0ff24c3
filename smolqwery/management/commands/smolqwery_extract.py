"""``manage.py smolqwery_extract``: export every complete local day not exported yet.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from django.core.management.base import CommandError, CommandParser

from smolqwery.errors import ExportLockedError, LeaseLostError, SmolqweryError
from smolqwery.exporter import export
from smolqwery.reporting import format_summary, make_progress

from ._options import day_arg, non_negative_arg
from ._output import SmolqweryCommand


class Command(SmolqweryCommand):
    help = (
        "Export every day from SMOLQWERY_FIRST_DATE to yesterday (in TIME_ZONE) that is not "
        "exported yet. Safe to run from cron as often as you like: each day is written exactly "
        "once, and a second run while one is going exits at once."
    )
    # Django's system checks would stop everything on one broken extractor; the runner reports
    # each extractor's problem and exports the others (0.1.3 defect D9).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--extractor",
            action="append",
            dest="extractors",
            metavar="NAME",
            help="Only this extractor: its dotted path or its table name (repeatable).",
        )
        parser.add_argument(
            "--from",
            dest="date_from",
            type=day_arg,
            metavar="YYYY-MM-DD",
            help=(
                "Re-export from this day to --to, or to yesterday without --to (the days are "
                "replaced atomically)."
            ),
        )
        parser.add_argument(
            "--to",
            dest="date_to",
            type=day_arg,
            metavar="YYYY-MM-DD",
            help="Last day of the range to re-export (included; at most yesterday).",
        )
        parser.add_argument(
            "--lag",
            type=non_negative_arg,
            default=0,
            metavar="N",
            help="Also re-export the last N days (data that arrives late).",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="Plain lines even on a terminal."
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait for a running export to finish instead of exiting.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity: int = options["verbosity"]
        # The wrapped streams themselves: a bar must not get a newline after every write.
        stream: IO[str] = getattr(self.stdout, "_out", sys.stdout)
        errors: IO[str] = getattr(self.stderr, "_out", sys.stderr)
        progress = make_progress(
            stream,
            errors=errors,
            verbosity=verbosity,
            bar=False if options["no_progress"] else None,
            tracebacks=verbosity >= 2 or bool(options.get("traceback")),
        )
        try:
            report = export(
                extractors=options["extractors"],
                date_from=options["date_from"],
                date_to=options["date_to"],
                lag=options["lag"],
                progress=progress,
                wait=options["wait"],
            )
        except LeaseLostError as exc:
            raise CommandError(str(exc)) from exc
        except ExportLockedError as exc:
            # Not a failure: the running export does the work (cron must not mail an error).
            progress.note(f"{exc}: nothing done (--wait waits for it)")
            return
        except SmolqweryError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity >= 1:
            progress.note(format_summary(report))
        if not report.ok:
            names = ", ".join(r.table or r.extractor for r in report.failed)
            # Chained, so that --traceback shows the first failure's own frames.
            cause = next((r.exception for r in report.failed if r.exception), None)
            raise CommandError(
                f"{len(report.failed)} extractor(s) failed: {names}", returncode=1
            ) from cause
