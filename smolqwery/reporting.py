"""What an export shows while it runs: a progress bar on a terminal, plain lines in cron.

The runner calls a :class:`Progress`; it never prints. The management command picks
:class:`RichProgress` on a terminal and :class:`LineProgress` otherwise, both writing to the
command's own output — logging configuration is left to the project (0.1.3 defect D22).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import ExportReport, ExtractorResult

__all__ = [
    "LineProgress",
    "Progress",
    "RichProgress",
    "format_days",
    "format_summary",
    "make_progress",
]


class Progress:
    """Callbacks of a running export. The base class shows nothing."""

    def extractor_started(self, name: str, table: str, days: int) -> None:
        """An extractor has ``days`` days to export (0 when up to date)."""

    def day_done(self, name: str, table: str, day: datetime.date, rows: int) -> None:
        """A day's rows were all read and checked (written once its batch commits)."""

    def batch_done(
        self, name: str, table: str, first: datetime.date, last: datetime.date, rows: int
    ) -> None:
        """A batch of days was committed to the warehouse."""

    def extractor_finished(self, result: ExtractorResult) -> None:
        """An extractor is done, successfully or not."""

    def close(self) -> None:
        """The run is over (stop a live display)."""


class LineProgress(Progress):
    """Plain lines, for cron mails and log files. Failures are shown at any verbosity."""

    def __init__(self, write: Callable[[str], None], verbosity: int = 1) -> None:
        self.write = write
        self.verbosity = verbosity

    def extractor_started(self, name: str, table: str, days: int) -> None:
        if self.verbosity >= 1:
            self.write(f"{table}: {days} day(s) to export" if days else f"{table}: up to date")

    def day_done(self, name: str, table: str, day: datetime.date, rows: int) -> None:
        if self.verbosity >= 2:
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
            self.write(f"{result.table or result.extractor}: FAILED: {result.error}")


class RichProgress(Progress):
    """A live progress bar per extractor: days done out of days to do, and rows."""

    def __init__(self, file: IO[str]) -> None:
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
        self.bar.start()

    def extractor_started(self, name: str, table: str, days: int) -> None:
        self.tasks[name] = self.bar.add_task(table, total=max(days, 0), rows=0)

    def day_done(self, name: str, table: str, day: datetime.date, rows: int) -> None:
        task = self.tasks.get(name)
        if task is not None:
            current = self.bar.tasks[task].fields.get("rows", 0)
            self.bar.update(task, advance=1, rows=current + rows)

    def extractor_finished(self, result: ExtractorResult) -> None:
        task = self.tasks.get(result.extractor)
        if task is not None:
            label = result.table if not result.failed else f"[red]{result.table} (failed)"
            self.bar.update(task, description=label, rows=result.rows)
        if result.failed:
            self.console.print(f"[red]{result.table or result.extractor}: FAILED:[/] ", end="")
            self.console.print(result.error, markup=False, highlight=False)

    def close(self) -> None:
        self.bar.stop()


def make_progress(stream: IO[str], *, verbosity: int = 1, bar: bool | None = None) -> Progress:
    """A bar when ``stream`` is a terminal (and rich is installed), plain lines otherwise."""
    if bar is None:
        bar = verbosity >= 1 and hasattr(stream, "isatty") and stream.isatty()
    if bar:
        try:
            return RichProgress(stream)
        except ImportError:
            pass

    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return LineProgress(write, verbosity)


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
