"""``manage.py smolqwery_extract``: export every complete local day not exported yet.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from django.core.management.base import CommandError, CommandParser

from smolqwery.errors import ExportLockedError, LeaseLostError, SmolqweryError
from smolqwery.exporter import ExportReport, Progress, export
from smolqwery.reporting import format_summary, make_progress

from ._options import day_arg, non_negative_arg, positive_arg
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
            help=(
                "Wait for a running export to finish instead of exiting; with --enqueue, "
                "follow the queued units to their end (the summary, and exit status 1 if any "
                "failed or did not finish)."
            ),
        )
        parser.add_argument(
            "--jobs",
            type=positive_arg,
            default=1,
            metavar="N",
            help=(
                "Run the units of work in N local processes (tables in parallel; on DuckDB the "
                "extraction is parallel and the writes take turns)."
            ),
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help=(
                "Plan the units and put them on the Celery queue for the workers, then return "
                "(for cron or Celery beat; pip install 'smolqwery[celery]')."
            ),
        )
        parser.add_argument(
            "--run",
            metavar="RUN_ID",
            help=(
                "With --wait: follow the units of an earlier --enqueue run (the id it printed; "
                "'last': the newest run with units) to their end, with the summary and exit status "
                "of --enqueue --wait; nothing is planned or queued."
            ),
        )
        parser.add_argument(
            "--wait-timeout",
            type=positive_arg,
            default=None,
            metavar="SECONDS",
            help=(
                "With --enqueue --wait or --wait --run: stop following once no unit has moved "
                "for this long (default: SMOLQWERY_LOCK_TIMEOUT) and report the unfinished ones."
            ),
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
        report: ExportReport | None
        try:
            if options["run"] is not None:
                report = self._follow(progress, options)
            elif options["enqueue"] or options["jobs"] > 1:
                report = self._fan_out(progress, options)
                if report is None:
                    return
            else:
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

    def _fan_out(self, progress: Progress, options: dict[str, Any]) -> ExportReport | None:
        """``--jobs N`` or ``--enqueue [--wait]``: the units run elsewhere (smolqwery.fanout)."""
        from smolqwery import fanout
        from smolqwery.settings import get_settings

        if options["enqueue"] and options["jobs"] > 1:
            raise CommandError("--enqueue and --jobs exclude each other: workers run the units")
        chosen = (options["extractors"], options["date_from"], options["date_to"], options["lag"])
        if options["jobs"] > 1:
            plan = fanout.make_plan(*chosen)
            fanout.announce(plan, progress)
            return fanout.run_jobs(plan, options["jobs"], progress)
        # The broker is checked before anything is planned; what it did not take is marked.
        with fanout.publisher() as pub:
            plan = fanout.make_plan(*chosen, supersede=False)
            fanout.announce(plan, progress)
            fanout.enqueue(plan, pub)
        progress.note(f"run {plan.run_id}: {len(plan.units)} unit(s) queued")
        if not options["wait"]:
            progress.close()
            for failure in plan.failures:
                progress.note(f"{failure.table or failure.extractor} not planned: {failure.error}")
            if plan.failures:
                raise CommandError(f"{len(plan.failures)} extractor(s) failed", returncode=1)
            return None
        stall = options["wait_timeout"] or get_settings().lock_timeout
        return fanout.follow(plan, progress, stall=stall)

    def _follow(self, progress: Progress, options: dict[str, Any]) -> ExportReport:
        """``--wait --run RUN_ID``: follow an earlier ``--enqueue`` run (cron queued it)."""
        from smolqwery import fanout
        from smolqwery.settings import get_settings

        chosen = [o for o in ("enqueue", "date_from", "date_to", "extractors", "lag") if options[o]]
        if not options["wait"] or chosen or options["jobs"] > 1:
            raise CommandError(
                "--run RUN_ID goes with --wait alone (and --wait-timeout): it follows the units "
                "an earlier --enqueue planned, and plans nothing"
            )
        plan = fanout.recorded_plan(options["run"])
        stall = options["wait_timeout"] or get_settings().lock_timeout
        return fanout.follow(plan, progress, stall=stall)
