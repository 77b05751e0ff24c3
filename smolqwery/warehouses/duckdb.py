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
import datetime
import logging
import random
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SchemaMismatchError, WarehouseError
from ..identifiers import quote_duckdb, validate_column_name, validate_dataset_name
from ..identifiers import validate_table_name as _validate_table_name
from ..schema import NUMERIC_PRECISION, NUMERIC_SCALE, Column, TableSchema, arrow_schema
from ..vocabulary import ExtractorType
from .base import (
    LEDGER_COLUMNS,
    LEDGER_TABLE,
    LEGACY_FINGERPRINT,
    NOT_A_BOOL,
    OUTSIDE_DAYS,
    DayBatch,
    Dialect,
    LedgerEntry,
    Warehouse,
    conform_chunks,
    rebuild_casts,
    rebuild_name,
    relaxed_schema,
    time_zone_name,
    validate_table_identifiers,
)

if TYPE_CHECKING:
    import duckdb

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
_LEDGER_SCHEMA = TableSchema(
    name=LEDGER_TABLE,
    columns=LEDGER_COLUMNS,
    kind=ExtractorType.date_aggregated,
    date_column="day",
    description="Days exported by smolqwery, one row per table and day",
)


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


def _is_lock_conflict(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


class DuckDBWarehouse(Warehouse):
    """Export tables in a schema (named like the BigQuery dataset) of a local DuckDB file."""

    dialect: Dialect = "duckdb"

    def __init__(
        self,
        path: Path | str,
        dataset: str,
        *,
        busy_timeout: float = 600.0,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.dataset = validate_dataset_name(dataset)
        #: How long to wait for another process holding the file before giving up.
        self.busy_timeout = busy_timeout
        #: Readers (status, admin) never write, nor create a missing file.
        self.read_only = read_only
        #: The file's catalog name as DuckDB attached it (read on the first connection).
        self._catalog: str | None = None

    @classmethod
    def from_settings(
        cls, config: SmolqwerySettings, *, read_only: bool = False
    ) -> DuckDBWarehouse:
        return cls(
            config.require_duckdb_path(),
            config.dataset,
            busy_timeout=config.retry_deadline,
            read_only=read_only,
        )

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
        deadline = time.monotonic() + self.busy_timeout
        delay, attempts = 0.05, 0
        while True:
            try:
                if not self.read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise WarehouseError(
                        f"{operation}: cannot open DuckDB file {self.path}: {exc}"
                    ) from exc
                if time.monotonic() + delay > deadline:
                    raise WarehouseError(
                        f"{operation}: DuckDB file {self.path} is held by another process "
                        f"(DuckDB allows one writer at a time); gave up after "
                        f"{self.busy_timeout:g} s. {exc}"
                    ) from exc
                logger.log(
                    logging.INFO if attempts == 0 else logging.DEBUG,
                    "%s: %s is held by another process; waiting up to %g s",
                    operation,
                    self.path,
                    self.busy_timeout,
                )
                time.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter only
                delay, attempts = min(delay * 2, 2.0), attempts + 1
        try:
            # Aware datetimes come back in UTC, whatever the machine's time zone.
            con.execute("SET TimeZone = 'UTC'")
            row = con.execute("SELECT current_database()").fetchone()
            self._catalog = str(row[0]) if row else None
            yield con
        finally:
            try:
                con.close()  # checkpoints the write-ahead log into the file: may fail too
            except duckdb.Error as exc:
                raise WarehouseError(self._failure(operation, exc, closing=True)) from exc

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
            con.execute(f"CREATE TABLE {self._q(table.name)} ({_column_defs(table)})")
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
            found = TableSchema(
                name=table.name, columns=existing, kind=table.kind, date_column=table.date_column
            )
            differences = table.differences(found)
            if differences:
                raise SchemaMismatchError(
                    f"table {self._q(table.name)} exists with another layout: "
                    + "; ".join(differences)
                )
            if self._descriptions(con, table.name) != _descriptions_of(table):
                self._set_comments(con, table)
            return False

    def rebuild_table(self, old: TableSchema, new: TableSchema) -> bool:
        casts = rebuild_casts(old, new)
        work = rebuild_name(new.name)
        with self._op(f"rebuild table {new.name}") as con:
            existing = self._columns(con, new.name)
            if existing is None:
                raise SchemaMismatchError(f"table {self._q(new.name)} does not exist")
            if _same_layout(existing, new):
                return False
            if not _same_layout(existing, old):
                raise SchemaMismatchError(
                    f"table {self._q(new.name)} has neither the layout to rebuild nor the "
                    "rebuilt one: " + "; ".join(old.differences(_found(old, existing)))
                )
            select = ", ".join(
                _duckdb_cast(c.name, *casts[c.name]) if c.name in casts else quote_duckdb(c.name)
                for c in new.columns
            )
            # DDL is transactional in DuckDB: the swap is all or nothing.
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DROP TABLE IF EXISTS {self._q(work)}")
                con.execute(f"CREATE TABLE {self._q(work)} ({_column_defs(new)})")
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
                type=BIGQUERY_TYPES.get(data_type, data_type),
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

    def replace_days(self, batch: DayBatch) -> None:
        import pyarrow as pa

        table = batch.table
        validate_table_identifiers(table)
        operation = f"replace days {batch.first_day}..{batch.last_day} of {table.name}"
        schema = relaxed_schema(arrow_schema(table))
        cols = ", ".join(quote_duckdb(c) for c in table.column_names)
        date_col = quote_duckdb(table.date_column)
        if table.date_column_type == "DATE":
            where, params = f"{date_col} BETWEEN ? AND ?", [batch.first_day, batch.last_day]
        else:
            where, params = f"{date_col} >= ? AND {date_col} < ?", [batch.start, batch.end]

        with self._op(operation) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {self._q(table.name)} WHERE {where}", params)
                # One INSERT per chunk, pulled here: extract() must run in the calling thread
                # (Django's connections are per thread), and DuckDB before 2.0 pulls an Arrow
                # stream from a worker thread even with `SET threads = 1` (issue 14, found on
                # the lowest supported versions). Memory stays bounded by one chunk.
                inserted = 0
                for chunk in conform_chunks(batch.chunks, schema):
                    with _registered(con, "smolqwery_incoming", pa.Table.from_batches([chunk])):
                        row = con.execute(
                            f"INSERT INTO {self._q(table.name)} ({cols}) "
                            f"SELECT {cols} FROM smolqwery_incoming"
                        ).fetchone()
                    inserted += int(row[0]) if row else 0
                within = con.execute(
                    f"SELECT count(*) FROM {self._q(table.name)} WHERE {where}", params
                ).fetchone()
                if inserted and (within is None or within[0] != inserted):
                    # Such rows would survive the next replacement of their day: duplicates.
                    raise WarehouseError(f"{operation}: {OUTSIDE_DAYS}")
                self._record_days(con, batch)
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
        logger.info(
            "replaced %d day(s) of %s (%d rows)",
            len(batch.windows),
            self._q(table.name),
            sum(batch.row_counts.get(d, 0) for d in batch.days),
        )

    def _record_days(self, con: duckdb.DuckDBPyConnection, batch: DayBatch) -> None:
        import pyarrow as pa

        ledger = self._q(LEDGER_TABLE)
        con.execute(
            f"DELETE FROM {ledger} WHERE table_name = ? AND day BETWEEN ? AND ?",
            [batch.table.name, batch.first_day, batch.last_day],
        )
        now = datetime.datetime.now(datetime.timezone.utc)
        fingerprint = batch.table.fingerprint()
        entries = pa.Table.from_pylist(
            [
                {
                    "table_name": batch.table.name,
                    "day": day,
                    "rows": int(batch.row_counts.get(day, 0)),
                    "schema_fingerprint": fingerprint,
                    "run_id": batch.run_id,
                    "exported_at": now,
                }
                for day in batch.days
            ],
            schema=arrow_schema(_LEDGER_SCHEMA),
        )
        names = ", ".join(quote_duckdb(c.name) for c in LEDGER_COLUMNS)
        with _registered(con, "smolqwery_ledger_rows", entries):
            con.execute(f"INSERT INTO {ledger} ({names}) SELECT {names} FROM smolqwery_ledger_rows")

    def exported_days(self, table: str) -> dict[datetime.date, LedgerEntry]:
        _validate_table_name(table)
        names = ", ".join(quote_duckdb(c.name) for c in LEDGER_COLUMNS)
        with self._op(f"read ledger of {table}") as con:
            if self._columns(con, LEDGER_TABLE) is None:
                return {}
            rows = con.execute(
                f"SELECT {names} FROM {self._q(LEDGER_TABLE)} WHERE table_name = ? ORDER BY day",
                [table],
            ).fetchall()
        return {row[1]: LedgerEntry(*row) for row in rows}

    def _local_day_sql(self, table: TableSchema, tz: datetime.tzinfo) -> tuple[str, list[Any]]:
        """SQL of a row's local day (of ``tz``), and its parameters."""
        date_col = quote_duckdb(table.date_column)
        if table.date_column_type == "DATE":
            return date_col, []
        # TIMESTAMPTZ → wall time in the zone → its date: the local day, DST included.
        return f"CAST(timezone(?, {date_col}) AS DATE)", [time_zone_name(tz)]

    def legacy_days(
        self,
        table: TableSchema,
        tz: datetime.tzinfo,
        first_day: datetime.date,
        last_day: datetime.date,
    ) -> list[datetime.date]:
        validate_table_identifiers(table)
        local_day, params = self._local_day_sql(table, tz)
        sql = (
            f"SELECT DISTINCT local_day FROM (SELECT {local_day} AS local_day "
            f"FROM {self._q(table.name)}) WHERE local_day BETWEEN ? AND ? ORDER BY local_day"
        )
        with self._op(f"find the days of {table.name}") as con:
            rows = con.execute(sql, [*params, first_day, last_day]).fetchall()
        return [row[0] for row in rows]

    def adopt_legacy_days(
        self,
        table: TableSchema,
        first_day: datetime.date,
        last_day: datetime.date,
        tz: datetime.tzinfo,
        run_id: str,
    ) -> int:
        validate_table_identifiers(table)
        local_day, day_params = self._local_day_sql(table, tz)
        ledger = self._q(LEDGER_TABLE)
        names = ", ".join(quote_duckdb(c.name) for c in LEDGER_COLUMNS)
        now = datetime.datetime.now(datetime.timezone.utc)
        params: list[Any] = [table.name, LEGACY_FINGERPRINT, run_id, now]
        params += [*day_params, first_day, last_day, table.name]
        # Only days holding rows, and only while the ledger knows nothing of the table.
        sql = (
            f"INSERT INTO {ledger} ({names}) "
            "SELECT ?, local_day, count(*), ?, ?, ? "
            f"FROM (SELECT {local_day} AS local_day FROM {self._q(table.name)}) "
            "WHERE local_day BETWEEN ? AND ? "
            f"AND NOT EXISTS (SELECT 1 FROM {ledger} WHERE table_name = ?) "
            "GROUP BY local_day"
        )
        operation = f"adopt days {first_day}..{last_day} of {table.name} written by 0.1.3"
        with self._op(operation) as con:
            row = con.execute(sql, params).fetchone()
        adopted = int(row[0]) if row else 0
        logger.info("%s: %d day(s) recorded in the ledger", operation, adopted)
        return adopted

    def fetch_rows(self, name: str, order_by: Iterable[str] = ()) -> list[dict[str, Any]]:
        _validate_table_name(name)
        order = [quote_duckdb(validate_column_name(c)) for c in order_by]
        sql = f"SELECT * FROM {self._q(name)}"
        if order:
            sql += " ORDER BY " + ", ".join(order)
        with self._op(f"read rows of {name}") as con:
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


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


def _column_defs(table: TableSchema) -> str:
    return ", ".join(
        f"{quote_duckdb(c.name)} {DUCKDB_TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    )


def _found(table: TableSchema, columns: tuple[Column, ...]) -> TableSchema:
    return TableSchema(
        name=table.name, columns=columns, kind=table.kind, date_column=table.date_column
    )


def _same_layout(columns: tuple[Column, ...], table: TableSchema) -> bool:
    return not table.differences(_found(table, columns))


def _describe_casts(casts: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"{name} {a} -> {b}" for name, (a, b) in casts.items())


def _duckdb_cast(name: str, old: str, new: str) -> str:
    """One column converted for a rebuild; the session's TimeZone is UTC (see ``_connect``),
    so DATE → TIMESTAMPTZ is midnight UTC and TIMESTAMPTZ → DATE the UTC day."""
    col = quote_duckdb(name)
    if (old, new) == ("INT64", "BOOL"):
        return (
            f"CASE WHEN {col} IS NULL OR {col} IN (0, 1) THEN CAST({col} AS BOOLEAN) "
            f"ELSE error({string_literal(NOT_A_BOOL)}) END"
        )
    return f"CAST({col} AS {DUCKDB_TYPES[new]})"


def _descriptions_of(table: TableSchema) -> tuple[str, tuple[str, ...]]:
    return table.description, tuple(c.description for c in table.columns)
