"""The embedded warehouse: one DuckDB file with the same tables, views and ledger as BigQuery.

DuckDB lets one process at a time open a file for writing. So connections are opened lazily,
for one operation, and closed right after: a web process reading the status page and a cron
export take turns instead of failing. A process that finds the file locked retries with backoff
until its deadline, then raises a :class:`~smolqwery.errors.WarehouseError` saying so.

Values travel as query parameters or as Arrow data scanned by name; the one exception is
``COMMENT ON``, whose grammar only takes a string literal (see :func:`string_literal`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import importlib.util
import itertools
import logging
import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, WarehouseError
from ..identifiers import quote_duckdb, validate_dataset_name
from ..identifiers import validate_table_name as _validate_table_name
from ..schema import NUMERIC_PRECISION, NUMERIC_SCALE, Column, TableSchema, arrow_schema
from .base import (
    LEDGER_TABLE,
    NOT_A_BOOL,
    RESERVED_PREFIX,
    DayBatch,
    ReadSession,
    RowsCheck,
    Warehouse,
    conform_chunks,
    ledger_schema,
    rebuild_casts,
    rebuild_name,
    relaxed_schema,
    validate_table_identifiers,
)
from .ops import BaseOperations, Capabilities, Params, TypeMapper

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from django.core.checks import CheckMessage

    from ..settings import SmolqwerySettings

logger = logging.getLogger("smolqwery.warehouses.duckdb")

#: BigQuery type → DuckDB type.
DUCKDB_TYPES: dict[str, str] = {
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
    "NUMERIC": f"DECIMAL({NUMERIC_PRECISION},{NUMERIC_SCALE})",
}
#: DuckDB type as reported by ``duckdb_columns()`` → BigQuery type.
BIGQUERY_TYPES: dict[str, str] = {
    "BIGINT": "INT64",
    "DOUBLE": "FLOAT64",
    "BOOLEAN": "BOOL",
    "VARCHAR": "STRING",
    "BLOB": "BYTES",
    "DATE": "DATE",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    f"DECIMAL({NUMERIC_PRECISION},{NUMERIC_SCALE})": "NUMERIC",
}
_LEDGER_SCHEMA = ledger_schema()
#: The name under which a replacement's record batches are scanned, one at a time.
STAGED_ROWS = f"{RESERVED_PREFIX}incoming"


def string_literal(text: str) -> str:
    """A SQL string literal for ``COMMENT ON``, which accepts no parameter.

    DuckDB's standard strings know one escape only (``''``; backslashes are plain characters),
    so doubling quotes makes any text inert. Only descriptions written in code go through here.
    """
    if "\x00" in text:
        raise ValueError("descriptions cannot contain NUL characters")
    return "'" + text.replace("'", "''") + "'"


def quote_catalog(name: str) -> str:
    """Double-quote a catalog name, which comes from the file name and may hold any character."""
    if not name or "\x00" in name:
        raise ValueError(f"catalog name {name!r} cannot be quoted")
    return '"' + name.replace('"', '""') + '"'


_PARAMETER = re.compile(r"\$(p\d+)")


class DuckDBOperations(BaseOperations):
    """DuckDB's SQL: named ``$p`` parameters cast to their type, ``timezone()``, ``date_trunc``,
    ``error()``, lists for arrays."""

    capabilities = Capabilities(
        type_mapper=TypeMapper(to_db=DUCKDB_TYPES, from_db=BIGQUERY_TYPES), single_writer=True
    )

    def quote_name(self, name: str) -> str:
        return quote_duckdb(name)

    def placeholder(self, name: str, type_: str) -> str:
        if type_.startswith("ARRAY<") and type_.endswith(">"):
            return f"CAST(${name} AS {self.db_type(type_[6:-1])}[])"
        return f"CAST(${name} AS {self.db_type(type_)})"

    def bind(self, values: Mapping[str, tuple[str, Any]], sql: str | None) -> dict[str, Any]:
        # DuckDB refuses a value the statement does not use: one Params may serve several.
        used = None if sql is None else set(_PARAMETER.findall(sql))
        return {n: v for n, (_, v) in values.items() if used is None or n in used}

    def timestamp_local_date_sql(self, column: str, tz: str) -> str:
        # TIMESTAMPTZ → wall time in the zone → its date: the local day, DST included.
        return f"CAST(timezone({tz}, {column}) AS DATE)"

    def day_gap_sql(self, day: str, previous: str) -> str:
        return f"date_diff('day', {previous}, {day})"

    def period_start_sql(self, period: str, day: str) -> str:
        if period not in ("week", "month"):
            raise ValueError(f"unknown period {period!r}")
        # DuckDB's 'week' is the ISO week (Monday); the cast keeps the column a DATE.
        return f"CAST(date_trunc('{period}', {day}) AS DATE)"

    def sum_sql(self, column_type: str, expr: str) -> str:
        if column_type == "INT64":
            return f"CAST(SUM({expr}) AS BIGINT)"  # DuckDB widens SUM(BIGINT) to HUGEINT
        return f"SUM({expr})"

    def raise_sql(self, message: str) -> str:
        return f"error({string_literal(message)})"

    def day_counts_sql(
        self, params: Params, days: Sequence[datetime.date], counts: Sequence[int]
    ) -> str:
        days_param = params(list(days), "ARRAY<DATE>")
        counts_param = params(list(counts), "ARRAY<INT64>")
        return (
            f"SELECT unnest({days_param}) AS {self.quote_name('day')}, "
            f"unnest({counts_param}) AS {self.quote_name('rows')}"
        )


def _is_lock_conflict(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


#: Seconds of waiting for a DuckDB file held by another process before saying so.
BUSY_NOTICE_AFTER = 2.0


def _holder(exc: BaseException) -> str:
    """`` (PID 123: /usr/bin/python3)`` from DuckDB's lock error, to find the holder."""
    found = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    return f" (PID {found[2]}: {found[1]})" if found else ""


