"""Validation of Arrow columns, vectorised in ``pyarrow.compute``, with the row path's verdicts.

The queryset path (:class:`ArrowConverter`) reads a day as Arrow columns and must refuse exactly
what the row path (:class:`smolqwery.rows.RowConverter`) refuses, with the same message. So
both cut the rows into the same chunks (``chunk_rows`` rows, days following each other), check
the columns in table order, and name the first bad value of the first bad column: here a
boolean mask per column says which values the row path's ``value_problem`` would refuse, and
the message is that very function's, on the first flagged value. Only a column Arrow cannot
carry (e.g. JSON through Django's converters) is handed to the row path's column check itself.
Nothing is written when a chunk is refused: the warehouse's ``replace_days`` rolls back.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .errors import RowError
from .rows import (
    _TIMESTAMP_MAX_US,
    _TIMESTAMP_MIN_US,
    DEFAULT_CHUNK_ROWS,
    INT64_MAX,
    MAX_ROW_BYTES,
    NUMERIC_INTEGER_DIGITS,
    ExtractorError,
    RowConverter,
    _Segment,
    short_repr,
    value_problem,
)
from .schema import NUMERIC_SCALE, arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

    from .arrow_source import Column as SourceColumn
    from .extractor import BaseExtractor
    from .queryset_extractor import CompiledQuery
    from .schema import Column, TableSchema
    from .warehouses.base import DayWindow

__all__ = ["ArrowConverter", "Converter", "make_converter"]

#: Reads one day: pieces of columns (dataclass order) with their row counts.
Source = Callable[["DayWindow"], Iterator[tuple[list["SourceColumn"], int]]]


@dataclasses.dataclass
class _Piece:
    window: DayWindow
    #: Row index, within its day, of the piece's first row.
    offset: int
    columns: list[SourceColumn]
    rows: int


def _slice(column: SourceColumn, start: int, length: int) -> SourceColumn:
    if isinstance(column, list):
        return column[start : start + length]
    return column.slice(start, length)


#: A grouped queryset has no row for a day without source rows.
_NO_GROUP_HINT = (
    " (a day without source rows has no group: when such days happen, aggregate in extract() "
    "with .aggregate(), which always returns one row)"
)


class ArrowConverter:
    """Validates Arrow columns read per day into the table's Arrow batches.

    Same interface as :class:`~smolqwery.rows.RowConverter` (``record_batches``), so the runner
    and the warehouses do not know which one they have.
    """

    def __init__(
        self,
        extractor: BaseExtractor[Any],
        table: TableSchema,
        source: Source,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_row_bytes: int = MAX_ROW_BYTES,
        name: str | None = None,
        close: Callable[[], None] | None = None,
        next_day: Callable[[DayWindow | None], None] | None = None,
    ) -> None:
        self.rows = RowConverter(
            extractor, table, chunk_rows=chunk_rows, max_row_bytes=max_row_bytes, name=name
        )
        self.table = table
        self.name = self.rows.name
        self.source = source
        self._close = close
        #: Told, before a day is read, which day comes after it (None: the last), so that the
        #: source may start reading that one while this one is written.
        self._next_day = next_day

    @property
    def schema(self) -> pa.Schema:
        return self.rows.schema

    # -- streaming ---------------------------------------------------------------------

    def _read(self, window: DayWindow) -> Iterator[tuple[list[SourceColumn], int]]:
        """The day's pieces; a failure of the user's queryset or of the database is the
        extractor's (:class:`ExtractorError`), as in the row path."""
        where = self.rows._where(window)
        try:
            pieces = iter(self.source(window))
        except (RowError, ExtractorError):
            raise
        except Exception as exc:
            raise ExtractorError(
                f"{where}: get_queryset() raised {type(exc).__name__}: {exc}"
            ) from exc
        while True:
            try:
                piece = next(pieces)
            except StopIteration:
                return
            except (RowError, ExtractorError):
                raise
            except Exception as exc:
                raise ExtractorError(
                    f"{where}: reading the queryset failed: {type(exc).__name__}: {exc}"
                ) from exc
            yield piece

    def record_batches(
        self,
        windows: Iterable[DayWindow],
        row_counts: dict[datetime.date, int],
        on_day: Callable[[datetime.date, int], None] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Read ``windows`` day by day, yielding validated Arrow batches (see RowConverter)."""
        limit = self.rows.chunk_rows
        pieces: list[_Piece] = []
        buffered = 0
        try:
            days = list(windows)
            for index, window in enumerate(days):
                if self._next_day is not None:
                    self._next_day(days[index + 1] if index + 1 < len(days) else None)
                offset = 0
                for columns, rows in self._read(window):
                    start = 0
                    while start < rows:
                        take = min(rows - start, limit - buffered)
                        part = (
                            columns
                            if start == 0 and take == rows
                            else [_slice(c, start, take) for c in columns]
                        )
                        pieces.append(_Piece(window, offset, part, take))
                        offset += take
                        buffered += take
                        start += take
                        if buffered >= limit:
                            yield self._flush(pieces)
                            pieces = []
                            buffered = 0
                if self.rows.aggregated and offset != 1:
                    raise RowError(
                        f"{self.rows._where(window)}: a date-aggregated extractor must yield "
                        f"exactly one row per day, get_queryset() returned {offset}"
                        + (_NO_GROUP_HINT if offset == 0 else "")
                    )
                row_counts[window.day] = offset
                if on_day is not None:
                    on_day(window.day, offset)
            if pieces:
                yield self._flush(pieces)
        finally:
            if self._close is not None:
                self._close()

    # -- one chunk ---------------------------------------------------------------------

    @staticmethod
    def _segments(pieces: Sequence[_Piece]) -> list[_Segment]:
        segments: list[_Segment] = []
        position = 0
        for piece in pieces:
            end = position + piece.rows
            last = segments[-1] if segments else None
            if last is not None and last.window == piece.window and last.end == position:
                segments[-1] = _Segment(piece.window, last.start, end, last.offset)
            else:
                segments.append(_Segment(piece.window, position, end, piece.offset))
            position = end
        return segments

    def _flush(self, pieces: Sequence[_Piece]) -> pa.RecordBatch:
        import pyarrow as pa

        segments = self._segments(pieces)
        arrays: list[pa.Array] = []
        for spec in self.rows.specs:
            if spec.source is None:
                days = itertools.chain.from_iterable(
                    itertools.repeat(s.window.day, s.end - s.start) for s in segments
                )
                arrays.append(pa.array(list(days), type=pa.date32()))
                continue
            parts = [piece.columns[spec.source] for piece in pieces]
            array = self.column(spec.column, parts, segments)
            if spec.column.name == self.table.date_column:
                self._check_days(spec.column, array, segments)
            arrays.append(array)
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.rows.schema)
        self.rows._check_size(batch, segments)
        return batch

    def column(
        self, column: Column, parts: Sequence[SourceColumn], segments: Sequence[_Segment]
    ) -> pa.Array:
        """One column of a chunk, checked and cast to the table's Arrow type."""
        import pyarrow as pa

        array = _concat(parts)
        if isinstance(array, list):
            return self.rows._column(column, array, segments)
        mask = bad_mask(column, array)
        if mask is not None:
            import pyarrow.compute as pc

            if pc.any(mask).as_py():
                index = pc.index(mask, True).as_py()
                raise self._error(column, array, index, segments)
        target = arrow_type(column.type)
        try:
            if column.type == "NUMERIC" and pa.types.is_decimal(array.type):
                return _numeric(array)
            return array.cast(target)
        except (pa.ArrowException, OverflowError, ValueError):
            # Arrow will not cast it (a rare type pair): the row path's conversion decides.
            return self.rows._column(column, array.to_pylist(), segments)

    def _error(
        self, column: Column, array: pa.Array, index: int, segments: Sequence[_Segment]
    ) -> RowError:
        try:
            value = array[index].as_py()
        except (ValueError, OverflowError):  # an instant Python's datetime cannot hold
            segment, row = self.rows._locate(segments, index)
            return RowError(
                f"{self.rows._where(segment, row)}: field {column.name!r} ({column.type}) "
                f"is outside the TIMESTAMP range once converted to UTC: "
                f"{short_repr(str(array[index]))}"
            )
        why = value_problem(column, value) or "is invalid"
        return self.rows._value_error(segments, index, column, _as_django(value), why)

    def _check_days(self, column: Column, array: pa.Array, segments: Sequence[_Segment]) -> None:
        """Every row of an individual-rows table must fall inside its day's window."""
        import pyarrow as pa
        import pyarrow.compute as pc

        for segment in segments:
            part = array.slice(segment.start, segment.end - segment.start)
            window = segment.window
            if column.type == "DATE":
                bad = pc.not_equal(part, pa.scalar(window.day, pa.date32()))
                why = f"is not the day being exported ({window.day.isoformat()})"
            else:
                typ = pa.timestamp("us", tz="UTC")
                bad = pc.or_(
                    pc.less(part, pa.scalar(window.start, typ)),
                    pc.greater_equal(part, pa.scalar(window.end, typ)),
                )
                why = (
                    f"is outside the day being exported [{window.start.isoformat()}, "
                    f"{window.end.isoformat()})"
                )
            if pc.any(bad).as_py():
                index = pc.index(bad, True).as_py()
                value = _as_django(part[index].as_py())
                raise self.rows._value_error(segments, segment.start + index, column, value, why)


def _as_django(value: Any) -> Any:
    """A value as Django gives it, for messages: its aware datetimes are in
    ``datetime.timezone.utc`` (Arrow's are in ``zoneinfo.ZoneInfo("UTC")``)."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc)
    return value


def _concat(parts: Sequence[SourceColumn]) -> pa.Array | list[Any]:
    """The pieces of one column as one array, or as Python values when one piece is."""
    import pyarrow as pa

    if any(isinstance(p, list) for p in parts):
        return list(
            itertools.chain.from_iterable(
                p if isinstance(p, list) else p.to_pylist() for p in parts
            )
        )
    arrays: list[pa.Array] = list(parts)  # type: ignore[arg-type]
    if len(arrays) == 1:
        return arrays[0]
    types = {a.type for a in arrays if not pa.types.is_null(a.type)}
    if len(types) > 1:
        # The driver typed the days differently (SQLite's dynamic types): let Python decide.
        return list(itertools.chain.from_iterable(a.to_pylist() for a in arrays))
    common = types.pop() if types else pa.null()
    return pa.concat_arrays([a if a.type == common else a.cast(common) for a in arrays])


def _numeric(array: pa.Array) -> pa.Array:
    """A decimal column as NUMERIC: rounded to 9 decimals half away from zero, like BigQuery."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if array.type.scale > NUMERIC_SCALE:
        array = pc.round(array, NUMERIC_SCALE, round_mode="half_towards_infinity")
    return array.cast(pa.decimal128(38, NUMERIC_SCALE))


def bad_mask(column: Column, array: pa.Array) -> pa.Array | None:
    """Where ``value_problem(column, value)`` would refuse a value of ``array`` (None: nowhere).

    One rule per (column type, Arrow type): a value of a type the row path refuses is flagged
    wherever it is not null; then the checks of the value itself (range, finite, NUL).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = array.type
    kind = column.type
    bad: pa.Array | None = None
    if pa.types.is_null(typ):
        pass
    elif not _accepts(kind, typ):
        # A type the row path refuses whatever the value ("expects int, got str"...).
        bad = pc.is_valid(array)
    elif kind == "INT64" and typ == pa.uint64():
        bad = pc.greater(array, pa.scalar(INT64_MAX, typ))
    elif kind == "FLOAT64" and pa.types.is_floating(typ):
        bad = pc.invert(pc.is_finite(array))
    elif kind == "STRING":
        bad = pc.match_substring(array, "\x00")
    elif kind == "TIMESTAMP":
        micros = pc.cast(pc.cast(array, pa.timestamp("us", tz="UTC")), pa.int64())
        bad = pc.or_(pc.less(micros, _TIMESTAMP_MIN_US), pc.greater(micros, _TIMESTAMP_MAX_US))
    elif kind == "NUMERIC" and pa.types.is_decimal(typ):
        bad = _numeric_mask(column, array)
    if bad is not None:
        bad = pc.fill_null(bad, False)  # a null is no bad value (nulls: below)
    if not column.nullable and array.null_count:
        nulls = pc.is_null(array)
        bad = nulls if bad is None else pc.or_(bad, nulls)
    return bad


def _accepts(kind: str, typ: pa.DataType) -> bool:
    """Whether the row path takes the Python values of Arrow type ``typ`` for ``kind``."""
    import pyarrow as pa

    types = pa.types
    if kind == "INT64":
        return bool(types.is_integer(typ))
    if kind == "FLOAT64":
        return bool(types.is_floating(typ) or types.is_integer(typ))
    if kind == "NUMERIC":
        return bool(types.is_decimal(typ) or types.is_integer(typ))
    if kind == "BOOL":
        return bool(types.is_boolean(typ))
    if kind == "STRING":
        return bool(types.is_string(typ))
    if kind == "BYTES":
        return bool(types.is_binary(typ) or types.is_fixed_size_binary(typ))
    if kind == "DATE":
        return bool(types.is_date(typ))
    if kind == "TIMESTAMP":  # aware only: a naive datetime is refused
        return bool(types.is_timestamp(typ) and typ.tz is not None)
    return False


def _numeric_mask(column: Column, array: pa.Array) -> pa.Array | None:
    """Decimals too large for NUMERIC once rounded to 9 places (precise where it matters)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = array.type
    if typ.precision - typ.scale < NUMERIC_INTEGER_DIGITS:
        return None  # under 10**28 whatever the values
    # Values under 10**28 pass whatever their rounding; the few others are decided exactly,
    # by the row path's own check.
    threshold = pa.scalar(10**28, pa.decimal256(76, 0)).cast(pa.decimal256(76, typ.scale))
    wide = array.cast(pa.decimal256(76, typ.scale))
    candidates = pc.greater_equal(pc.abs(wide), threshold)
    if not pc.any(candidates).as_py():
        return None
    flags = [
        bool(flag) and value_problem(column, array[i].as_py()) is not None
        for i, flag in enumerate(candidates.to_pylist())
    ]
    return pa.array(flags, pa.bool_())


# -- choosing the converter -----------------------------------------------------------------

#: What the runner needs of a converter.
Converter = RowConverter | ArrowConverter


def make_converter(
    extractor: BaseExtractor[Any], table: TableSchema, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Converter:
    """The converter for ``extractor``: Arrow for a queryset extractor, rows otherwise."""
    from .queryset_extractor import QuerySetExtractor

    if not isinstance(extractor, QuerySetExtractor) or extractor.read_as == "rows":
        return RowConverter(extractor, table, chunk_rows=chunk_rows)
    from .arrow_source import SourceReader
    from .queryset_extractor import compile_queryset

    reader = SourceReader(extractor.get_reader())
    names = extractor.get_field_names()
    #: The day after the one being read, and the days compiled ahead (or how that failed).
    following: list[DayWindow | None] = [None]
    compiled: dict[datetime.date, CompiledQuery | Exception] = {}

    def compile_day(window: DayWindow) -> CompiledQuery:
        queryset = extractor.get_queryset(window.start, window.end)
        return compile_queryset(queryset, names)

    def next_day(window: DayWindow | None) -> None:
        following[0] = window

    def source(window: DayWindow) -> Iterator[tuple[list[SourceColumn], int]]:
        done = compiled.pop(window.day, None)
        compiled.clear()
        if isinstance(done, Exception):
            raise done  # the next day's get_queryset() failed while compiled ahead: its error
        this = done if done is not None else compile_day(window)
        after = following[0]

        def ahead() -> CompiledQuery | None:
            """The next day's query, compiled here (main thread) for the reader to start it;
            a failure is kept for that day to report."""
            if after is None:
                return None
            try:
                query = compile_day(after)
            except Exception as exc:
                compiled[after.day] = exc
                return None
            compiled[after.day] = query
            return query

        return reader.read(this, ahead)

    return ArrowConverter(
        extractor, table, source, chunk_rows=chunk_rows, close=reader.close, next_day=next_day
    )
