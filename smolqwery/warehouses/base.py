"""The one contract every warehouse implements.

Migrations and the export runner talk only to :class:`Warehouse`; they never know whether rows
end up in BigQuery or in the embedded DuckDB file. Both implementations keep the same layout: the
export tables, their ``<table>_delta`` views, and a ledger table recording which days are
exported (so finding pending days never scans an export table).
"""

from __future__ import annotations

import dataclasses
import datetime
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from ..days import DayWindow as DayWindow  # re-exported: its home before 1.0
from ..identifiers import validate_column_name, validate_table_name
from ..schema import Column, TableSchema

if TYPE_CHECKING:
    import pyarrow as pa

Dialect = Literal["bigquery", "duckdb"]

#: Name of the table recording exported days, in the export dataset.
LEDGER_TABLE = "smolqwery_ledger"
#: Why a batch is refused when some of its rows fall outside its days.
OUTSIDE_DAYS = "some rows fall outside the days of the batch; nothing was changed"
#: Tables whose names start with this are smolqwery's own (staging, ledger).
RESERVED_PREFIX = "smolqwery_"
#: Schema fingerprint of ledger entries adopted from a table filled by smolqwery 0.1.3.
LEGACY_FINGERPRINT = "legacy-0.1.3"

LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("table_name", "STRING", "REQUIRED", "Export table the day belongs to"),
    Column("day", "DATE", "REQUIRED", "Local day (Django TIME_ZONE) that was exported"),
    Column("rows", "INT64", "REQUIRED", "Rows written for that day"),
    Column("schema_fingerprint", "STRING", "REQUIRED", "Hash of the table layout written"),
    Column("run_id", "STRING", "REQUIRED", "Export run that wrote the day"),
    Column("exported_at", "TIMESTAMP", "REQUIRED", "When the day was committed"),
)


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One exported day of one table."""

    table_name: str
    day: datetime.date
    rows: int
    schema_fingerprint: str
    run_id: str
    exported_at: datetime.datetime


@dataclasses.dataclass
class DayBatch:
    """Contiguous days of one table to replace, with their rows as Arrow record batches.

    ``chunks`` is consumed exactly once by :meth:`Warehouse.replace_days`; ``row_counts`` is
    complete once it is exhausted (the producer counts rows per day as it validates them), and
    the warehouse records those counts in the ledger in the same transaction as the rows.
    Days without rows are recorded with 0 so that they are not extracted again.
    """

    table: TableSchema
    windows: tuple[DayWindow, ...]
    chunks: Iterable[pa.RecordBatch]
    run_id: str
    row_counts: dict[datetime.date, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("a batch needs at least one day")
        days = [w.day for w in self.windows]
        expected = [days[0] + datetime.timedelta(days=i) for i in range(len(days))]
        if days != expected:
            raise ValueError(f"batch days must be contiguous and ascending: {days}")

    @property
    def days(self) -> list[datetime.date]:
        return [w.day for w in self.windows]

    @property
    def first_day(self) -> datetime.date:
        return self.windows[0].day

    @property
    def last_day(self) -> datetime.date:
        return self.windows[-1].day

    @property
    def start(self) -> datetime.datetime:
        """Start of the first day (inclusive), aware."""
        return self.windows[0].start

    @property
    def end(self) -> datetime.datetime:
        """End of the last day (exclusive), aware."""
        return self.windows[-1].end


class Warehouse(ABC):
    """Where export tables live. One instance per process; not thread-safe."""

    #: SQL dialect, for the SQL of views (:mod:`smolqwery.sql_views`).
    dialect: Dialect
    #: Dataset (BigQuery) or schema (DuckDB) holding the export tables.
    dataset: str

    # -- dataset -------------------------------------------------------------------------

    @abstractmethod
    def ensure_dataset(self) -> None:
        """Create the dataset if needed and reconcile location, labels and ACL groups.

        Access entries for ``SMOLQWERY_ACL_GROUPS`` missing from an existing dataset are added;
        entries smolqwery did not add are left alone. Also creates the ledger table.
        """

    # -- tables and views ----------------------------------------------------------------

    @abstractmethod
    def qualified_name(self, name: str) -> str:
        """The quoted, fully qualified SQL reference of a table or view of the dataset."""

    def view_reference(self, name: str) -> str:
        """How a view's SQL names a table of the same dataset (fully qualified by default)."""
        return self.qualified_name(name)

    @abstractmethod
    def create_table(self, table: TableSchema) -> bool:
        """Create a table partitioned by day on its date column.

        Returns True when created, False when an identical table exists already; raises
        :class:`~smolqwery.errors.SchemaMismatchError` listing the differences otherwise.
        """

    @abstractmethod
    def get_table_columns(self, name: str) -> tuple[Column, ...] | None:
        """Columns of an existing table as read back from the warehouse, None if absent.

        ``differentiate`` is not stored in the warehouse and is always False here.
        """

    @abstractmethod
    def rebuild_table(self, old: TableSchema, new: TableSchema) -> bool:
        """Turn table ``old`` into ``new`` (same columns, types changed as :func:`rebuild_casts`
        allows), every row kept and converted by a CAST, swapped in atomically.

        The new table is partitioned by day like :meth:`create_table`'s. Returns True when
        rebuilt, False when the table has ``new``'s layout already (a re-run); raises
        :class:`~smolqwery.errors.SchemaMismatchError` when it has neither layout, and
        :class:`~smolqwery.errors.WarehouseError` (changing nothing) when an INT64 value is not
        0, 1 or NULL on its way to BOOL.
        """

    @abstractmethod
    def list_tables(self) -> list[str]:
        """Names of the tables and views of the dataset, sorted."""

    @abstractmethod
    def drop_table(self, name: str) -> None:
        """Drop a table and its ledger entries. Only called when explicitly asked."""

    @abstractmethod
    def create_or_replace_view(self, name: str, sql: str, description: str = "") -> None:
        """Create or replace a view from SQL in this warehouse's dialect."""

    @abstractmethod
    def drop_view(self, name: str) -> None:
        """Drop a view if it exists."""

    # -- exports -------------------------------------------------------------------------

    @abstractmethod
    def replace_days(self, batch: DayBatch) -> None:
        """Atomically replace the batch's days in its table and record them in the ledger.

        All or nothing: on any failure, the table and the ledger are left as they were.
        Replacing days twice leaves exactly one copy of their rows.
        """

    @abstractmethod
    def exported_days(self, table: str) -> dict[datetime.date, LedgerEntry]:
        """The ledger's entries for a table, by day."""

    @abstractmethod
    def legacy_days(
        self,
        table: TableSchema,
        tz: datetime.tzinfo,
        first_day: datetime.date,
        last_day: datetime.date,
    ) -> list[datetime.date]:
        """The local days (of ``tz``) from ``first_day`` to ``last_day`` holding rows, ascending.

        A scan of the table: only asked for a table with rows and no ledger (filled by 0.1.3).
        """

    @abstractmethod
    def adopt_legacy_days(
        self,
        table: TableSchema,
        first_day: datetime.date,
        last_day: datetime.date,
        tz: datetime.tzinfo,
        run_id: str,
    ) -> int:
        """Record in the ledger the days of a table filled by 0.1.3 (no ledger) that hold rows.

        One entry per local day (of ``tz``) from ``first_day`` to ``last_day`` holding rows,
        with their number and :data:`LEGACY_FINGERPRINT`; days without rows are left to the
        export, which can only add what 0.1.3 missed. Counted in SQL, written in one statement
        that does nothing once the ledger has any entry for the table: adoption happens at
        most once per table, and a retry is harmless. Returns the number of entries written.
        This is what lets the runner scan such a table once instead of on every run (D20).
        """

    @abstractmethod
    def fetch_rows(self, name: str, order_by: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Every row of a table or view as dicts (demo, status and tests; small tables only)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def time_zone_name(tz: datetime.tzinfo) -> str:
    """The IANA name of a time zone, for the warehouse to compute local days in SQL.

    Django's ``TIME_ZONE`` gives a :class:`zoneinfo.ZoneInfo` (``key``); pytz zones have
    ``zone``. A zone without a name cannot be handed to SQL: ValueError.
    """
    if tz is datetime.timezone.utc:
        return "UTC"
    for attribute in ("key", "zone"):
        name = getattr(tz, attribute, None)
        if isinstance(name, str) and name:
            return name
    raise ValueError(f"time zone {tz!r} has no IANA name (set TIME_ZONE to a name like 'UTC')")


def iter_nonempty(chunks: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Skip empty record batches (a day without rows still produces a ledger entry)."""
    for chunk in chunks:
        if chunk.num_rows:
            yield chunk


def relaxed_schema(schema: pa.Schema) -> pa.Schema:
    """The same Arrow schema with every field nullable.

    Staged rows are carried with nullable fields so that a NULL in a REQUIRED column is refused
    by the target table inside the replace transaction (which then rolls back), not by Arrow.
    """
    import pyarrow as pa

    return pa.schema([f.with_nullable(True) for f in schema])


def conform_chunks(chunks: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Non-empty record batches with exactly ``schema`` (columns selected and cast if needed)."""
    import pyarrow as pa

    for chunk in iter_nonempty(chunks):
        if chunk.schema.names == schema.names and chunk.schema.types == schema.types:
            yield pa.RecordBatch.from_arrays(chunk.columns, schema=schema)
        else:
            table = pa.Table.from_batches([chunk]).select(schema.names).cast(schema)
            yield from table.combine_chunks().to_batches()


#: Type changes :meth:`Warehouse.rebuild_table` makes, both ways: 0.1.3 stored bools as INT64
#: (D1) and datetimes as DATE (D2). DATE → TIMESTAMP gives midnight UTC and TIMESTAMP → DATE
#: the UTC day, so DATE → TIMESTAMP → DATE gives back every value; INT64 → BOOL takes 0 and 1
#: only (anything else stops the rebuild), so INT64 → BOOL → INT64 does too.
REBUILD_CASTS: frozenset[tuple[str, str]] = frozenset(
    {("INT64", "BOOL"), ("BOOL", "INT64"), ("DATE", "TIMESTAMP"), ("TIMESTAMP", "DATE")}
)
#: Message of the SQL error raised by an INT64 value that is not a bool.
NOT_A_BOOL = "smolqwery: an INT64 value other than 0 and 1 cannot become a BOOL; nothing changed"


def rebuild_casts(old: TableSchema, new: TableSchema) -> dict[str, tuple[str, str]]:
    """``{column: (old type, new type)}`` of the columns a rebuild converts (ValueError if
    the two tables differ in anything else than types of :data:`REBUILD_CASTS`)."""
    validate_table_identifiers(old)
    validate_table_identifiers(new)
    if old.name != new.name or [(c.name, c.mode) for c in old.columns] != [
        (c.name, c.mode) for c in new.columns
    ]:
        raise ValueError(f"table {old.name!r}: a rebuild changes column types only")
    casts = {
        a.name: (a.type, b.type)
        for a, b in zip(old.columns, new.columns, strict=True)
        if a.type != b.type
    }
    wrong = [f"{n} {a} -> {b}" for n, (a, b) in casts.items() if (a, b) not in REBUILD_CASTS]
    if wrong:
        raise ValueError(f"table {old.name!r}: cannot rebuild {', '.join(wrong)}")
    return casts


def rebuild_name(name: str) -> str:
    """The working table of a rebuild of ``name`` (reserved prefix: never an export table)."""
    return validate_table_name(f"{RESERVED_PREFIX}rebuild_{name}")


def validate_table_identifiers(table: TableSchema) -> None:
    """Check every identifier of a table before any SQL is built from it (raises ValueError).

    A :class:`TableSchema` may come from a hand-edited migration file, so its names are checked
    again here, where they are about to be quoted into SQL.
    """
    validate_table_name(table.name)
    names = {validate_column_name(c.name) for c in table.columns}
    for name in (table.date_column, *table.clustering):
        if name not in names:
            raise ValueError(f"table {table.name!r} has no column {name!r}")
