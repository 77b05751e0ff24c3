"""What a warehouse backend says in SQL: its fragments, capabilities and types, as overridable
methods.

Modelled on Django's ``django/db/backends/base/operations.py`` (one ``ops`` object per backend,
each SQL fragment a small method a backend overrides) and on dlt's destination factories
(capabilities and the type mapper in one place). Everything smolqwery writes once against a
warehouse — the views (:mod:`smolqwery.sql_views`), the ledger, the day-range ``WHERE``, the
0.1.3 adoption queries — is built from these methods, so a new backend overrides what its SQL
says differently and nothing else.

Values never go into SQL text: a method that needs one takes a :class:`Params` and writes the
placeholder it returns.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..identifiers import validate_column_name

if TYPE_CHECKING:
    from ..schema import Column

#: The column types of a :class:`~smolqwery.schema.TableSchema` (BigQuery's standard SQL names).
COLUMN_TYPES: tuple[str, ...] = (
    "INT64",
    "FLOAT64",
    "BOOL",
    "STRING",
    "BYTES",
    "DATE",
    "TIMESTAMP",
    "NUMERIC",
)


@dataclasses.dataclass(frozen=True)
class TypeMapper:
    """Column types (BigQuery's names, used everywhere in smolqwery) ↔ a warehouse's own types.

    ``to_db`` is complete for every type of :data:`COLUMN_TYPES`; ``from_db`` maps what the
    warehouse reports when a table is read back (types it does not list are kept as read).
    """

    to_db: Mapping[str, str]
    from_db: Mapping[str, str]

    def to_db_type(self, column_type: str) -> str:
        try:
            return self.to_db[column_type]
        except KeyError:
            raise ValueError(f"unsupported column type {column_type!r}") from None

    def from_db_type(self, db_type: str) -> str:
        return self.from_db.get(db_type.upper(), self.from_db.get(db_type, db_type))


#: BigQuery's types are smolqwery's: the identity, plus the legacy names its API returns.
IDENTITY_TYPES = TypeMapper(
    to_db={t: t for t in COLUMN_TYPES},
    from_db={"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"},
)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a backend can do, read by the shared code instead of asking which backend it is
    (one object per backend, as dlt's destination capabilities). Add a field when shared code
    needs to know something; a backend never needs to be named."""

    #: Types of this warehouse.
    type_mapper: TypeMapper = IDENTITY_TYPES
    #: One writing process at a time (a DuckDB file): units running beside each other extract
    #: in parallel and take turns to write (smolqwery.units).
    single_writer: bool = False
    #: One ledger table per export table (``smolqwery_ledger_<table>``): a replacement then
    #: mutates only tables of its own, so replacements of different tables never conflict
    #: (BigQuery cancels concurrent transactions mutating one table; docs/scaling.md).
    ledger_per_table: bool = False


class Params:
    """The values of one statement (or one script), each behind a placeholder.

    ``params(value, "DATE")`` records the value with its column type and returns the placeholder
    to write in the SQL; the backend's :meth:`BaseOperations.bind` turns the values into what
    its driver takes. Names are unique per instance, so one instance can serve several
    statements of a script; a placeholder may be written several times.
    """

    def __init__(self, ops: BaseOperations) -> None:
        self._ops = ops
        self._names = itertools.count()
        #: ``name -> (type, value)``; types are column types, or ``ARRAY<type>``.
        self.values: dict[str, tuple[str, Any]] = {}

    def __call__(self, value: Any, type_: str) -> str:
        name = f"p{next(self._names)}"
        self.values[name] = (type_, value)
        return self._ops.placeholder(name, type_)

    def bind(self, sql: str | None = None) -> Any:
        """The values in the driver's form (only those ``sql`` uses, when given)."""
        return self._ops.bind(self.values, sql)


class BaseOperations:
    """SQL fragments of one backend. Subclasses override what their SQL says differently.

    Every method returns SQL text; identifiers it receives are already validated (or validated
    here, :meth:`column`), values come in through :class:`Params`.
    """

    #: Shared by every instance of the backend.
    capabilities = Capabilities()

    def __init__(self, warehouse: Any = None) -> None:
        #: The warehouse these operations belong to (None for SQL rendering without one).
        self.warehouse = warehouse

    # -- identifiers and values ----------------------------------------------------------

    def quote_name(self, name: str) -> str:
        """One identifier, quoted (standard SQL: double quotes)."""
        if '"' in name or not name:
            raise ValueError(f"identifier {name!r} cannot be quoted")
        return f'"{name}"'

    def column(self, name: str) -> str:
        """A column name, validated, then quoted."""
        return self.quote_name(validate_column_name(name))

    def params(self) -> Params:
        return Params(self)

    def placeholder(self, name: str, type_: str) -> str:
        """How a statement refers to parameter ``name`` of column type ``type_``."""
        raise NotImplementedError(f"{type(self).__name__} must say how parameters are written")

    def bind(self, values: Mapping[str, tuple[str, Any]], sql: str | None) -> Any:
        """The recorded ``values`` as the driver takes them (``sql``: the statement, if one)."""
        raise NotImplementedError(f"{type(self).__name__} must say how parameters are bound")

    # -- types ---------------------------------------------------------------------------

    def db_type(self, column_type: str) -> str:
        return self.capabilities.type_mapper.to_db_type(column_type)

    def column_type(self, db_type: str) -> str:
        return self.capabilities.type_mapper.from_db_type(db_type)

    def column_definition(self, column: Column, *, nullable: bool | None = None) -> str:
        """``name TYPE [NOT NULL]`` for CREATE TABLE (``nullable`` overrides the mode)."""
        null = column.nullable if nullable is None else nullable
        not_null = "" if null else " NOT NULL"
        return f"{self.column(column.name)} {self.db_type(column.type)}{not_null}"

    # -- dates ---------------------------------------------------------------------------

    def local_day_sql(self, params: Params, column: str, column_type: str, tz: str) -> str:
        """The local day (in IANA zone ``tz``) of a DATE or TIMESTAMP expression, as a DATE."""
        if column_type == "DATE":
            return column
        return self.timestamp_local_date_sql(column, params(tz, "STRING"))

    def timestamp_local_date_sql(self, column: str, tz: str) -> str:
        """The DATE of a TIMESTAMP expression on the wall clock of zone expression ``tz``."""
        raise NotImplementedError(f"{type(self).__name__} must say how local days are computed")

    def day_range_sql(
        self,
        params: Params,
        column: str,
        column_type: str,
        first_day: datetime.date,
        last_day: datetime.date,
        start: datetime.datetime,
        end: datetime.datetime,
    ) -> str:
        """Rows of the local days ``first_day..last_day``: by date for a DATE column, by the
        instants ``[start, end)`` for a TIMESTAMP one (23 or 25 hours a day across DST)."""
        if column_type == "DATE":
            return f"{column} BETWEEN {params(first_day, 'DATE')} AND {params(last_day, 'DATE')}"
        return f"{column} >= {params(start, 'TIMESTAMP')} AND {column} < {params(end, 'TIMESTAMP')}"

    def day_gap_sql(self, day: str, previous: str) -> str:
        """Days from DATE ``previous`` to DATE ``day``."""
        return f"({day} - {previous})"

    def period_start_sql(self, period: str, day: str) -> str:
        """The first day (a DATE) of the ISO week (Monday) or month of DATE ``day``."""
        raise NotImplementedError(f"{type(self).__name__} must say how dates are truncated")

    # -- aggregates and casts ------------------------------------------------------------

    def sum_sql(self, column_type: str, expr: str) -> str:
        """SUM of a column of ``column_type``, keeping that type."""
        return f"SUM({expr})"

    def cast_sql(self, expr: str, column_type: str) -> str:
        return f"CAST({expr} AS {self.db_type(column_type)})"

    def raise_sql(self, message: str) -> str:
        """An expression that fails the statement with ``message`` (a constant text)."""
        raise NotImplementedError(f"{type(self).__name__} must say how a statement fails")

    def rebuild_cast_sql(self, name: str, old: str, new: str, not_a_bool: str) -> str:
        """One column converted by a rebuild (see ``REBUILD_CASTS``): INT64 → BOOL takes 0, 1
        and NULL only and fails with ``not_a_bool`` otherwise; the others are plain CASTs
        (DATE → TIMESTAMP is midnight UTC, TIMESTAMP → DATE the UTC day)."""
        col = self.column(name)
        if (old, new) == ("INT64", "BOOL"):
            return (
                f"CASE WHEN {col} IS NULL OR {col} IN (0, 1) THEN {self.cast_sql(col, 'BOOL')} "
                f"ELSE {self.raise_sql(not_a_bool)} END"
            )
        return self.cast_sql(col, new)

    # -- the ledger ----------------------------------------------------------------------

    def day_counts_sql(
        self, params: Params, days: Sequence[datetime.date], counts: Sequence[int]
    ) -> str:
        """A query of two columns, ``day`` and ``rows``, one row per day (a batch's counts).

        Portable default: one ``SELECT`` per day; backends with arrays pass two parameters.
        """
        day, rows = self.quote_name("day"), self.quote_name("rows")
        return " UNION ALL ".join(
            f"SELECT {params(d, 'DATE')} AS {day}, {params(int(n), 'INT64')} AS {rows}"
            for d, n in zip(days, counts, strict=True)
        )


def plain_message(text: str) -> str:
    """A string literal of a constant message of smolqwery's own (never user data)."""
    if "'" in text or "\\" in text or "\n" in text:
        raise ValueError(f"not a plain message: {text!r}")
    return f"'{text}'"