class DuckDBWarehouse(Warehouse):
    """Export tables in a schema (named like the BigQuery dataset) of a local DuckDB file."""

    vendor = "duckdb"
    display_name = "DuckDB"
    ops_class = DuckDBOperations
    #: Where the file is set, and what it is called in messages (``WarehouseRecord``).
    location_setting = "SMOLQWERY_DUCKDB_PATH"
    location_noun = "DuckDB file"

    def __init__(
        self,
        path: Path | str,
        dataset: str,
        *,
        busy_timeout: float = 600.0,
        read_only: bool = False,
        memory_limit: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.dataset = validate_dataset_name(dataset)
        #: How long to wait for another process holding the file before giving up.
        self.busy_timeout = busy_timeout
        #: Readers (status, admin) never write, nor create a missing file.
        self.read_only = read_only
        #: DuckDB's buffer pool limit (``SMOLQWERY_DUCKDB_MEMORY_LIMIT``); None: DuckDB's own
        #: default, 80% of the machine's RAM.
        self.memory_limit = memory_limit
        #: The file's catalog name as DuckDB attached it (read on the first connection).
        self._catalog: str | None = None

    @classmethod
    def from_settings(
        cls, config: SmolqwerySettings, *, deadline: float | None = None, read_only: bool = False
    ) -> DuckDBWarehouse:
        """The file of ``SMOLQWERY_DUCKDB_PATH``; ``deadline`` bounds each wait for a busy file
        (default ``SMOLQWERY_RETRY_DEADLINE``)."""
        if importlib.util.find_spec("duckdb") is None:  # said before any table is read
            raise ConfigurationError(
                "the DuckDB warehouse needs the duckdb package (SMOLQWERY_WAREHOUSE is 'duckdb' "
                "or unset): pip install 'smolqwery[duckdb]', or set "
                "SMOLQWERY_WAREHOUSE = 'bigquery'"
            )
        return cls(
            config.require_duckdb_path(),
            config.dataset,
            busy_timeout=config.retry_deadline if deadline is None else deadline,
            read_only=read_only,
            memory_limit=config.duckdb_memory_limit,
        )

    @classmethod
    def check_settings(cls, config: SmolqwerySettings) -> list[CheckMessage]:
        """E012: extractors to export and no duckdb package to export them with."""
        from django.core.checks import Error

        if config.extractors and importlib.util.find_spec("duckdb") is None:
            return [
                Error(
                    "The DuckDB warehouse is chosen (SMOLQWERY_WAREHOUSE is 'duckdb' or unset) "
                    "but the duckdb package is not installed.",
                    hint="pip install 'smolqwery[duckdb]', or set SMOLQWERY_WAREHOUSE = "
                    "'bigquery'.",
                    id="smolqwery.E012",
                )
            ]
        return []

    @classmethod
    def location_of(cls, config: SmolqwerySettings) -> str:
        """The file (the dataset is a schema inside it)."""
        return "" if config.duckdb_path is None else str(config.duckdb_path)

    @classmethod
    def recorded_location(cls, config: SmolqwerySettings) -> str:
        return cls.location_of(config)

    @classmethod
    def label(cls, config: SmolqwerySettings) -> str:
        return f"{cls.display_name} file {config.duckdb_path}, schema {config.dataset}"

    def __repr__(self) -> str:
        return f"DuckDBWarehouse(path={str(self.path)!r}, dataset={self.dataset!r})"

    # -- connections ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, operation: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation; waits while another process holds the file."""
        try:
            import duckdb
        except ImportError:
            raise WarehouseError(
                "the DuckDB warehouse needs the duckdb package: pip install 'smolqwery[duckdb]'"
            ) from None
        if self.read_only and not self.path.is_file():
            raise WarehouseError(
                f"{operation}: DuckDB file {self.path} does not exist: check "
                "SMOLQWERY_DUCKDB_PATH, or run manage.py migrate to create it"
            )
        started = time.monotonic()
        deadline = started + self.busy_timeout
        delay, announced = 0.05, False
        while True:
            try:
                if not self.read_only:
                    self._make_directory(operation)
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise WarehouseError(
                        f"{operation}: cannot open DuckDB file {self.path}: {exc}"
                    ) from exc
                if time.monotonic() + delay > deadline:
                    holder = _holder(exc)
                    raise WarehouseError(
                        f"{operation}: DuckDB file {self.path} is held by another process"
                        f"{holder} (DuckDB allows one writer at a time); gave up after "
                        f"{self.busy_timeout:g} s" + ("" if holder else f". {exc}")
                    ) from exc
                # A wait past BUSY_NOTICE_AFTER is announced once, as a warning that reaches a
                # terminal (``migrate`` included): a holder outside smolqwery (a notebook, a BI
                # tool) is never waited for in silence. Units taking turns stay quiet.
                long_wait = time.monotonic() - started >= BUSY_NOTICE_AFTER
                logger.log(
                    logging.WARNING if long_wait and not announced else logging.DEBUG,
                    "%s: %s is held by another process%s; waiting up to %g s",
                    operation,
                    self.path,
                    _holder(exc),
                    self.busy_timeout,
                )
                announced = announced or long_wait
                time.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter only
                delay = min(delay * 2, 2.0)
        try:
            # Aware datetimes come back in UTC, whatever the machine's time zone.
            con.execute("SET TimeZone = 'UTC'")
            if self.memory_limit is not None:
                # Set, not passed to connect(): a connection with another configuration to the
                # same file, open in this process, would make connect() fail. Applies to the
                # file's database instance, shared by this process's connections to it.
                con.execute("SET memory_limit = ?", [self.memory_limit])
            row = con.execute("SELECT current_database()").fetchone()
            self._catalog = str(row[0]) if row else None
            yield con
        finally:
            try:
                con.close()  # checkpoints the write-ahead log into the file: may fail too
            except duckdb.Error as exc:
                raise WarehouseError(self._failure(operation, exc, closing=True)) from exc

    def _make_directory(self, operation: str) -> None:
        """The file's directory, made if missing: a path that cannot be made is a setting to
        fix, said as such (never an OSError's traceback out of ``migrate``)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(
                f"{operation}: cannot create the directory {self.path.parent} of DuckDB file "
                f"{self.path} ({exc.strerror or exc}): set SMOLQWERY_DUCKDB_PATH to a file in "
                "a writable directory"
            ) from exc

    def _failure(self, operation: str, exc: BaseException, *, closing: bool = False) -> str:
        """The message of a DuckDB error, with what to do when the disk is full."""
        if _NO_SPACE in str(exc):
            return (
                f"{operation}: {_NO_SPACE} writing DuckDB file {self.path}: free space on its "
                "disk (or move the file: SMOLQWERY_DUCKDB_PATH) and run the export again"
                + ("" if closing else "; nothing of this change was written")
            )
        return f"{operation}: {exc}"

    @contextlib.contextmanager
    def _op(self, operation: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose DuckDB errors become WarehouseErrors naming the operation."""
        import duckdb

        with self._connect(operation) as con:
            try:
                yield con
            except duckdb.Error as exc:
                raise WarehouseError(self._failure(operation, exc)) from exc

    @property
    def catalog(self) -> str:
        """The catalog DuckDB names after the file (``smolqwery.duckdb`` → ``smolqwery``)."""
        if self._catalog is None:
            with self._op("read the catalog name of the DuckDB file"):
                pass
        assert self._catalog is not None
        return self._catalog

    def _schema(self) -> str:
        """``"catalog"."schema"``: a schema named like the file is never ambiguous (issue 14)."""
        return f"{quote_catalog(self.catalog)}.{quote_duckdb(self.dataset)}"

    def _q(self, name: str) -> str:
        return f"{self._schema()}.{quote_duckdb(name)}"

    def qualified_name(self, name: str) -> str:
        return self._q(_validate_table_name(name))

    def view_reference(self, name: str) -> str:
        """The bare table name: DuckDB (1.2 and later) binds a view's names in the view's own
        catalog and schema, so the view keeps working when the file is renamed or attached
        under another name (and a three-part name inside a view is reported ambiguous when the
        catalog and schema share a name)."""
        return quote_duckdb(_validate_table_name(name))

    # -- dataset -------------------------------------------------------------------------

    def ensure_dataset(self) -> None:
        with self._op(f"ensure schema {self.dataset}") as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema()}")
            if self._columns(con, LEDGER_TABLE) is None:
                self._create(con, _LEDGER_SCHEMA)

    # -- tables and views ----------------------------------------------------------------

    def _create(self, con: duckdb.DuckDBPyConnection, table: TableSchema) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE TABLE {self._q(table.name)} ({self._column_defs(table)})")
            self._set_comments(con, table)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise

    def _set_comments(self, con: duckdb.DuckDBPyConnection, table: TableSchema) -> None:
        name = self._q(table.name)
        con.execute(f"COMMENT ON TABLE {name} IS {string_literal(table.description)}")
        for col in table.columns:
            con.execute(
                f"COMMENT ON COLUMN {name}.{quote_duckdb(col.name)} "
                f"IS {string_literal(col.description)}"
            )

    def _column_defs(self, table: TableSchema, *, relaxed: bool = False) -> str:
        nullable = True if relaxed else None
        return ", ".join(self.ops.column_definition(c, nullable=nullable) for c in table.columns)

    def create_table(self, table: TableSchema) -> bool:
        validate_table_identifiers(table)
        for col in table.columns:
            if col.type not in DUCKDB_TYPES:
                raise ValueError(f"table {table.name!r}: unsupported type {col.type!r}")
        with self._op(f"create table {table.name}") as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema()}")
            existing = self._columns(con, table.name)
            if existing is None:
                self._create(con, table)
                logger.info("created table %s", self._q(table.name))
                return True
            mismatch = self.existing_layout_error(table, existing)
            if mismatch is not None:
                raise mismatch
            if self._descriptions(con, table.name) != _descriptions_of(table):
                self._set_comments(con, table)
            return False

    def rebuild_table(self, old: TableSchema, new: TableSchema) -> bool:
        casts = rebuild_casts(old, new)
        work = rebuild_name(new.name)
        with self._op(f"rebuild table {new.name}") as con:
            if not self.rebuild_needed(old, new, self._columns(con, new.name)):
                return False
            select = self.rebuild_select(new, casts)
            # DDL is transactional in DuckDB: the swap is all or nothing.
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DROP TABLE IF EXISTS {self._q(work)}")
                con.execute(f"CREATE TABLE {self._q(work)} ({self._column_defs(new)})")
                con.execute(f"INSERT INTO {self._q(work)} SELECT {select} FROM {self._q(new.name)}")
                con.execute(f"DROP TABLE {self._q(new.name)}")
                con.execute(f"ALTER TABLE {self._q(work)} RENAME TO {quote_duckdb(new.name)}")
                self._set_comments(con, new)
                con.execute("COMMIT")
            except BaseException as exc:
                con.execute("ROLLBACK")
                if NOT_A_BOOL in str(exc):
                    raise WarehouseError(f"rebuild table {new.name}: {NOT_A_BOOL}") from exc
                raise
        logger.info("rebuilt table %s (%s)", self._q(new.name), _describe_casts(casts))
        return True

    def _columns(self, con: duckdb.DuckDBPyConnection, name: str) -> tuple[Column, ...] | None:
        rows = con.execute(
            "SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? "
            "ORDER BY column_index",
            [self.dataset, name],
        ).fetchall()
        if not rows:
            return None
        return tuple(
            Column(
                name=col,
                type=self.ops.column_type(data_type),
                mode="NULLABLE" if nullable else "REQUIRED",
                description=comment or "",
            )
            for col, data_type, nullable, comment in rows
        )

    def _descriptions(
        self, con: duckdb.DuckDBPyConnection, name: str
    ) -> tuple[str, tuple[str, ...]]:
        row = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [self.dataset, name],
        ).fetchone()
        cols = self._columns(con, name) or ()
        return ((row[0] or "") if row else "", tuple(c.description for c in cols))

    def table_description(self, name: str) -> str | None:
        """The description of a table or view, None if absent (status pages and tests)."""
        _validate_table_name(name)
        with self._op(f"read description of {name}") as con:
            row = con.execute(
                "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ? UNION ALL "
                "SELECT comment FROM duckdb_views() WHERE database_name = current_database() "
                "AND schema_name = ? AND view_name = ?",
                [self.dataset, name, self.dataset, name],
            ).fetchone()
        return None if row is None else (row[0] or "")

    def get_table_columns(self, name: str) -> tuple[Column, ...] | None:
        _validate_table_name(name)
        with self._op(f"read schema of {name}") as con:
            return self._columns(con, name)

    def list_tables(self) -> list[str]:
        with self._op(f"list tables of {self.dataset}") as con:
            rows = con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_catalog = current_database() AND table_schema = ? "
                "ORDER BY table_name",
                [self.dataset],
            ).fetchall()
        return [r[0] for r in rows]

    def drop_table(self, name: str) -> None:
        _validate_table_name(name)
        with self._op(f"drop table {name}") as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DROP TABLE IF EXISTS {self._q(name)}")
                if self._columns(con, LEDGER_TABLE) is not None:
                    con.execute(f"DELETE FROM {self._q(LEDGER_TABLE)} WHERE table_name = ?", [name])
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
        logger.info("dropped table %s", self._q(name))

    def create_or_replace_view(self, name: str, sql: str, description: str = "") -> None:
        _validate_table_name(name)
        with self._op(f"create view {name}") as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema()}")
            con.execute(f"CREATE OR REPLACE VIEW {self._q(name)} AS {sql}")
            con.execute(f"COMMENT ON VIEW {self._q(name)} IS {string_literal(description)}")

    def drop_view(self, name: str) -> None:
        _validate_table_name(name)
        with self._op(f"drop view {name}") as con:
            con.execute(f"DROP VIEW IF EXISTS {self._q(name)}")

    # -- exports -------------------------------------------------------------------------

    # -- the vendor steps of the shared algorithms --------------------------------------

    def _prepare(self, operation: str) -> None:
        """Learn the catalog's name (SQL names objects by it) under ``operation``'s name."""
        if self._catalog is None:
            with self._op(operation):
                pass

    @contextlib.contextmanager
    def _replacement(self, operation: str, batch: DayBatch) -> Iterator[_Replacement]:
        """One connection, one transaction: a failure anywhere undoes it all."""
        with self._op(operation) as con, _one_thread(con):
            con.execute("BEGIN TRANSACTION")
            try:
                yield _Replacement(operation, con)
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise

    def _stage(self, unit: _Replacement, batch: DayBatch) -> str | None:
        """The record batches themselves, scanned a group at a time by name (no row-by-row
        ``INSERT``) while :meth:`_apply` runs the statements that read them.

        The chunks are pulled in the calling thread: extract() must run there (Django's
        connections are per thread), and DuckDB before 2.0 pulls an Arrow stream from a worker
        thread even with ``SET threads = 1`` (issue 14, found on the lowest supported versions).
        Memory stays bounded by one insert's rows. Every column is nullable: a NULL in a
        REQUIRED column is refused by the table itself, inside the transaction.
        """
        chunks = conform_chunks(batch.chunks, relaxed_schema(arrow_schema(batch.table)))
        first = next(chunks, None)
        if first is None:
            return None
        unit.chunks = itertools.chain([first], chunks)
        return STAGED_ROWS

    def _apply(
        self,
        unit: _Replacement,
        params: Params,
        checks: Sequence[tuple[str, str]],
        changes: Sequence[str],
    ) -> None:
        """Run the statements now; those reading the staged rows run once per group of chunks
        (:data:`_INSERT_ROWS` rows), each group checked first (a failed check rolls the whole
        transaction back).

        A check of every staged row's condition (:class:`RowsCheck`: the rows' days) is folded
        into the first plain ``INSERT … SELECT … FROM`` the staged rows: it inserts only the
        rows meeting the condition, and a chunk of which it took fewer rows than it has fails
        the replacement with the check's message — one scan of the chunk instead of two
        (issue 16: the separate ``SELECT EXISTS`` cost ~1 s at 10M rows).
        """
        con = unit.con
        reads_staged = [sql for sql in changes if STAGED_ROWS in sql]
        plain_insert = next(
            (
                sql
                for sql in reads_staged
                if sql.startswith("INSERT INTO ") and sql.endswith(f" FROM {STAGED_ROWS}")
            ),
            None,
        )
        folded = [c for c in checks if isinstance(c, RowsCheck)] if plain_insert else []
        guarded = plain_insert
        if plain_insert is not None and folded:
            # NOT (c) is true only when c is false: a NULL condition passes, as in the check.
            guarded = (
                plain_insert
                + " WHERE "
                + " AND ".join(f"({c.condition}) IS NOT FALSE" for c in folded)
            )

        def check(on_staged: bool, only: Sequence[tuple[str, str]] | None = None) -> None:
            for query, message in checks if only is None else only:
                if (STAGED_ROWS in query) != on_staged:
                    continue
                if only is None and any(query is c[0] for c in folded):
                    continue  # checked by the insert
                row = con.execute(f"SELECT EXISTS ({query})", params.bind(query)).fetchone()
                if row and row[0]:
                    raise WarehouseError(f"{unit.operation}: {message}")

        check(on_staged=False)
        for sql in changes:
            if sql not in reads_staged:
                con.execute(sql, params.bind(sql))
                continue
            if sql is reads_staged[0]:  # the chunks can be read once: every reader per chunk
                # One registration for all the chunks: DuckDB keeps what is registered inside
                # a transaction alive until it ends, so registering each chunk kept the whole
                # batch in memory (issue 16: 10M rows, 892 MB); the holder lets go of each
                # chunk once it is read.
                # DuckDB before 1.5 reads a registered stream object once: one per chunk there.
                rescans = _rescans_streams()
                staged: _CurrentChunk | None = None
                cache = _WrittenBlocks(con, self.memory_limit)
                with contextlib.ExitStack() as registration:
                    for table in _insert_groups(unit.chunks):
                        if staged is not None:
                            staged.table = table
                        else:
                            if rescans:  # DuckDB reads the schema when registering
                                staged = _CurrentChunk(table)
                            registration.close()
                            registration.enter_context(
                                _registered(con, STAGED_ROWS, staged or table)
                            )
                        check(on_staged=True)
                        for reader in reads_staged:
                            if reader is not plain_insert or not folded:
                                con.execute(reader, params.bind(reader))
                                continue
                            assert guarded is not None
                            row = con.execute(guarded, params.bind(guarded)).fetchone()
                            if not row or int(row[0]) != table.num_rows:
                                # Some row failed a folded check: which one says the message.
                                check(on_staged=True, only=folded)
                                raise WarehouseError(f"{unit.operation}: {folded[0][1]}")
                        cache.after_insert(table.num_columns, table.num_rows)
                        if staged is not None:  # let go of the rows before the next group
                            staged.table = table.schema.empty_table()
                        del table
                unit.chunks = iter(())

    def _fetch(
        self, operation: str, sql: str, params: Params, *, missing_ok: bool = False
    ) -> list[dict[str, Any]] | None:
        with self._op(operation) as con:
            return _fetch_on(con, sql, params, missing_ok=missing_ok)

    @contextlib.contextmanager
    def reading(self, operation: str) -> Iterator[ReadSession]:
        """One connection for the whole block (opening one costs more than a small query)."""
        with self._op(operation) as con:
            yield _DuckDBReadSession(self, operation, con)

    def _execute(self, operation: str, sql: str, params: Params) -> int:
        with self._op(operation) as con:
            row = con.execute(sql, params.bind(sql)).fetchone()
        return int(row[0]) if row else 0


