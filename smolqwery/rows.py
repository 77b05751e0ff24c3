"""Rows on their way from an extractor to a warehouse: validation and Arrow conversion.

Rows are read from ``extract()`` one day at a time, kept as tuples only until a chunk is full
(:data:`DEFAULT_CHUNK_ROWS`), then checked column by column and turned into one Arrow record
batch. So a day of millions of rows never sits in memory as Python objects, and the per-row
work is a class check, one ``attrgetter`` call and an append. Column checks run in C where they
can (``set(map(type, ...))``, Arrow compute); only when one fails does a slow pass look for
the first offending value, to name it in the :class:`~smolqwery.errors.RowError`.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import itertools
import math
import operator
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ExtractorError, RowError
from .schema import NUMERIC_PRECISION, NUMERIC_SCALE, arrow_schema, arrow_type
from .vocabulary import ExtractorType

if TYPE_CHECKING:
    import pyarrow as pa

    from .days import DayWindow
    from .interface import BaseExtractor
    from .schema import Column, TableSchema

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "MAX_ROW_BYTES",
    "ExtractorError",
    "RowConverter",
    "arrow_schema",
    "arrow_type",
]

NUMERIC_INTEGER_DIGITS = NUMERIC_PRECISION - NUMERIC_SCALE
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Rows per Arrow record batch: large enough for fast loads, small enough to bound memory.
DEFAULT_CHUNK_ROWS = 20_000
#: A conservative per-row budget, well under BigQuery's 100 MB load-job row limit (and equal
#: to the 10 MB limit of its streaming and query paths), so no load fails half-way.
MAX_ROW_BYTES = 10 * 1024 * 1024
#: Characters of a value's repr quoted in an error message.
REPR_LIMIT = 80

_NONE = type(None)
_TZINFO = operator.attrgetter("tzinfo")
#: tzinfo classes whose utcoffset() is never None.
_FIXED_OR_IANA: frozenset[type] = frozenset({datetime.timezone, zoneinfo.ZoneInfo})
_NUMERIC_QUANTUM = decimal.Decimal(1).scaleb(-NUMERIC_SCALE)
#: BigQuery's default rounding when it writes a NUMERIC with more decimals than 9
#: (``RoundingMode`` ROUNDING_MODE_UNSPECIFIED = ROUND_HALF_AWAY_FROM_ZERO, Python's HALF_UP).
NUMERIC_ROUNDING = decimal.ROUND_HALF_UP
#: Exact for any value under 10**29 quantized to 9 places (38 digits, one spare).
_NUMERIC_CONTEXT = decimal.Context(
    prec=NUMERIC_PRECISION + 1, rounding=NUMERIC_ROUNDING, traps=[decimal.InvalidOperation]
)
_NUMERIC_LIMIT = decimal.Decimal(10) ** NUMERIC_INTEGER_DIGITS
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
#: TIMESTAMP's range (0001-01-01 to 9999-12-31 UTC) in microseconds since the epoch.
_TIMESTAMP_MIN_US = (datetime.datetime.min.replace(tzinfo=datetime.timezone.utc) - _EPOCH) // (
    datetime.timedelta(microseconds=1)
)
_TIMESTAMP_MAX_US = (datetime.datetime.max.replace(tzinfo=datetime.timezone.utc) - _EPOCH) // (
    datetime.timedelta(microseconds=1)
)


def short_repr(value: object) -> str:
    """``repr(value)`` cut to :data:`REPR_LIMIT` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


# -- per-value checks (the slow path, run only to explain a failed column check) ------------

#: Exact Python types accepted on the fast path, per BigQuery type.
FAST_TYPES: dict[str, frozenset[type]] = {
    "INT64": frozenset({int}),
    "FLOAT64": frozenset({float, int}),
    "BOOL": frozenset({bool}),
    "STRING": frozenset({str}),
    "BYTES": frozenset({bytes}),
    "DATE": frozenset({datetime.date}),
    "TIMESTAMP": frozenset({datetime.datetime}),
    "NUMERIC": frozenset({decimal.Decimal, int}),
}


