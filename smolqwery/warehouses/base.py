"""The one contract every warehouse backend implements, and the algorithms written once for all.

Migrations and the export runner talk only to :class:`Warehouse`; they never know which
warehouse rows end up in. Every backend keeps the same layout: the export tables, their views,
and a ledger table recording which days are exported (so finding pending days never scans an
export table).

A backend is a subclass, chosen by ``SMOLQWERY_WAREHOUSE`` (a short name or its dotted path, like
Django's ``ENGINE``). It brings:

- its connection and the vendor steps of the algorithms below (small methods, ``_stage``,
  ``_apply``, ``_fetch``, ``_execute``…), plus the table and view DDL;
- ``ops``: its SQL fragments (:class:`~smolqwery.warehouses.ops.BaseOperations`), with its
  capabilities and type mapper;
- its settings: :meth:`Warehouse.from_settings`, :meth:`Warehouse.validate_settings`, its
  ``manage.py check`` messages (:meth:`Warehouse.check_settings`), its label and location.

Comments citing ``D1``… are the 0.1.3 defects catalogued in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..days import DayWindow as DayWindow  # re-exported: its home before 1.0
from ..errors import SchemaMismatchError, WarehouseError
from ..identifiers import validate_column_name, validate_table_name
from ..schema import Column, TableSchema
from .ops import BaseOperations, Params

if TYPE_CHECKING:
    import pyarrow as pa
    from django.core.checks import CheckMessage

    from ..settings import SmolqwerySettings

logger = logging.getLogger("smolqwery.warehouses")

#: Former name of the vendor names; a backend's is :attr:`Warehouse.vendor`.
Dialect = Literal["bigquery", "duckdb"]

#: Name of the table recording exported days, in the export dataset.
LEDGER_TABLE = "smolqwery_ledger"
#: Why a batch is refused when some of its rows fall outside its days.
OUTSIDE_DAYS = "some rows fall outside the days of the batch; nothing was changed"
#: Tables whose names start with this are smolqwery's own (staging, ledger).
RESERVED_PREFIX = "smolqwery_"
#: Schema fingerprint of ledger entries adopted from a table filled by smolqwery 0.1.3.
LEGACY_FINGERPRINT = "legacy-0.1.3"
#: What to do when a table is missing or has another layout than its extractor's.
MIGRATE_HINT = "run manage.py smolqwery_make_migrations, then manage.py migrate"


class RowsCheck(tuple[str, str]):
    """A check that every staged row meets ``condition``: the ``(query, message)`` pair of
    :meth:`Warehouse._apply` (the query selects the rows that do not), with the condition kept
    so a backend that inserts the staged rows itself may fold it into that insert instead (it
    must then refuse the whole batch when the insert takes fewer rows than were staged).

    A row whose condition is NULL (neither true nor false) passes, as it does the query.
    """

    condition: str

    def __new__(cls, staged: str, condition: str, message: str) -> RowsCheck:
        check = super().__new__(cls, (f"SELECT 1 FROM {staged} WHERE NOT ({condition})", message))
        check.condition = condition
        return check


LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("table_name", "STRING", "REQUIRED", "Export table the day belongs to"),
    Column("day", "DATE", "REQUIRED", "Local day (Django TIME_ZONE) that was exported"),
    Column("rows", "INT64", "REQUIRED", "Rows written for that day"),
    Column("schema_fingerprint", "STRING", "REQUIRED", "Hash of the table layout written"),
    Column("run_id", "STRING", "REQUIRED", "Export run that wrote the day"),
    Column("exported_at", "TIMESTAMP", "REQUIRED", "When the day was committed"),
)


#: Longest table name BigQuery takes.
_MAX_TABLE_NAME = 1024


def ledger_table_name(table: str) -> str:
    """The ledger of one export table, for backends keeping one per table.

    ``smolqwery_ledger_<table>``; a name past BigQuery's 1,024 characters keeps the table's
    first 900 and a hash of the whole, so two tables never share a ledger. Export tables never
    start with ``smolqwery_`` (:data:`RESERVED_PREFIX`), so no ledger is ever an export table.
    """
    name = f"{LEDGER_TABLE}_{table}"
    if len(name) > _MAX_TABLE_NAME:
        digest = hashlib.sha256(table.encode()).hexdigest()[:32]
        name = f"{LEDGER_TABLE}_{table[:900]}_{digest}"
    return validate_table_name(name)


def ledger_schema(clustering: tuple[str, ...] = (), name: str = LEDGER_TABLE) -> TableSchema:
    """The ledger as a table (one row per exported table and day)."""
    from ..vocabulary import ExtractorType

    return TableSchema(
        name=name,
        columns=LEDGER_COLUMNS,
        kind=ExtractorType.date_aggregated,
        date_column="day",
        description="Days exported by smolqwery, one row per table and day",
        clustering=clustering,
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


class ReadSession:
    """Several reads sharing what the backend can share: ``with warehouse.reading(op) as s``.

    A page of charts runs a dozen small queries; opening a connection for each (a DuckDB file,
    with its catalog read) would cost more than the queries. This base shares the warehouse's
    own client (BigQuery keeps one); a backend whose connections are contexts (DuckDB)
    returns a subclass holding one connection for the session.
    """

    def __init__(self, warehouse: Warehouse, operation: str) -> None:
        self.warehouse = warehouse
        self.operation = operation
        #: Bytes the last :meth:`fetch` billed (backends billing by bytes read), else None.
        self.bytes_billed: int | None = None

    def fetch(
        self, sql: str, params: Params | None = None, *, missing_ok: bool = False
    ) -> list[dict[str, Any]] | None:
        """Rows of a query as dicts; None when ``missing_ok`` and a table it reads is absent."""
        wh = self.warehouse
        wh.last_bytes_billed = None
        try:
            return wh._fetch(self.operation, sql, params or wh.ops.params(), missing_ok=missing_ok)
        finally:
            billed = wh.last_bytes_billed
            self.bytes_billed = None if billed is None else int(billed)


class Warehouse(ABC):
    """Where export tables live: a backend. One instance per process; not thread-safe.

    **The replace contract** (:meth:`replace_days`), which every backend keeps:

    - *replaying a batch leaves one copy*: replacing days removes every row of those days
      before it adds the batch's, and rewrites their ledger entries; and
    - *a batch is visible whole or not at all*: readers see the table and the ledger before
      the batch or after it, never in between, and a failure at any step leaves both as they
      were (the days stay pending and are exported again).

    :meth:`replace_days` is the one algorithm — stage the rows, check their days, replace the
    days, write the ledger — and a backend supplies its steps: :meth:`_replacement` (the unit
    of work: a transaction, a script, or whatever makes :meth:`_apply` all or nothing),
    :meth:`_stage` (the rows somewhere readable that no reader sees) and :meth:`_apply` (the
    checks, then the changes, at once). A backend with transactions runs the changes in one
    (DuckDB), or in one script whose checks come first (BigQuery). A backend without
    transactions keeps the contract another way: by writing each day's partition whole, in a
    write that replaces that partition atomically, and the ledger last — a replayed batch then
    overwrites its days instead of adding to them, and a batch stopped halfway leaves days
    without ledger entries, which are pending and exported again, never counted twice. (Its
    readers may see some days of a batch before the others: the contract then holds per day,
    and the backend's docstring must say so.)
    """

    #: Short name of the backend ("duckdb"): what ``WarehouseRecord`` remembers and the
    #: status shows. Two classes with one vendor write the same place.
    vendor: ClassVar[str]
    #: The backend's name for people ("DuckDB").
    display_name: ClassVar[str]
    #: The backend's SQL fragments, capabilities and types.
    ops_class: ClassVar[type[BaseOperations]] = BaseOperations
    #: The setting naming :meth:`recorded_location`, and what it is in words.
    location_setting: ClassVar[str] = ""
    location_noun: ClassVar[str] = "location"
    #: Dataset (BigQuery) or schema (DuckDB) holding the export tables.
    dataset: str
    #: Set once the shared ledger is known gone (``ledger_per_table`` backends).
    _shared_ledger_gone: bool = False
    #: Bytes the last read query billed, for backends that bill by bytes read (BigQuery);
    #: None for the others.
    last_bytes_billed: int | None = None

    @functools.cached_property
    def ops(self) -> BaseOperations:
        return self.ops_class(self)

    @property
    def dialect(self) -> str:
        """Former name of :attr:`vendor`."""
        return self.vendor

    # -- the backend: settings, checks, labels ---------------------------------------------

    @classmethod
    @abstractmethod
    def from_settings(
        cls, config: SmolqwerySettings, *, deadline: float | None = None, read_only: bool = False
    ) -> Warehouse:
        """The warehouse the settings describe.

        ``deadline`` (seconds) bounds each request and each wait (readers that must answer
        fast pass ``SMOLQWERY_STATUS_DEADLINE``); ``read_only``: the caller only reads (a
        backend may then refuse to create anything).
        """

    @classmethod  # noqa: B027 - an optional hook
    def validate_settings(cls, config: SmolqwerySettings) -> None:
        """Raise :class:`~smolqwery.errors.ConfigurationError` for settings this backend cannot
        work with (called before a warehouse is opened, and by ``manage.py check``; cheap, no
        connection)."""

    @classmethod
    def check_settings(cls, config: SmolqwerySettings) -> list[CheckMessage]:
        """``manage.py check`` messages of this backend (missing package, credentials…).

        Never raises; messages never contain secrets.
        """
        return []

    @classmethod
    def table_problems(cls, table: TableSchema) -> list[str]:
        """Why this warehouse would refuse to create ``table`` (its limits), if it would."""
        return []

    @classmethod
    def location_of(cls, config: SmolqwerySettings) -> str:
        """Where the data lives besides the dataset (a file, a project): part of what
        ``migrate`` and ``WarehouseRecord`` compare to notice a moved warehouse."""
        return ""

    @classmethod
    def recorded_location(cls, config: SmolqwerySettings) -> str:
        """What ``WarehouseRecord`` remembers besides the dataset, to refuse exporting into
        another place than the ledger's (a file; empty when the settings say nothing more)."""
        return ""

    @classmethod
    def label(cls, config: SmolqwerySettings) -> str:
        """Where the exports go, in words, from settings only (no credential, no client)."""
        where = cls.location_of(config)
        return f"{cls.display_name} dataset {f'{where}.' if where else ''}{config.dataset}"

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
        :class:`~smolqwery.errors.SchemaMismatchError` listing the differences otherwise
        (:meth:`existing_layout_error`).
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
        0, 1 or NULL on its way to BOOL. :meth:`rebuild_needed` decides the first two cases.
        """

    @abstractmethod
    def list_tables(self) -> list[str]:
        """Names of the tables and views of the dataset, sorted."""

    @abstractmethod
    def drop_table(self, name: str) -> None:
        """Drop a table and its ledger entries. Only called when explicitly asked."""

    @abstractmethod
    def create_or_replace_view(self, name: str, sql: str, description: str = "") -> None:
        """Create or replace a view from SQL built with this warehouse's ``ops``."""

    @abstractmethod
    def drop_view(self, name: str) -> None:
        """Drop a view if it exists."""

    # -- layouts (written once) ----------------------------------------------------------

    def check_layout(self, table: TableSchema) -> None:
        """The table must exist with ``table``'s layout (before an export writes into it)."""
        columns = self.get_table_columns(table.name)
        if columns is None:
            raise SchemaMismatchError(
                f"table {table.name!r} does not exist in the warehouse: {MIGRATE_HINT}"
            )
        differences = layout_differences(table, columns)
        if differences:
            raise SchemaMismatchError(
                f"table {table.name!r} in the warehouse does not match the extractor's "
                f"dataclass ({'; '.join(differences)}): {MIGRATE_HINT}"
            )

    def existing_layout_error(
        self, table: TableSchema, columns: tuple[Column, ...]
    ) -> SchemaMismatchError | None:
        """Why an existing table cannot stand for ``table`` (``create_table``), None if it can."""
        differences = layout_differences(table, columns)
        if not differences:
            return None
        return SchemaMismatchError(
            f"table {self.qualified_name(table.name)} exists with another layout: "
            + "; ".join(differences)
        )

    def rebuild_needed(
        self, old: TableSchema, new: TableSchema, columns: tuple[Column, ...] | None
    ) -> bool:
        """Whether a table read back as ``columns`` is to be rebuilt from ``old`` to ``new``:
        False when it has ``new``'s layout already; SchemaMismatchError when it is missing or
        has neither layout."""
        if columns is None:
            raise SchemaMismatchError(f"table {self.qualified_name(new.name)} does not exist")
        if not layout_differences(new, columns):
            return False
        differences = layout_differences(old, columns)
        if differences:
            raise SchemaMismatchError(
                f"table {self.qualified_name(new.name)} has neither the layout to rebuild nor "
                "the rebuilt one: " + "; ".join(differences)
            )
        return True

    def rebuild_select(self, new: TableSchema, casts: dict[str, tuple[str, str]]) -> str:
        """The SELECT list of a rebuild: every column of ``new``, converted where it changes."""
        return ", ".join(
            self.ops.rebuild_cast_sql(c.name, *casts[c.name], NOT_A_BOOL)
            if c.name in casts
            else self.ops.column(c.name)
            for c in new.columns
        )

    # -- exports: the replace algorithm (written once) -----------------------------------

    def replace_days(self, batch: DayBatch) -> None:
        """Replace the batch's days in its table and record them in the ledger, keeping the
        replace contract (class docstring). Rows outside the batch's days are refused
        (:data:`OUTSIDE_DAYS`): they would survive the next replacement of their own day."""
        table = batch.table
        validate_table_identifiers(table)
        operation = f"replace days {batch.first_day}..{batch.last_day} of {table.name}"
        self._prepare(operation)
        ops, p = self.ops, self.ops.params()
        target = self.qualified_name(table.name)
        cols = ", ".join(ops.column(c) for c in table.column_names)
        where = ops.day_range_sql(
            p,
            ops.column(table.date_column),
            table.date_column_type,
            batch.first_day,
            batch.last_day,
            batch.start,
            batch.end,
        )
        try:
            with self._replacement(operation, batch) as unit:
                # 1. stage the rows where no reader sees them
                staged = self._stage(unit, batch)
                checks: list[tuple[str, str]] = []
                changes = [f"DELETE FROM {target} WHERE {where}"]
                if staged is not None:
                    # 2. check their days: rows outside would survive the next replacement
                    checks.append(RowsCheck(staged, where, OUTSIDE_DAYS))
                    changes.append(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged}")
                # 3. replace the days
                self._apply(unit, p, checks, changes)
                # 4. write the ledger: the rows are consumed by now, so row_counts is complete
                self._apply(unit, p, [], self._ledger_changes(p, batch))
        except WarehouseError as exc:
            if OUTSIDE_DAYS in str(exc) and str(exc) != f"{operation}: {OUTSIDE_DAYS}":
                raise WarehouseError(f"{operation}: {OUTSIDE_DAYS}") from exc
            raise
        logger.info(
            "replaced %d day(s) of %s (%d rows)",
            len(batch.windows),
            target,
            sum(batch.row_counts.get(d, 0) for d in batch.days),
        )

    def _ledger_changes(self, p: Params, batch: DayBatch) -> list[str]:
        """The statements rewriting the ledger entries of the batch's days."""
        q = self.ops.quote_name
        ledger = self.qualified_name(self.ledger_of(batch.table.name))
        table_name = p(batch.table.name, "STRING")
        counts = [int(batch.row_counts.get(d, 0)) for d in batch.days]
        entries = self.ops.day_counts_sql(p, batch.days, counts)
        now = datetime.datetime.now(datetime.timezone.utc)
        return [
            f"DELETE FROM {ledger} WHERE {q('table_name')} = {table_name} "
            f"AND {q('day')} BETWEEN {p(batch.first_day, 'DATE')} AND {p(batch.last_day, 'DATE')}",
            f"INSERT INTO {ledger} ({_ledger_names(self.ops)}) "
            f"SELECT {table_name}, e.{q('day')}, e.{q('rows')}, "
            f"{p(batch.table.fingerprint(), 'STRING')}, {p(batch.run_id, 'STRING')}, "
            f"{p(now, 'TIMESTAMP')} FROM ({entries}) AS e",
        ]

    def _prepare(self, operation: str) -> None:  # noqa: B027 - an optional hook
        """Called before ``operation`` builds its SQL: a backend that learns names on
        connecting (DuckDB's catalog) learns them here, failing under this operation's name."""

    @abstractmethod
    def _replacement(
        self, operation: str, batch: DayBatch
    ) -> contextlib.AbstractContextManager[Any]:
        """The unit of work of one replacement, handed to :meth:`_stage` and :meth:`_apply`.

        Leaving it normally makes everything applied durable at once (a commit, or running the
        collected script); leaving it by an exception undoes it all. Cleans up staging either
        way.
        """

    @abstractmethod
    def _stage(self, unit: Any, batch: DayBatch) -> str | None:
        """Make the batch's rows readable by SQL under a name no reader of the table sees, and
        return that name; None when the batch has no rows.

        A staging table filled now (BigQuery), or the record batches themselves, scanned one
        at a time while :meth:`_apply` runs the statements that read them (DuckDB: memory stays
        bounded by one chunk). ``batch.row_counts`` is complete once the chunks are consumed.
        """

    @abstractmethod
    def _apply(
        self,
        unit: Any,
        params: Params,
        checks: Sequence[tuple[str, str]],
        changes: Sequence[str],
    ) -> None:
        """Add ``checks``, then ``changes``, to the unit of work (run now inside a transaction,
        or collected into one script).

        A check is ``(query, message)``: a query returning a row fails the replacement with
        ``message`` and nothing is changed. Checks hold for every staged row. Changes run in
        order and become visible together, when the unit ends.
        """

    # -- reads and the 0.1.3 adoption (written once) -------------------------------------

    @contextlib.contextmanager
    def reading(self, operation: str) -> Iterator[ReadSession]:
        """A :class:`ReadSession` for several reads (the admin's Metrics page), closed at the
        end of the block. Backends override it to keep one connection for the block."""
        yield ReadSession(self, operation)

    @abstractmethod
    def _fetch(
        self, operation: str, sql: str, params: Params, *, missing_ok: bool = False
    ) -> list[dict[str, Any]] | None:
        """Rows of a query as dicts; None when ``missing_ok`` and a table it reads is absent."""

    @abstractmethod
    def _execute(self, operation: str, sql: str, params: Params) -> int:
        """Run one statement that changes data, on its own; return the rows it affected."""

    def ledger_of(self, table: str) -> str:
        """The ledger table holding ``table``'s days: its own (``ledger_per_table``), or the
        shared :data:`LEDGER_TABLE`."""
        if self.ops.capabilities.ledger_per_table:
            return ledger_table_name(table)
        return LEDGER_TABLE

    def exported_days(self, table: str) -> dict[datetime.date, LedgerEntry]:
        """The ledger's entries for a table, by day.

        With a ledger per table, entries the shared ledger still holds for the table (a
        warehouse written before 1.0, not migrated yet: :meth:`migrate_ledger`) count too, and
        the table's own ledger wins for a day both hold.
        """
        validate_table_name(table)
        operation = f"read ledger of {table}"
        self._prepare(operation)
        own = self.ledger_of(table)
        entries = self._ledger_entries(operation, own, table)
        if own != LEDGER_TABLE and self._shared_ledger_exists():
            # Not moved yet: the shared entries count, the table's own ledger wins.
            return {**self._ledger_entries(operation, LEDGER_TABLE, table), **entries}
        return entries

    def _ledger_entries(
        self, operation: str, ledger: str, table: str
    ) -> dict[datetime.date, LedgerEntry]:
        p = self.ops.params()
        sql = (
            f"SELECT {_ledger_names(self.ops)} FROM {self.qualified_name(ledger)} "
            f"WHERE {self.ops.quote_name('table_name')} = {p(table, 'STRING')} "
            f"ORDER BY {self.ops.quote_name('day')}"
        )
        rows = self._fetch(operation, sql, p, missing_ok=True) or []
        return {row["day"]: LedgerEntry(**row) for row in rows}

    def _shared_ledger_exists(self) -> bool:
        """Whether the shared ledger is still there (checked until it is found gone)."""
        if self._shared_ledger_gone:
            return False
        if self.get_table_columns(LEDGER_TABLE) is None:
            self._shared_ledger_gone = True
            return False
        return True

    def ensure_ledger(self, table: str) -> None:  # noqa: B027 - optional hook
        """Create ``table``'s own ledger if missing (backends with ``ledger_per_table``)."""

    def migrate_ledger(self, table: str) -> int:
        """Move ``table``'s entries from the shared ledger into its own, in place; the number
        of entries moved (docs/scaling.md).

        One transaction: the entries of days its own ledger lacks are inserted there, and all
        its entries are deleted from the shared ledger; a failure leaves both as they were, a
        retry moves nothing twice. Once the shared ledger is empty it is dropped. Moves of two
        tables both mutate the shared ledger: the caller runs them one at a time.
        """
        if not self.ops.capabilities.ledger_per_table:
            return 0
        self.ensure_ledger(table)
        if not self._shared_ledger_exists():
            return 0
        validate_table_name(table)
        operation = f"move the ledger entries of {table} into {ledger_table_name(table)}"
        self._prepare(operation)
        q, p = self.ops.quote_name, self.ops.params()
        shared = self.qualified_name(LEDGER_TABLE)
        own = self.qualified_name(ledger_table_name(table))
        name = p(table, "STRING")
        names = _ledger_names(self.ops)
        lacking = (
            f"FROM {shared} AS s WHERE s.{q('table_name')} = {name} AND NOT EXISTS "
            f"(SELECT 1 FROM {own} AS o WHERE o.{q('day')} = s.{q('day')})"
        )
        counted = self._fetch(operation, f"SELECT COUNT(*) AS n {lacking}", p) or [{"n": 0}]
        moved = int(counted[0]["n"])
        self._transaction(
            operation,
            [
                f"INSERT INTO {own} ({names}) SELECT {names} {lacking}",
                f"DELETE FROM {shared} WHERE {q('table_name')} = {name}",
            ],
            p,
        )
        if moved:
            logger.info("%s: %d entries moved", operation, moved)
        p = self.ops.params()
        left = self._fetch(operation, f"SELECT COUNT(*) AS n FROM {shared}", p) or [{"n": 0}]
        if not left[0]["n"]:
            self.drop_table(LEDGER_TABLE)
            self._shared_ledger_gone = True
            logger.info("the shared ledger %s is empty: dropped", shared)
        return moved

    def _transaction(self, operation: str, statements: Sequence[str], params: Params) -> None:
        """Run ``statements`` as one transaction. Backends with ``ledger_per_table`` implement
        it (the ledger's migration)."""
        raise NotImplementedError(f"{operation}: {type(self).__name__} has no transactions")

    def _local_days_sql(self, p: Params, table: TableSchema, tz: datetime.tzinfo) -> str:
        """``SELECT <local day> AS local_day FROM <table>``: each row's day in ``tz``."""
        day = self.ops.local_day_sql(
            p, self.ops.column(table.date_column), table.date_column_type, time_zone_name(tz)
        )
        return f"SELECT {day} AS local_day FROM {self.qualified_name(table.name)}"

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
        validate_table_identifiers(table)
        operation = f"find the days of {table.name}"
        self._prepare(operation)
        p = self.ops.params()
        sql = (
            f"SELECT DISTINCT local_day FROM ({self._local_days_sql(p, table, tz)}) AS days "
            f"WHERE local_day BETWEEN {p(first_day, 'DATE')} AND {p(last_day, 'DATE')} "
            "ORDER BY local_day"
        )
        rows = self._fetch(operation, sql, p) or []
        return [row["local_day"] for row in rows]

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
        This is what lets the runner scan such a table once instead of on every run.
        """
        validate_table_identifiers(table)
        operation = f"adopt days {first_day}..{last_day} of {table.name} written by 0.1.3"
        self._prepare(operation)
        p = self.ops.params()
        self.ensure_ledger(table.name)
        ledger = self.qualified_name(self.ledger_of(table.name))
        table_name = p(table.name, "STRING")
        now = datetime.datetime.now(datetime.timezone.utc)
        constants = (
            f"{table_name}, local_day, COUNT(*), {p(LEGACY_FINGERPRINT, 'STRING')}, "
            f"{p(run_id, 'STRING')}, {p(now, 'TIMESTAMP')}"
        )
        # Only days holding rows, and only while the ledger knows nothing of the table.
        sql = (
            f"INSERT INTO {ledger} ({_ledger_names(self.ops)}) SELECT {constants} "
            f"FROM ({self._local_days_sql(p, table, tz)}) AS days "
            f"WHERE local_day BETWEEN {p(first_day, 'DATE')} AND {p(last_day, 'DATE')} "
            f"AND NOT EXISTS (SELECT 1 FROM {ledger} "
            f"WHERE {self.ops.quote_name('table_name')} = {table_name}) "
            "GROUP BY local_day"
        )
        adopted = self._execute(operation, sql, p)
        logger.info("%s: %d day(s) recorded in the ledger", operation, adopted)
        return adopted

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ledger_names(ops: BaseOperations) -> str:
    return ", ".join(ops.quote_name(c.name) for c in LEDGER_COLUMNS)


def layout_differences(table: TableSchema, columns: tuple[Column, ...]) -> list[str]:
    """How a table read back as ``columns`` differs from ``table`` (empty: the same layout)."""
    found = TableSchema(
        name=table.name, columns=columns, kind=table.kind, date_column=table.date_column
    )
    return table.differences(found)


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