def _fetch_on(
    con: duckdb.DuckDBPyConnection, sql: str, params: Params, *, missing_ok: bool
) -> list[dict[str, Any]] | None:
    import duckdb

    try:
        cursor = con.execute(sql, params.bind(sql))
    except duckdb.CatalogException:
        if missing_ok:
            return None
        raise
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class _DuckDBReadSession(ReadSession):
    """Reads on the connection the session was opened with."""

    def __init__(
        self, warehouse: DuckDBWarehouse, operation: str, con: duckdb.DuckDBPyConnection
    ) -> None:
        super().__init__(warehouse, operation)
        self._con = con

    def fetch(
        self, sql: str, params: Params | None = None, *, missing_ok: bool = False
    ) -> list[dict[str, Any]] | None:
        return _fetch_on(
            self._con, sql, params or self.warehouse.ops.params(), missing_ok=missing_ok
        )


#: How the OS says ENOSPC, in DuckDB's I/O errors.
_NO_SPACE = "No space left on device"


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, keeping the error that caused it: a COMMIT that failed (a full disk) has
    already ended the transaction, and "cannot rollback" would hide why."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[None]:
    """Arrow data readable by name in SQL for the block (a scan, no row-by-row INSERT)."""
    import duckdb

    con.register(name, data)
    try:
        yield
    finally:
        # Fails inside an aborted transaction; the connection is closed right after anyway.
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