def _type_name(value: object) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def _int_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expects int, got {_type_name(value)}"
    if not INT64_MIN <= value <= INT64_MAX:
        return "is outside the INT64 range (-2**63 to 2**63-1)"
    return None


def _float_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (float, int)):
        return f"expects float, got {_type_name(value)}"
    try:
        number = float(value)
    except OverflowError:
        return "is too large for FLOAT64"
    if not math.isfinite(number):
        return "must be a finite number (NaN and infinities are refused)"
    return None


def _bool_problem(value: object) -> str | None:
    if not isinstance(value, bool):
        return f"expects bool, got {_type_name(value)}"
    return None


def _str_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"expects str, got {_type_name(value)}"
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid UTF-8 (lone surrogate at position {exc.start})"
    return None


def _bytes_problem(value: object) -> str | None:
    if not isinstance(value, bytes):
        return f"expects bytes, got {_type_name(value)}"
    return None


def _date_problem(value: object) -> str | None:
    if isinstance(value, datetime.datetime):
        return "expects a date, got a datetime (use .date(), or declare the field a datetime)"
    if not isinstance(value, datetime.date):
        return f"expects datetime.date, got {_type_name(value)}"
    return None


def _timestamp_problem(value: object) -> str | None:
    if not isinstance(value, datetime.datetime):
        return f"expects an aware datetime.datetime, got {_type_name(value)}"
    if value.utcoffset() is None:
        return "is a naive datetime: give it a time zone (django.utils.timezone.now() is aware)"
    try:
        value.astimezone(datetime.timezone.utc)
    except (OverflowError, ValueError):
        return "is outside the TIMESTAMP range once converted to UTC"
    return None


def numeric_value(value: decimal.Decimal | int) -> decimal.Decimal:
    """``value`` as NUMERIC stores it: rounded to 9 decimals half away from zero, like BigQuery.

    SQLite's ``Sum()`` gives e.g. ``Decimal('98777.9299999999')``: refusing it would block a
    whole batch for a digit NUMERIC never keeps. Callers check the range first.
    """
    number = decimal.Decimal(value)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -NUMERIC_SCALE:
        return number.quantize(_NUMERIC_QUANTUM, context=_NUMERIC_CONTEXT)
    return number


def _numeric_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (decimal.Decimal, int)):
        return f"expects decimal.Decimal, got {_type_name(value)}"
    number = decimal.Decimal(value)
    if not number.is_finite():
        return "must be a finite Decimal (NaN and infinities are refused)"
    # copy_abs(), not abs(): abs() rounds to the 28 digits of the default context.
    if (number and number.adjusted() >= NUMERIC_INTEGER_DIGITS) or numeric_value(
        number
    ).copy_abs() >= _NUMERIC_LIMIT:
        return (
            f"has more than {NUMERIC_INTEGER_DIGITS} digits before the decimal point once "
            f"rounded to {NUMERIC_SCALE} decimals (NUMERIC is DECIMAL(38, 9)); scale it down, "
            "or round it your way first, e.g. value.quantize(Decimal('0.01'))"
        )
    return None


VALUE_PROBLEMS: dict[str, Callable[[object], str | None]] = {
    "INT64": _int_problem,
    "FLOAT64": _float_problem,
    "BOOL": _bool_problem,
    "STRING": _str_problem,
    "BYTES": _bytes_problem,
    "DATE": _date_problem,
    "TIMESTAMP": _timestamp_problem,
    "NUMERIC": _numeric_problem,
}

#: Turns an accepted subclass (an IntEnum, a SafeString...) into the plain type Arrow expects.
_NORMALISE: dict[str, Callable[[Any], Any]] = {
    "INT64": int,
    "FLOAT64": float,
    "BOOL": bool,
    "STRING": str,
    "BYTES": bytes,
    "DATE": lambda d: datetime.date(d.year, d.month, d.day),
    "TIMESTAMP": lambda t: t.astimezone(datetime.timezone.utc),
    "NUMERIC": numeric_value,
}


