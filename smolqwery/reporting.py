"""What an export shows while it runs: a progress bar on a terminal, plain lines in cron.

The exporter never prints: it calls the :class:`~smolqwery.exporter.Progress` callbacks, which
this module implements. The management command picks :class:`RichProgress` on a terminal and
:class:`LineProgress` otherwise, both writing to the command's own output — logging
configuration is left to the project (0.1.3 defect D22).

Without a terminal (cron), every line starts with the local time, every day read gets a line
(a year-long backfill is never silent for hours), and each failure is written once, on
stderr; its traceback follows with ``-v 2`` or ``--traceback`` when the extractor's own code
raised (a refusal of ours is one line that says what to do).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import datetime
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

from .exporter import ExportReport, ExtractorResult, Progress

__all__ = [
    "LineProgress",
    "Progress",
    "RichProgress",
    "format_days",
    "format_summary",
    "make_progress",
]


def format_failure(label: str, error: str, exc: BaseException | None, tracebacks: bool) -> str:
    """``label: FAILED: error``, then the traceback of ``exc`` when asked for and known."""
    text = f"{label}: FAILED: {error}"
    if tracebacks and exc is not None:
        text += "\n" + "".join(traceback.format_exception(exc)).rstrip("\n")
    return text


def local_stamp() -> str:
    """Now in ``TIME_ZONE``, to the second, with its UTC offset: ``2024-06-04 06:00:01+02:00``."""
    from django.utils import timezone

    return timezone.localtime().isoformat(sep=" ", timespec="seconds")


class LineProgress(Progress):
    """Plain lines, for cron mails and log files. Failures go to ``write_error`` at any
    verbosity; with ``stamp`` every line starts with the time it was written."""

    def __init__(
        self,
        write: Callable[[str], None],
        verbosity: int = 1,
        *,
        write_error: Callable[[str], None] | None = None,
        stamp: Callable[[], str] | None = None,
        tracebacks: bool = False,
    ) -> None:
        self._write = write
        self._write_error = write_error or write
        self.verbosity = verbosity
        self.stamp = stamp
        self.tracebacks = tracebacks

    def _lines(self, text: str) -> str:
        if self.stamp is None:
            return text
        now = self.stamp()
        return "\n".join(f"{now} {line}" for line in text.split("\n"))

    def write(self, text: str) -> None:
        self._write(self._lines(text))

    def write_error(self, text: str) -> None:
        self._write_error(self._lines(text))

    def note(self, text: str) -> None:
        self.write(text)

    def extractor_started(self, name: str, table: str, days: int) -> None:
        if self.verbosity >= 1:
            self.write(f"{table}: {days} day(s) to export" if days else f"{table}: up to date")

    def day_done(self, name: str, table: str, day: datetime.date, rows: int) -> None:
        if self.verbosity >= 1:
            self.write(f"{table}: {day.isoformat()} read, {rows} row(s)")

    def batch_done(
        self, name: str, table: str, first: datetime.date, last: datetime.date, rows: int
    ) -> None:
        if self.verbosity >= 1:
            days = (last - first).days + 1
            span = (
                first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
            )
            self.write(f"{table}: exported {span} ({days} day(s), {rows} row(s))")

    def extractor_finished(self, result: ExtractorResult) -> None:
        if result.failed:
            self.write_error(
                format_failure(
                    result.table or result.extractor,
                    result.error,
                    result.exception,
                    self.tracebacks,
                )
            )


class RichProgress(Progress):
    """A live progress bar per extractor: days done out of days to do, and rows."""

    def __init__(self, file: IO[str], *, tracebacks: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBar

        self.console = Console(file=file)
        self.bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TextColumn("{task.fields[rows]:>12,} rows"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        #: Extractors whose days were told one by one (then their batches are not counted).
        self.days_told: set[str] = set()
        self.tracebacks = tracebacks
        self.bar.start()

    def extractor_started(self, name: str, table: str, days: int) -> None:
        self.tasks[name] = self.bar.add_task(table, total=max(days, 0), rows=0)

    def day_done(self, name: str, table: str, day: datetime.date, rows: int) -> None:
        task = self.tasks.get(name)
        if task is not None:
            self.days_told.add(name)
            current = self.bar.tasks[task].fields.get("rows", 0)
            self.bar.update(task, advance=1, rows=current + rows)

    def batch_done(
        self, name: str, table: str, first: datetime.date, last: datetime.date, rows: int
    ) -> None:
        # Units run elsewhere (--jobs, --enqueue --wait) report batches, not days: counted
        # here, unless the days were (an in-process run reports both).
        task = self.tasks.get(name)
        if task is not None and name not in self.days_told:
            current = self.bar.tasks[task].fields.get("rows", 0)
            self.bar.update(task, advance=(last - first).days + 1, rows=current + rows)

    def extractor_finished(self, result: ExtractorResult) -> None:
        task = self.tasks.get(result.extractor)
        if task is not None:
            label = result.table if not result.failed else f"[red]{result.table} (failed)"
            self.bar.update(task, description=label, rows=result.rows)
        if result.failed:
            # Above the bar, on the same terminal: a live display owns the screen.
            self.console.print(
                format_failure(
                    result.table or result.extractor,
                    result.error,
                    result.exception,
                    self.tracebacks,
                ),
                style="red",
                markup=False,
                highlight=False,
            )

    def close(self) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)


def _writer(stream: IO[str]) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


def make_progress(
    stream: IO[str],
    *,
    errors: IO[str] | None = None,
    verbosity: int = 1,
    bar: bool | None = None,
    tracebacks: bool = False,
) -> Progress:
    """A bar when ``stream`` is a terminal, else timestamped lines (failures to ``errors``)."""
    terminal = hasattr(stream, "isatty") and stream.isatty()
    if bar is None:
        bar = verbosity >= 1 and terminal
    if bar:
        return RichProgress(stream, tracebacks=tracebacks)
    return LineProgress(
        _writer(stream),
        verbosity,
        write_error=_writer(errors) if errors is not None else None,
        stamp=None if terminal else local_stamp,
        tracebacks=tracebacks,
    )


def format_summary(report: ExportReport) -> str:
    """The end-of-run table: one line per extractor with days, rows and seconds."""
    header = ("table", "status", "days", "rows", "first day", "last day", "seconds")
    lines: list[Sequence[str]] = [header]
    for r in report.results:
        lines.append(
            (
                r.table or r.extractor,
                r.status,
                str(r.days),
                f"{r.rows:,}",
                r.first_day.isoformat() if r.first_day else "-",
                r.last_day.isoformat() if r.last_day else "-",
                f"{r.seconds:.1f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 3, 6}
    out = [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    ]
    failed = len(report.failed)
    total = len(report.results)
    out.append(
        f"{total} extractor(s), {sum(r.rows for r in report.results):,} row(s), "
        + (f"{failed} failed" if failed else "all succeeded")
        + f" (run {report.run_id})"
    )
    return "\n".join(out)


def format_days(days: Sequence[datetime.date], limit: int = 5) -> str:
    """Sorted days as ranges, ``2024-01-03..2024-01-05, 2024-01-09``, the first ``limit`` only."""
    ranges: list[tuple[datetime.date, datetime.date]] = []
    for day in days:
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    parts = [a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in ranges]
    if len(parts) > limit:
        parts = [*parts[:limit], f"and {len(parts) - limit} more range(s)"]
    return ", ".join(parts)