@functools.cache
def _rescans_streams() -> bool:
    """Whether DuckDB asks a registered Arrow PyCapsule object for a new stream at each scan
    (1.5 and later; before, it reads the one stream made when registering)."""
    import duckdb

    return tuple(int(p) for p in re.findall(r"\d+", duckdb.__version__)[:2]) >= (1, 5)


class _CurrentChunk:
    """Registered once under :data:`STAGED_ROWS`; every scan reads the chunk it holds now.

    DuckDB asks an object with the Arrow PyCapsule interface for a new stream at each scan,
    so the statements of one chunk read that chunk, and nothing older stays referenced.
    """

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)


#: Rows per INSERT of staged rows: two of DuckDB's row groups (122,880 rows each). DuckDB
#: appends whole row groups where chunks of 20,000 rows went into partial ones: 10M rows
#: inserted in 2.7 s of CPU instead of 4.4 on one thread (issue 16, bench/RESULTS.md). The
#: converters' chunks are gathered into groups this size (~15 MB).
_INSERT_ROWS = 2 * 122_880
#: Rows inserted between two looks at DuckDB's cache of written blocks: a look costs ~0.1 ms.
_TRIM_EVERY_ROWS = 200_000
#: Of the blocks a write transaction wrote, at least this much stays cached between trims.
_WRITTEN_CACHE_BYTES = 8 * 1024 * 1024
#: DuckDB's block size: a block per column being appended may stay pinned between statements.
_DUCKDB_BLOCK_BYTES = 256 * 1024


