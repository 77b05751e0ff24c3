"""A compiled queryset read as Arrow columns, in record batches, per source database.

Django compiles the queryset (``query.get_compiler(using).as_sql()``): the SQL text is Django's,
the values stay parameters. Then, by measurement (bench/RESULTS.md, issue 16):

* **PostgreSQL, SQLite (a file)**: ADBC (``adbc-driver-postgresql``, ``adbc-driver-sqlite``,
  the ``smolqwery[arrow]`` extra). The driver binds the parameters and builds Arrow arrays in
  C; reading 1M rows costs 0.7 s of CPU on PostgreSQL (connectorx: 0.9 s, and it takes no
  parameters; psycopg's binary COPY: 0.8 s to read the bytes alone, with no Arrow yet and no
  parameters either) and 0.6 s on SQLite (the sqlite3 module into Arrow: 1.3 s).
* **Elsewhere** (MariaDB/MySQL, an in-memory SQLite, ADBC not installed, or Django's
  connection inside a transaction, whose rows another connection could not see): the DB-API
  cursor of Django's own connection (unbuffered on MySQL), ``fetchmany`` straight into one
  Python list per column, then one Arrow array per column.

Either way the columns are then brought to what Django itself would hand to Python for the
queryset's output fields (SQLite's text datetimes and integer booleans, naive UTC datetimes of
MySQL, PostgreSQL's NUMERIC) — vectorised where Arrow can, through Django's own converters per
value where it cannot. A column stays a Python list only in that last case.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from .errors import SmolqweryError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    import pyarrow as pa
    from django.db.backends.base.base import BaseDatabaseWrapper

    from .queryset_extractor import CompiledQuery, Reader

__all__ = ["Column", "Reader", "SourceReader", "numbered_placeholders"]

logger = logging.getLogger("smolqwery.arrow_source")

#: One column of a piece of a result: an Arrow array, or Python values (see module docstring).
Column = Union["pa.Array", list[Any]]

#: Rows fetched per DB-API round trip (and per array built from them), per SQLite ADBC batch.
FETCH_ROWS = 20_000
#: The most rows per FETCH of PostgreSQL's server-side cursor through ADBC (the first FETCH
#: of a query asks for 1/8 of it, each next one twice as many): two FETCHes are in memory at
#: once (one read ahead), whatever the size of the day; the export's peak RSS did not move
#: with the read ahead (bench/RESULTS.md).
PG_FETCH_ROWS = 50_000
#: Parameter types ADBC binds the way Django's own drivers do; anything else goes through the
#: DB-API cursor.
_ADBC_PARAM_TYPES: frozenset[type] = frozenset(
    {int, float, str, bytes, bool, datetime.datetime, datetime.date}
)
#: libpq connection keywords passed on from ``DATABASES[...]["OPTIONS"]``; any other option
#: (a role to assume, a pool) could change what the query sees: the DB-API path is used then.
_LIBPQ_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "application_name",
        "connect_timeout",
        "options",
        "target_session_attrs",
        "gssencmode",
        "channel_binding",
        "passfile",
        "service",
        "keepalives",
        "keepalives_idle",
    }
)


def numbered_placeholders(sql: str, style: Literal["$", "?"]) -> str:
    """Django's ``format`` paramstyle (``%s``, ``%%``) to ``$1, $2…`` or ``?``.

    Exact, not a heuristic: Django writes SQL for ``format`` drivers, where every ``%`` of the
    text is either ``%s`` (a parameter) or ``%%`` (a literal percent sign), quoted or not —
    psycopg and MySQLdb read it the same way.
    """
    out: list[str] = []
    count = 0
    i = 0
    size = len(sql)
    while i < size:
        j = sql.find("%", i)
        if j < 0:
            out.append(sql[i:])
            break
        out.append(sql[i:j])
        following = sql[j + 1 : j + 2]
        if following == "s":
            count += 1
            out.append(f"${count}" if style == "$" else "?")
        elif following == "%":
            out.append("%")
        else:
            raise ValueError(f"unexpected {sql[j : j + 2]!r} at position {j} of the SQL")
        i = j + 2
    return "".join(out)


# -- normalisation: what Django would hand to Python --------------------------------------


def _internal_type(expression: Any) -> str:
    try:
        return str(expression.output_field.get_internal_type())
    except Exception:  # an expression without output_field: take the driver's type
        return ""


def _django_values(
    values: Sequence[Any], expression: Any, connection: BaseDatabaseWrapper
) -> list[Any]:
    """``values`` through the converters Django applies to this expression (per value)."""
    converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(
        connection
    )
    out = list(values)
    if converters:
        for index, value in enumerate(out):
            for converter in converters:
                value = converter(value, expression, connection)
            out[index] = value
    return out


def _source_zone(connection: BaseDatabaseWrapper) -> str:
    """The zone of naive datetimes the database returns (Django's ``connection.timezone``)."""
    return str(getattr(connection, "timezone_name", None) or "UTC")


def normalise(
    array: pa.Array, expression: Any, connection: BaseDatabaseWrapper
) -> pa.Array | list[Any]:
    """An Arrow column as Django would give it for ``expression``'s output field."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = _internal_type(expression)
    if isinstance(array, pa.ChunkedArray):  # pragma: no cover - readers give arrays
        array = array.combine_chunks()
    if isinstance(array.type, pa.BaseExtensionType):
        # PostgreSQL NUMERIC comes as an opaque extension over its text form.
        array = array.storage
        if kind == "FloatField":
            return pc.cast(array, pa.float64())
        return _decimal_column(array, expression, connection)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type):
        array = pc.cast(array, pa.string())
    elif pa.types.is_large_binary(array.type):
        array = pc.cast(array, pa.binary())
    typ = array.type
    if kind == "DateTimeField":
        if pa.types.is_string(typ):
            try:
                array = pc.cast(array, pa.timestamp("us"))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return _django_values(array.to_pylist(), expression, connection)
            typ = array.type
        if pa.types.is_timestamp(typ):
            if typ.tz is None:
                from django.conf import settings

                if not settings.USE_TZ:
                    return array
                zone = _source_zone(connection)
                if zone != "UTC":
                    array = pc.assume_timezone(array, zone)
            return pc.cast(array, pa.timestamp("us", tz="UTC"))
    elif kind == "DateField":
        if pa.types.is_string(typ):
            try:
                return pc.cast(array, pa.date32())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return _django_values(array.to_pylist(), expression, connection)
        if pa.types.is_date(typ):
            return pc.cast(array, pa.date32())
    elif kind in ("BooleanField", "NullBooleanField"):
        if pa.types.is_integer(typ):
            return pc.not_equal(array, pa.scalar(0, typ))
    elif kind == "FloatField":
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            return pc.cast(array, pa.float64())
    elif kind.endswith("IntegerField") or kind.endswith("AutoField"):
        if pa.types.is_integer(typ):
            return array
        if pa.types.is_decimal(typ) or pa.types.is_floating(typ):
            return _django_values(array.to_pylist(), expression, connection)
    elif kind == "DecimalField":
        if pa.types.is_decimal(typ) or pa.types.is_integer(typ):
            return array
        if pa.types.is_string(typ):
            return _decimal_column(array, expression, connection)
        return _django_values(array.to_pylist(), expression, connection)
    elif kind in (
        "UUIDField",
        "JSONField",
        "DurationField",
        "GenericIPAddressField",
        "IPAddressField",
    ):
        return _django_values(array.to_pylist(), expression, connection)
    return array


def _decimal_column(
    array: pa.Array, expression: Any, connection: BaseDatabaseWrapper
) -> pa.Array | list[Any]:
    """Decimals written as text (PostgreSQL's NUMERIC through ADBC): cast in Arrow to the
    field's own precision and scale when it has them, else one ``Decimal`` per value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    field = getattr(expression, "output_field", None)
    digits = getattr(field, "max_digits", None)
    places = getattr(field, "decimal_places", None)
    if isinstance(digits, int) and isinstance(places, int) and 0 <= places <= digits <= 76:
        target = pa.decimal128(digits, places) if digits <= 38 else pa.decimal256(digits, places)
        try:
            return pc.cast(array, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # more places than the field says (an expression): Python decides
    values = [None if v is None else decimal.Decimal(v) for v in array.to_pylist()]
    return _django_values(values, expression, connection)


def _python_column(
    values: list[Any], expression: Any, connection: BaseDatabaseWrapper
) -> pa.Array | list[Any]:
    """DB-API values of one column: an Arrow array when Arrow takes them as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = _internal_type(expression)
    if kind in ("DecimalField", "UUIDField", "JSONField", "DurationField"):
        return _django_values(values, expression, connection)
    try:
        array = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return _django_values(values, expression, connection)
    if pa.types.is_timestamp(array.type) and array.type.tz is not None:
        # Aware datetimes (psycopg): Django gives them as they are.
        return pc.cast(array, pa.timestamp("us", tz="UTC"))
    return normalise(array, expression, connection)


# -- readers -------------------------------------------------------------------------------


def _adbc_params(params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The parameters as ADBC should bind them, or None when one has no safe equivalent.

    psycopg's typed integers (``Int4(7)``, Django's hint for server-side binding) become plain
    ints; None and Decimal are left to Django's own driver.
    """
    out: list[Any] = []
    for param in params:
        if type(param) in _ADBC_PARAM_TYPES:
            out.append(param)
        elif isinstance(param, bool):
            out.append(bool(param))
        elif isinstance(param, int):
            out.append(int(param))
        elif isinstance(param, float):
            out.append(float(param))
        elif isinstance(param, str):
            out.append(str(param))
        else:
            return None
    return tuple(out)


class SourceReader:
    """Reads compiled queries of one database alias as Arrow columns; owns its ADBC connection.

    ``reader`` forces a path: ``"adbc"`` fails when ADBC cannot be used, ``"dbapi"`` never
    tries it; ``"auto"`` (the default) uses ADBC where it applies.
    """

    def __init__(
        self, reader: Reader = "auto", fetch_rows: int = FETCH_ROWS, pg_fetch_rows: int = 0
    ) -> None:
        self.reader = reader
        self.fetch_rows = fetch_rows
        #: Rows per FETCH of PostgreSQL's server-side cursor (0: :data:`PG_FETCH_ROWS`).
        self.pg_fetch_rows = pg_fetch_rows or PG_FETCH_ROWS
        self._adbc: dict[str, Any] = {}
        self._cursors = 0
        #: The next query's cursor, opened while the previous query's rows were used.
        self._ahead: _PgChain | None = None
        #: The path the last query took ("adbc" or "dbapi"), for tests and the benchmark.
        self.last_path = ""

    def close(self) -> None:
        self._end_ahead()
        for con in self._adbc.values():
            try:
                con.close()
            except Exception:  # pragma: no cover - closing a dead connection
                logger.debug("closing an ADBC connection failed", exc_info=True)
        self._adbc.clear()

    def read(
        self,
        query: CompiledQuery,
        following: Callable[[], CompiledQuery | None] | None = None,
    ) -> Iterator[tuple[list[Column], int]]:
        """The query's wanted columns, piece by piece, with each piece's row count.

        ``following`` gives the query to be read next (the next day's; None: no more), asked
        for once this one's last rows are fetched: on PostgreSQL its cursor is then opened and
        its first FETCH run while this query's last rows are used (and written).
        """
        from django.db import connections

        if self._ahead is not None and self._ahead.query is not query:
            self._end_ahead()  # not the query it was started for
        if query.empty:
            return
        connection = connections[query.using]
        adbc = self._adbc_connection(connection, query)
        self.last_path = "adbc" if adbc is not None else "dbapi"
        logger.debug("%s: read through %s", query.using, self.last_path)
        if adbc is not None:
            yield from self._read_adbc(adbc, connection, query, following)
        else:
            yield from self._read_dbapi(connection, query)

    # -- ADBC ---------------------------------------------------------------------------

    def _adbc_connection(self, connection: BaseDatabaseWrapper, query: CompiledQuery) -> Any:
        if self.reader == "dbapi":
            return None
        why = self._no_adbc(connection, query)
        if why:
            if self.reader == "adbc":
                raise SmolqweryError(f"cannot read through ADBC: {why}")
            logger.debug("reading %s through the DB-API cursor: %s", query.using, why)
            return None
        if query.using not in self._adbc:
            self._adbc[query.using] = _adbc_connect(connection)
        return self._adbc[query.using]

    @staticmethod
    def _no_adbc(connection: BaseDatabaseWrapper, query: CompiledQuery) -> str:
        vendor = connection.vendor
        if vendor not in ("postgresql", "sqlite"):
            return f"no ADBC driver is used for {vendor}"
        if connection.in_atomic_block:
            return "Django's connection is inside a transaction another connection cannot see"
        if _adbc_params(query.params) is None:
            return "a parameter type ADBC does not bind like Django's driver"
        try:
            if vendor == "postgresql":
                import adbc_driver_postgresql.dbapi  # noqa: F401
            else:
                import adbc_driver_sqlite.dbapi  # noqa: F401
        except ImportError:
            return "the ADBC driver is not installed (pip install smolqwery[arrow])"
        if vendor == "sqlite" and connection.is_in_memory_db():  # type: ignore[attr-defined]
            return "an in-memory SQLite database is private to Django's connection"
        if vendor == "postgresql":
            options = connection.settings_dict.get("OPTIONS") or {}
            extra = sorted(set(options) - _LIBPQ_OPTIONS)
            if extra:
                return f"OPTIONS {extra} have no libpq equivalent"
        return ""

    def _read_adbc(
        self,
        adbc: Any,
        connection: BaseDatabaseWrapper,
        query: CompiledQuery,
        following: Callable[[], CompiledQuery | None] | None,
    ) -> Iterator[tuple[list[Column], int]]:
        params = _adbc_params(query.params)
        if connection.vendor == "postgresql":
            # A query with parameters cannot be a COPY, and ADBC then keeps its whole result
            # in memory (a day: +210 MB for 1M rows). A server-side cursor keeps the
            # parameters bound and hands the rows over in FETCHes of bounded size.
            yield from self._read_pg_cursor(adbc, connection, query, params, following)
            return
        cursor = adbc.cursor()
        try:
            # The driver's default, 1,024 rows a batch, costs a little per batch downstream.
            cursor.adbc_statement.set_options(
                **{"adbc.sqlite.query.batch_rows": str(self.fetch_rows)}
            )
            cursor.execute(numbered_placeholders(query.sql, "?"), params)
            yield from self._batches(cursor, connection, query)
        finally:
            cursor.close()

    def _cursor_name(self) -> str:
        self._cursors += 1
        return f"smolqwery_cursor_{self._cursors}"

    def _end_ahead(self) -> None:
        """Let the query started ahead end unread: its work ends, its cursor is closed (or the
        transaction it aborted rolled back), its thread joined, its statements closed."""
        chain, self._ahead = self._ahead, None
        if chain is not None:
            chain.end()

    def _read_pg_cursor(
        self,
        adbc: Any,
        connection: BaseDatabaseWrapper,
        query: CompiledQuery,
        params: tuple[Any, ...] | None,
        following: Callable[[], CompiledQuery | None] | None,
    ) -> Iterator[tuple[list[Column], int]]:
        """The rows through ``DECLARE … CURSOR``, the next FETCH run while this one is used.

        In a FETCH's round trip the client would idle while PostgreSQL produces the rows, and
        the server idle while the client decodes, checks and writes them. So a thread of ours
        runs the next FETCH meanwhile (ADBC releases the GIL while it waits), on a second ADBC
        statement: a FETCH's result is whole in memory once it returns, decoded here while the
        other statement runs the next one. One FETCH ahead at most: memory stays two FETCHes.

        Once a FETCH brings fewer rows than asked (the last), the thread closes this cursor and
        opens the ``following`` query's, with its first FETCH, while the last rows are used:
        the next day starts without a round trip (issue 16: ~23 ms a day). That is the one
        FETCH ahead then; the thread, the statements and the FETCH under way are handed to the
        next :meth:`read` of that query (whose error, if it fails, is that read's), or ended
        by :meth:`close` or by another read. Each statement is used by one thread at a time; a
        FETCH in flight always ends before its cursor is closed, on an error as on an early
        exit, and the thread is joined unless handed over.
        """
        size = self.pg_fetch_rows
        chain, self._ahead = self._ahead, None
        if chain is None or chain.query is not query:
            if chain is not None:  # pragma: no cover - read() ended it already
                chain.end()
            chain = _PgChain.start(adbc, query, self._cursor_name(), params, max(1, size // 8))
        else:
            logger.debug("%s: the cursor was opened ahead", query.using)
        pending: Future[tuple[Any, int]] | None = chain.first
        number, asked = chain.number, chain.asked
        handed: _PgChain | None = None  # the next query's, once started
        reader: Any = None
        try:
            while pending is not None:
                current, pending = pending, None
                try:
                    reader, count = current.result()
                except BaseException:
                    chain.failed = True
                    raise
                this, number, asked = asked, number + 1, min(2 * asked, size)
                # ADBC reports the rows of a FETCH (-1 if a driver did not): fewer than asked
                # is the last of them, and the next query can start at once.
                last = 0 <= count < this
                following_query = following() if last and following is not None else None
                if following_query is not None and self._can_follow(connection, following_query):
                    handed = chain.follow(
                        following_query,
                        self._cursor_name(),
                        _adbc_params(following_query.params),
                        number,
                        max(1, size // 8),
                    )
                elif not last:
                    # The next FETCH at once (when a driver does not tell the count, after the
                    # last rows it is an empty one: cheap).
                    pending = chain.fetch(number, asked)
                got = 0
                for batch in reader:
                    if batch.num_rows:
                        got += batch.num_rows
                        yield self._normalised(batch, connection, query), batch.num_rows
                reader.close()  # before its statement runs a FETCH again
                reader = None
                if last or got < this:
                    break  # the last rows: a FETCH ahead would find none
            if handed is not None:
                self._ahead, handed = handed, None  # the next read takes the thread over
        finally:
            if reader is not None:
                reader.close()
            chain.finish(pending)
            if handed is not None:  # an error or an early exit: the next query is not read
                handed.end()

    def _can_follow(self, connection: BaseDatabaseWrapper, query: CompiledQuery) -> bool:
        """Whether ``query`` is read through this ADBC connection too (then it may start)."""
        return (
            not query.empty
            and query.using == connection.alias
            and self.reader != "dbapi"
            and not self._no_adbc(connection, query)
        )

    @classmethod
    def _batches(
        cls, cursor: Any, connection: BaseDatabaseWrapper, query: CompiledQuery
    ) -> Iterator[tuple[list[Column], int]]:
        for batch in cursor.fetch_record_batch():
            if batch.num_rows:
                yield cls._normalised(batch, connection, query), batch.num_rows

    @staticmethod
    def _normalised(
        batch: pa.RecordBatch, connection: BaseDatabaseWrapper, query: CompiledQuery
    ) -> list[Column]:
        return [
            normalise(batch.column(position), expression, connection)
            for position, expression in zip(query.positions, query.expressions, strict=True)
        ]

    # -- DB-API -------------------------------------------------------------------------

    def _read_dbapi(
        self, connection: BaseDatabaseWrapper, query: CompiledQuery
    ) -> Iterator[tuple[list[Column], int]]:
        connection.ensure_connection()
        if connection.vendor == "mysql":
            # MySQLdb's default cursor keeps the whole result in memory: stream it instead.
            import MySQLdb.cursors

            raw = connection.connection.cursor(MySQLdb.cursors.SSCursor)
            cursor: Any = raw
            execute = raw.execute
        else:
            cursor = connection.chunked_cursor()
            execute = cursor.execute
        try:
            execute(query.sql, query.params)
            getters = [operator.itemgetter(p) for p in query.positions]
            while True:
                rows = cursor.fetchmany(self.fetch_rows)
                if not rows:
                    break
                columns: list[Column] = [
                    _python_column(list(map(getter, rows)), expression, connection)
                    for getter, expression in zip(getters, query.expressions, strict=True)
                ]
                yield columns, len(rows)
        finally:
            cursor.close()


class _PgChain:
    """One query's server-side cursor on PostgreSQL, and what reads it: a thread (that runs
    the FETCHes, and the next query's start) and two ADBC statements that alternate. A chain
    started for the next query shares them; its own :meth:`finish` or :meth:`end` frees them.
    """

    def __init__(
        self,
        adbc: Any,
        query: CompiledQuery,
        name: str,
        pool: ThreadPoolExecutor,
        statements: tuple[Any, Any],
        first: Future[tuple[Any, int]],
        number: int,
        asked: int,
    ) -> None:
        self.adbc = adbc
        self.query = query
        self.name = name
        self.pool = pool
        self.statements = statements
        #: The first FETCH (under way), run on ``statements[number % 2]``, of ``asked`` rows.
        self.first = first
        self.number = number
        self.asked = asked
        #: Whether a FETCH failed (the transaction is aborted: CLOSE would fail, and hide why).
        self.failed = False
        #: The next query's chain, sharing the thread and the statements (and closing this
        #: cursor before it opens its own).
        self.successor: _PgChain | None = None

    @classmethod
    def start(cls, adbc: Any, query: CompiledQuery, name: str, params: Any, rows: int) -> _PgChain:
        from concurrent.futures import ThreadPoolExecutor

        statements = (adbc.cursor(), adbc.cursor())
        for statement in statements:
            statement.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        pool = ThreadPoolExecutor(1, thread_name_prefix="smolqwery-fetch")
        sql = numbered_placeholders(query.sql, "$")
        first = pool.submit(_declare_and_fetch, statements[0], None, name, sql, params, rows)
        return cls(adbc, query, name, pool, statements, first, 0, rows)

    def fetch(self, number: int, rows: int) -> Future[tuple[Any, int]]:
        return self.pool.submit(_fetch, self.statements[number % 2], self.name, rows)

    def follow(
        self, query: CompiledQuery, name: str, params: Any, number: int, rows: int
    ) -> _PgChain:
        """Close this cursor and open ``query``'s, with its first FETCH, in the thread (this
        cursor's last FETCH is back: nothing else of it runs)."""
        sql = numbered_placeholders(query.sql, "$")
        statement = self.statements[number % 2]
        first = self.pool.submit(_declare_and_fetch, statement, self.name, name, sql, params, rows)
        self.successor = _PgChain(
            self.adbc, query, name, self.pool, self.statements, first, number, rows
        )
        return self.successor

    def finish(self, pending: Future[tuple[Any, int]] | None) -> None:
        """The read of this query ends: the FETCH in flight (``pending``) ends, then the
        cursor is closed and the thread and statements freed — unless a successor has them
        (it closes this cursor itself)."""
        if pending is not None:
            try:
                pending.result()[0].close()
            except Exception:  # the caller's error (or exit) is the one to tell
                self.failed = True
                logger.debug("the FETCH ahead failed as the read ended", exc_info=True)
        if self.successor is not None:
            return
        try:
            if not self.failed:
                self.statements[0].execute(f"CLOSE {self.name}")
            else:  # CLOSE would fail in the aborted transaction, and hide why
                try:
                    self.adbc.rollback()
                except Exception:  # pragma: no cover - a connection lost: the error tells
                    logger.debug("rolling the ADBC connection back failed", exc_info=True)
        finally:
            self.pool.shutdown(wait=True)
            for statement in self.statements:
                statement.close()

    def end(self) -> None:
        """This query is not read after all: its start ends, and everything is freed."""
        self.finish(self.first)


def _fetch(statement: Any, name: str, rows: int) -> tuple[Any, int]:
    """One FETCH (in the reader's thread): its result, whole in memory, and its row count."""
    statement.execute(f"FETCH FORWARD {rows} FROM {name}")
    return statement.fetch_record_batch(), int(statement.rowcount)


def _declare_and_fetch(
    statement: Any, previous: str | None, name: str, sql: str, params: Any, rows: int
) -> tuple[Any, int]:
    """Close the previous query's cursor, if any, open this one's, and run its first FETCH."""
    if previous is not None:
        statement.execute(f"CLOSE {previous}")
    statement.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
    return _fetch(statement, name, rows)


def _conninfo(settings: dict[str, Any]) -> str:
    """A libpq ``key=value`` string from Django's settings (values quoted, never logged)."""

    def quote(value: object) -> str:
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"

    parts = {
        "dbname": settings.get("NAME"),
        "user": settings.get("USER"),
        "password": settings.get("PASSWORD"),
        "host": settings.get("HOST"),
        "port": settings.get("PORT"),
        **(settings.get("OPTIONS") or {}),
    }
    return " ".join(f"{key}={quote(value)}" for key, value in parts.items() if value)


def _adbc_connect(connection: BaseDatabaseWrapper) -> Any:
    if connection.vendor == "postgresql":
        import adbc_driver_postgresql.dbapi

        return adbc_driver_postgresql.dbapi.connect(_conninfo(connection.settings_dict))
    import adbc_driver_sqlite.dbapi

    return adbc_driver_sqlite.dbapi.connect(str(connection.settings_dict["NAME"]))