def value_problem(column: Column, value: object) -> str | None:
    """Why ``value`` cannot go into ``column``, or None when it can."""
    if value is None:
        return None if column.nullable else "is None but the column is REQUIRED (not Optional)"
    return VALUE_PROBLEMS[column.type](value)


# -- the converter ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Segment:
    """Rows ``[start, end)`` of a chunk buffer belong to ``window``'s day, from row ``offset``."""

    window: DayWindow
    start: int
    end: int
    offset: int


@dataclasses.dataclass(frozen=True)
class _Spec:
    column: Column
    #: Index in the tuple read from a row; None for the ``date`` column smolqwery adds.
    source: int | None


class RowConverter:
    """Validates an extractor's rows against its table and turns them into Arrow batches.

    One converter serves one extractor for a whole run; :meth:`record_batches` is called once
    per batch of days and may be consumed by a warehouse, or by the dry run.
    """

    def __init__(
        self,
        extractor: BaseExtractor[Any],
        table: TableSchema,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_row_bytes: int = MAX_ROW_BYTES,
        name: str | None = None,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.extractor = extractor
        self.table = table
        self.name = name or extractor.get_name()
        self.chunk_rows = chunk_rows
        self.max_row_bytes = max_row_bytes
        self.row_class: type = extractor.get_dataclass()
        self.aggregated = table.kind is ExtractorType.date_aggregated
        fields = [
            c.name for c in table.columns if not (self.aggregated and c.name == table.date_column)
        ]
        self.field_names = tuple(fields)
        self.specs = tuple(
            _Spec(c, None if c.name not in fields else fields.index(c.name)) for c in table.columns
        )
        self._getter = _tuple_getter(self.field_names)
        self._schema: pa.Schema | None = None

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._schema = arrow_schema(self.table)
        return self._schema

    # -- errors ------------------------------------------------------------------------

    def _where(self, segment: _Segment | DayWindow, index: int | None = None) -> str:
        window = segment.window if isinstance(segment, _Segment) else segment
        where = f"{self.name}: day {window.day.isoformat()}"
        if index is not None:
            where += f", row {index + 1}"
        return where

    def _locate(self, segments: Sequence[_Segment], index: int) -> tuple[_Segment, int]:
        for segment in segments:
            if segment.start <= index < segment.end:
                return segment, segment.offset + index - segment.start
        raise IndexError(index)  # pragma: no cover - segments cover the buffer

    def _value_error(
        self, segments: Sequence[_Segment], index: int, column: Column, value: object, why: str
    ) -> RowError:
        segment, row = self._locate(segments, index)
        return RowError(
            f"{self._where(segment, row)}: field {column.name!r} ({column.type}) {why}: "
            f"{short_repr(value)}"
        )

    # -- streaming ---------------------------------------------------------------------

    def _open(self, window: DayWindow) -> Iterator[Any]:
        try:
            rows = self.extractor.extract(window.start, window.end)
            return iter(rows)
        except RowError:
            raise
        except Exception as exc:
            raise ExtractorError(
                f"{self._where(window)}: extract() raised {type(exc).__name__}: {exc}"
            ) from exc

    def record_batches(
        self,
        windows: Iterable[DayWindow],
        row_counts: dict[datetime.date, int],
        on_day: Callable[[datetime.date, int], None] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Extract ``windows`` day by day, yielding validated Arrow batches.

        Counts rows per day into ``row_counts`` (days without rows get 0) and calls
        ``on_day(day, rows)`` once a day's rows are all read. Raises :class:`RowError` on the
        first bad row and :class:`ExtractorError` when ``extract()`` fails: the consumer
        (``replace_days``) then writes nothing of the batch.
        """
        cls = self.row_class
        getter = self._getter
        limit = self.chunk_rows
        aggregated = self.aggregated
        buf: list[tuple[Any, ...]] = []
        segments: list[_Segment] = []
        for window in windows:
            rows = self._open(window)
            append = buf.append
            seg_start = len(buf)
            offset = 0
            try:
                for row in rows:
                    if type(row) is not cls and not isinstance(row, cls):
                        raise RowError(
                            f"{self._where(window, offset + len(buf) - seg_start)}: "
                            f"extract() yielded {_type_name(row)}, expected an instance of "
                            f"{cls.__qualname__}: {short_repr(row)}"
                        )
                    append(getter(row))
                    if len(buf) >= limit:
                        segments.append(_Segment(window, seg_start, len(buf), offset))
                        offset += len(buf) - seg_start
                        yield self._flush(buf, segments)
                        buf = []
                        append = buf.append
                        segments = []
                        seg_start = 0
            except (RowError, ExtractorError):
                raise
            except Exception as exc:
                raise ExtractorError(
                    f"{self._where(window)}: extract() raised {type(exc).__name__}: {exc}"
                ) from exc
            count = offset + len(buf) - seg_start
            if aggregated and count != 1:
                raise RowError(
                    f"{self._where(window)}: a date-aggregated extractor must yield exactly one "
                    f"row per day, extract() yielded {count}"
                )
            if len(buf) > seg_start:
                segments.append(_Segment(window, seg_start, len(buf), offset))
            row_counts[window.day] = count
            if on_day is not None:
                on_day(window.day, count)
        if buf:
            yield self._flush(buf, segments)

    # -- one chunk ---------------------------------------------------------------------

    def _flush(self, buf: list[tuple[Any, ...]], segments: Sequence[_Segment]) -> pa.RecordBatch:
        import pyarrow as pa

        # One C-level pass per column (3x faster than zip(*buf), which builds huge tuples).
        columns: list[Sequence[Any]] = [
            list(map(operator.itemgetter(i), buf)) for i in range(len(self.field_names))
        ]
        arrays: list[pa.Array] = []
        for spec in self.specs:
            if spec.source is None:
                days = itertools.chain.from_iterable(
                    itertools.repeat(s.window.day, s.end - s.start) for s in segments
                )
                arrays.append(pa.array(list(days), type=pa.date32()))
                continue
            values = columns[spec.source]
            array = self._column(spec.column, values, segments)
            if spec.column.name == self.table.date_column:
                self._check_days(spec.column, values, segments)
            arrays.append(array)
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self._check_size(batch, segments)
        return batch

    def _slow(
        self, column: Column, values: Sequence[Any], segments: Sequence[_Segment]
    ) -> list[Any]:
        """Find and report the first bad value; if none, return the values normalised."""
        normalise = _NORMALISE[column.type]
        # NUMERIC values are always normalised: a Decimal may need rounding to 9 places.
        fast = FAST_TYPES[column.type] if column.type != "NUMERIC" else frozenset()
        out: list[Any] = []
        for index, value in enumerate(values):
            why = value_problem(column, value)
            if why is not None:
                raise self._value_error(segments, index, column, value, why)
            out.append(value if value is None or type(value) in fast else normalise(value))
        return out

    def _column(
        self, column: Column, values: Sequence[Any], segments: Sequence[_Segment]
    ) -> pa.Array:
        """One column as an Arrow array, after checks that cost little when all is well."""
        import pyarrow as pa
        import pyarrow.compute as pc

        allowed = FAST_TYPES[column.type]
        types = set(map(type, values))
        has_none = _NONE in types
        types.discard(_NONE)
        if (has_none and not column.nullable) or not types <= allowed:
            values = self._slow(column, values, segments)
        elif column.type == "TIMESTAMP":
            present = [v for v in values if v is not None] if has_none else values
            zones = set(map(_TZINFO, present))
            # Zones known to give every datetime an offset need no per-value utcoffset() call.
            if None in zones or (
                not all(type(z) in _FIXED_OR_IANA for z in zones)
                and None in map(datetime.datetime.utcoffset, present)
            ):
                values = self._slow(column, values, segments)
        try:
            try:
                array = pa.array(values, type=arrow_type(column.type))
            except pa.ArrowInvalid:
                if column.type != "NUMERIC":
                    raise
                # Arrow refuses to drop decimals: round (and range-check) in Python, retry.
                values = self._slow(column, values, segments)
                array = pa.array(values, type=arrow_type(column.type))
        except (pa.ArrowException, OverflowError, ValueError, TypeError, UnicodeError) as exc:
            self._slow(column, values, segments)
            raise RowError(
                f"{self.name}: field {column.name!r} ({column.type}) cannot be converted: {exc}"
            ) from exc
        bad: pa.Array | None = None
        if column.type == "FLOAT64":
            bad = pc.invert(pc.is_finite(array))
        elif column.type == "STRING":
            bad = pc.match_substring(array, "\x00")
        elif column.type == "TIMESTAMP":
            # An aware datetime near year 1 or 9999 can leave the range once in UTC; Arrow
            # keeps it (as microseconds), the warehouses would not: compare in microseconds.
            micros = pc.cast(array, pa.int64())
            bad = pc.or_(pc.less(micros, _TIMESTAMP_MIN_US), pc.greater(micros, _TIMESTAMP_MAX_US))
        if bad is not None and pc.any(bad).as_py():
            index = pc.index(bad, True).as_py()
            value = values[index]
            raise self._value_error(
                segments, index, column, value, value_problem(column, value) or "is invalid"
            )
        return array

    def _check_days(
        self, column: Column, values: Sequence[Any], segments: Sequence[_Segment]
    ) -> None:
        """Every row of an individual-rows table must fall inside its day's window."""
        for segment in segments:
            part = values[segment.start : segment.end]
            if not part:
                continue
            window = segment.window
            if column.type == "DATE":
                if min(part) == max(part) == window.day:
                    continue
                index = next(i for i, v in enumerate(part) if v != window.day)
                why = f"is not the day being exported ({window.day.isoformat()})"
            else:
                if window.start <= min(part) and max(part) < window.end:
                    continue
                index = next(i for i, v in enumerate(part) if not window.start <= v < window.end)
                why = (
                    f"is outside the day being exported [{window.start.isoformat()}, "
                    f"{window.end.isoformat()})"
                )
            raise self._value_error(segments, segment.start + index, column, part[index], why)

    def _check_size(self, batch: pa.RecordBatch, segments: Sequence[_Segment]) -> None:
        """Refuse rows over :attr:`max_row_bytes` (estimated: variable data + 8 bytes a field)."""
        import pyarrow.compute as pc

        sizes: pa.Array | None = None
        for column, array in zip(self.table.columns, batch.columns, strict=True):
            if column.type in ("STRING", "BYTES"):
                length = pc.fill_null(pc.binary_length(array), 0)
                sizes = length if sizes is None else pc.add(sizes, length)
        if sizes is None:
            return
        budget = self.max_row_bytes - 8 * len(self.table.columns)
        too_big = pc.greater(sizes, budget)
        if not pc.any(too_big).as_py():
            return
        index = pc.index(too_big, True).as_py()
        segment, row = self._locate(segments, index)
        size = sizes[index].as_py() + 8 * len(self.table.columns)
        raise RowError(
            f"{self._where(segment, row)}: the row is about {size:,} bytes, over the "
            f"{self.max_row_bytes:,}-byte budget per row (BigQuery limits row sizes); "
            "store large content elsewhere and export a reference"
        )


def _tuple_getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A fast ``row -> tuple of field values`` (``attrgetter`` in C; works with slots)."""
    if not names:
        return lambda row: ()
    if len(names) == 1:
        single = operator.attrgetter(names[0])
        return lambda row: (single(row),)
    return operator.attrgetter(*names)