@contextlib.contextmanager
def _one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB on one thread while a replacement runs, then as before.

    Inserts of :data:`_INSERT_ROWS` rows split over DuckDB's threads leave partial row groups
    that the commit's checkpoint reads back: peak RSS 243 → 646 MB at 10M rows, for no gain
    on two cores already busy reading (bench/RESULTS.md, issue 16). ``threads`` is a setting
    of the database instance, not of a transaction: set through a connection of its own, so
    that it is set back even when the replacement's transaction failed.
    """
    setter = con.cursor()
    try:
        row = setter.execute("SELECT current_setting('threads')").fetchone()
        threads = int(row[0]) if row else 1
        if threads > 1:
            setter.execute("SET threads = 1")
        try:
            yield
        finally:
            if threads > 1:
                setter.execute("SET threads = ?", [threads])
    finally:
        setter.close()


def _insert_groups(chunks: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """The chunks gathered into tables of :data:`_INSERT_ROWS` rows or more, the last one
    smaller; each in one piece (DuckDB inserts a table of many small batches 2x slower)."""
    import pyarrow as pa

    group: list[pa.RecordBatch] = []
    rows = 0
    for chunk in chunks:
        group.append(chunk)
        rows += chunk.num_rows
        if rows >= _INSERT_ROWS:
            yield pa.Table.from_batches(group).combine_chunks()
            group, rows = [], 0
    if group:
        yield pa.Table.from_batches(group).combine_chunks()


class _WrittenBlocks:
    """Keeps the blocks a batch's inserts wrote to the file from piling up in DuckDB's cache.

    DuckDB writes a large insert's row groups to the file as it goes (optimistic writes) and
    keeps their blocks in its buffer pool, unpinned, until its ``memory_limit`` (80% of RAM by
    default) forces them out: the export's memory grew with the batch, ~7 bytes a row (issue 16:
    +70 MB from 1M to 10M rows, ``BASE_TABLE`` in ``duckdb_memory()``). Every 200,000 rows, when
    more than a bound is cached, the limit is lowered to what the transaction holds besides that
    cache plus the bound — DuckDB evicts to meet it; those blocks are already in the file, so
    nothing is written — then set back at once. The lowered limit is always reachable by
    evicting that cache alone (a failed ``SET memory_limit`` would abort the transaction), and
    the inserts never run under it.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, memory_limit: str | None) -> None:
        self.con = con
        self.memory_limit = memory_limit
        self.rows = 0
        #: How many times the cache was trimmed (tests, the benchmark).
        self.trims = 0

    def after_insert(self, columns: int, rows: int) -> None:
        self.rows += rows
        if self.rows < _TRIM_EVERY_ROWS:
            return
        self.rows = 0
        row = self.con.execute(
            "SELECT coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'BASE_TABLE'), 0), "
            "coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()"
        ).fetchone()
        cached, used = (int(row[0]), int(row[1])) if row else (0, 0)
        # Blocks of columns still being appended may be pinned: they stay within the bound.
        bound = max(_WRITTEN_CACHE_BYTES, 2 * columns * _DUCKDB_BLOCK_BYTES)
        if cached <= bound:
            return
        target = used - cached + bound
        self.con.execute("SET memory_limit = ?", [f"{target // 1024}KiB"])
        if self.memory_limit is None:
            self.con.execute("RESET memory_limit")
        else:
            self.con.execute("SET memory_limit = ?", [self.memory_limit])
        self.trims += 1


@dataclasses.dataclass
class _Replacement:
    """One replacement's connection (in its transaction) and the chunks still to insert."""

    operation: str
    con: duckdb.DuckDBPyConnection
    chunks: Iterator[pa.RecordBatch] = dataclasses.field(default_factory=lambda: iter(()))


def _describe_casts(casts: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"{name} {a} -> {b}" for name, (a, b) in casts.items())


def _descriptions_of(table: TableSchema) -> tuple[str, tuple[str, ...]]:
    return table.description, tuple(c.description for c in table.columns)
