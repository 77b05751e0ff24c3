"""The dry run of ``smolqwery_print_extract``: the rows an export would write, written nowhere.

Neither the warehouse nor the database is touched: no ledger, no lock, no ``ExportRun``. Rows go
through the same validation and Arrow conversion as an export's (:mod:`smolqwery.rows`).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .arrow_validation import make_converter
from .days import date_range, day_window
from .errors import REPORTED, ConfigurationError, user_message, user_traceback
from .registry import select_extractors
from .rows import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    import pyarrow as pa

    from .schema import TableSchema

__all__ = ["PreviewChunk", "PreviewFailure", "preview"]

# The logger of the 1.0 runner module: projects' LOGGING names it (docs/exporting.md).
logger = logging.getLogger("smolqwery.runner")


@dataclasses.dataclass
class PreviewChunk:
    """Rows of one day of one extractor, exactly as an export would write them."""

    extractor: str
    table: TableSchema
    day: datetime.date
    rows: list[dict[str, Any]]


@dataclasses.dataclass
class PreviewFailure:
    """An extractor whose rows an export would refuse (or could not load)."""

    extractor: str
    table: str
    error: str
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)


def preview(
    first: datetime.date,
    last: datetime.date,
    extractors: Iterable[str] | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[PreviewChunk | PreviewFailure]:
    """The rows of ``first``..``last`` (both included), validated, without writing anything.

    A day without rows yields a chunk with no rows; an extractor failing yields a failure and
    the others go on.
    """
    if first > last:
        raise ConfigurationError(
            f"the range is empty: first day {first.isoformat()} is after last day "
            f"{last.isoformat()}"
        )
    tz = timezone.get_default_timezone()
    for item in select_extractors(extractors):
        if item.extractor is None or item.table is None:
            yield PreviewFailure(item.name, "", item.error, user_traceback(item.exception))
            continue
        converter = make_converter(item.extractor, item.table, chunk_rows=chunk_rows)
        try:
            for day in date_range(first, last):
                counts: dict[datetime.date, int] = {}
                batches: list[pa.RecordBatch] = list(
                    converter.record_batches([day_window(day, tz)], counts)
                )
                rows = [row for batch in batches for row in batch.to_pylist()]
                yield PreviewChunk(item.name, item.table, day, rows)
        except Exception as exc:
            shown = user_traceback(exc)
            message = user_message(exc)
            logger.error("%s failed: %s", item.name, message, exc_info=shown, extra=REPORTED)
            yield PreviewFailure(item.name, item.table.name, message, shown)
