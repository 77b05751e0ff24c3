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
import functools
import logging
import operator
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, Union

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
#: A FETCH under way: once back, its decoding (under way in turn) and its row count.
Fetched: TypeAlias = "Future[tuple[Future[list[pa.RecordBatch]], int]]"

#: Rows fetched per DB-API round trip (and per array built from them).
FETCH_ROWS = 20_000
#: Rows per batch of ADBC's SQLite driver (its default, 1,024, costs a little per batch
#: downstream): 60,000 read 1M rows in 0.92-0.99 s where 20,000 took 1.00-1.24 s (issue 16).
SQLITE_BATCH_ROWS = 60_000
#: The most rows per FETCH of PostgreSQL's server-side cursor through ADBC (the first FETCH
#: of a query asks for 1/8 of it, each next one twice as many): a few FETCHes are in memory
#: at once (:data:`PG_FETCHES_AHEAD` asked for ahead), whatever the size of the day; the
#: export's peak RSS did not move with the reads ahead (bench/RESULTS.md).
PG_FETCH_ROWS = 25_000
#: Batches of SQLite's rows read ahead of the one used: the reading thread goes on while the
#: caller inserts a group of rows in DuckDB (245,760 rows at once: with one batch ahead the
#: thread idled a third of the time at 1M rows). ~15 MB at 60,000 rows a batch.
SQLITE_BATCHES_AHEAD = 4
#: FETCHes asked for ahead of the one used: enough that the fetch thread never waits for the
#: reader (with two it still idled 27% of the time at 10M rows: a FETCH's decoding and use
#: took longer than the next FETCH).
PG_FETCHES_AHEAD = 3
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
        if pa.types.is_decimal(typ):
            # Django gives float(Decimal): the nearest double. Arrow's decimal cast is not
            # always that (0.11099999999999999 for 0.111 at a larger scale); its parse of
            # the exact decimal text is.
            return pc.cast(pc.cast(array, pa.string()), pa.float64())
        if pa.types.is_integer(typ) or pa.types.is_floating(typ):
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
        self,
        reader: Reader = "auto",
        fetch_rows: int = FETCH_ROWS,
        pg_fetch_rows: int = 0,
        sqlite_batch_rows: int = SQLITE_BATCH_ROWS,
    ) -> None:
        self.reader = reader
        self.fetch_rows = fetch_rows
        self.sqlite_batch_rows = sqlite_batch_rows
        #: Rows per FETCH of PostgreSQL's server-side cursor (0: :data:`PG_FETCH_ROWS`).
        self.pg_fetch_rows = pg_fetch_rows or PG_FETCH_ROWS
        self._adbc: dict[str, Any] = {}
        self._cursors = 0
        #: The next query's cursor, opened while the previous query's rows were used.
        self._ahead: _PgChain | _SqliteDay | None = None
        #: The thread that reads SQLite's rows (one per reader: see :meth:`_read_sqlite`).
        self._sqlite_thread: ThreadPoolExecutor | None = None
        #: The path the last query took ("adbc" or "dbapi"), for tests and the benchmark.
        self.last_path = ""

    def close(self) -> None:
        self._end_ahead()
        if self._sqlite_thread is not None:
            self._sqlite_thread.shutdown(wait=True)
            self._sqlite_thread = None
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
        for once (on PostgreSQL once this one's last rows are fetched, on SQLite as its read
        starts): it is then started while this query's last rows are used (and written).
        """
        from django.db import connections

        if self._ahead is not None and self._ahead.query is not query:
            self._end_ahead()  # not the query it was started for
        if query.empty:
            return
        connection = connections[query.using]
        adbc = self._adbc_connection(connection, query)
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
            self._took("adbc", query)
            yield from self._read_pg_cursor(adbc, connection, query, params, following)
            return
        yield from self._read_sqlite(adbc, connection, query, following)

    def _took(self, path: str, query: CompiledQuery) -> None:
        self.last_path = path
        logger.debug("%s: read through %s", query.using, path)

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
        the server idle while the client decodes, checks and writes them. So three stages
        overlap (ADBC releases the GIL while it waits and while it decodes): a thread of ours
        runs the FETCHes, one after the other; a FETCH's result is whole in memory once it
        returns, and another thread decodes it into record batches at once; this thread
        normalises, and the caller checks and writes, the batches decoded before. Each FETCH
        is asked for :data:`PG_FETCHES_AHEAD` ahead of the one used, so the fetch thread does
        not wait for the reader: memory stays a few FETCHes.

        Once a FETCH brings fewer rows than asked (the last), the thread closes this cursor and
        opens the ``following`` query's, with its first FETCH, while the last rows are used:
        the next day starts without a round trip (issue 16: ~23 ms a day). The thread, the
        statements and that FETCH under way are handed to the
        next :meth:`read` of that query (whose error, if it fails, is that read's), or ended
        by :meth:`close` or by another read. Each statement is used by one thread at a time; a
        FETCH in flight always ends before its cursor is closed, on an error as on an early
        exit, and the thread is joined unless handed over.
        """
        size = self.pg_fetch_rows
        ahead, self._ahead = self._ahead, None
        if isinstance(ahead, _PgChain) and ahead.query is query:
            chain = ahead
            logger.debug("%s: the cursor was opened ahead", query.using)
        else:
            if ahead is not None:  # pragma: no cover - read() ended it already
                ahead.end()
            chain = _PgChain.start(adbc, query, self._cursor_name(), params, max(1, size // 8))
        # FETCHes under way (each with the rows it asks for), ahead of the one used: the fetch
        # thread runs the next as soon as one is back, the decode thread decodes it.
        pending: deque[tuple[Fetched, int]] = deque([(chain.first, chain.asked)])
        asked = chain.asked

        def fetch_more() -> None:
            nonlocal asked
            asked = min(2 * asked, size)
            pending.append((chain.fetch(asked), asked))

        decoding: Future[list[pa.RecordBatch]] | None = None
        handed: _PgChain | None = None  # the next query's, once started
        try:
            for _ in range(PG_FETCHES_AHEAD - 1):
                fetch_more()  # a small day's rows come in the first FETCH: these find none
            while pending:
                current, this = pending.popleft()
                try:
                    decoded, count = current.result()
                except BaseException:
                    chain.failed = True
                    raise
                # ADBC reports the rows of a FETCH (-1 if a driver did not): fewer than asked
                # is the last of them, and the next query can start at once (after the FETCH
                # already asked for, which finds no row).
                last = 0 <= count < this
                following_query = following() if last and following is not None else None
                if following_query is not None and self._can_follow(connection, following_query):
                    handed = chain.follow(
                        following_query,
                        self._cursor_name(),
                        _adbc_params(following_query.params),
                        max(1, size // 8),
                    )
                elif not last:
                    fetch_more()
                decoding = decoded
                try:
                    batches = decoded.result()
                except BaseException:
                    chain.failed = True
                    raise
                decoding = None
                got = 0
                for batch in batches:
                    got += batch.num_rows
                    yield self._normalised(batch, connection, query), batch.num_rows
                if last or got < this:
                    break  # the last rows: a FETCH ahead would find none
            if handed is not None:
                self._ahead, handed = handed, None  # the next read takes the thread over
        finally:
            chain.finish([fetched for fetched, _ in pending], decoding)
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

    def _read_sqlite(
        self,
        adbc: Any,
        connection: BaseDatabaseWrapper,
        query: CompiledQuery,
        following: Callable[[], CompiledQuery | None] | None,
    ) -> Iterator[tuple[list[Column], int]]:
        """The rows, the next batches read in a thread of ours while this one is used.

        ADBC's SQLite driver steps the rows into Arrow in C without the GIL (0.6 µs a row,
        about what the caller's check and insert of them cost): overlapped, the read is
        nearly free (bench/RESULTS.md, issue 16). The ``following`` query is asked for at
        the start; once this one's last batch is read, the thread runs it (SQLite reads its
        first batch as it executes) while the last rows are used, and the next :meth:`read`
        of that query takes it over (its error, if it fails, is that read's). At most
        :data:`SQLITE_BATCHES_AHEAD` batches ahead; only the thread uses the ADBC connection
        while a read is under way, and a read always waits for the thread before it ends, on
        an error as on an early exit.
        """
        if self._sqlite_thread is None:
            from concurrent.futures import ThreadPoolExecutor

            self._sqlite_thread = ThreadPoolExecutor(1, thread_name_prefix="smolqwery-read")
        thread = self._sqlite_thread
        day, self._ahead = self._ahead, None
        if not isinstance(day, _SqliteDay) or day.query is not query:
            if day is not None:  # pragma: no cover - read() ended it already
                day.end()
            day = _SqliteDay(query)
            day.start(adbc, self.sqlite_batch_rows)
        else:
            logger.debug("%s: the query was run ahead", query.using)
        if _calls_djangos_functions(day.error):
            # Django's SQLite connection has Python functions of its own (``__date``,
            # TruncDay, ``__year``, ``__regex``... call them): its cursor runs this query.
            why = f"the query calls a function only Django's connection has ({day.error})"
            if self.reader == "adbc":
                raise SmolqweryError(f"cannot read through ADBC: {why}")
            logger.debug("reading %s through the DB-API cursor: %s", query.using, why)
            yield from self._read_dbapi(connection, query)
            return
        self._took("adbc", query)
        successor: _SqliteDay | None = None
        pending: deque[Future[pa.RecordBatch | None]] = deque()
        try:
            if following is not None:
                upcoming = following()
                if upcoming is not None and self._can_follow(connection, upcoming):
                    successor = _SqliteDay(upcoming)
            day.raise_error()

            def read_more() -> None:
                pending.append(
                    thread.submit(day.next_batch, adbc, successor, self.sqlite_batch_rows)
                )

            for _ in range(SQLITE_BATCHES_AHEAD):
                read_more()
            while pending:
                batch = pending.popleft().result()
                if batch is None:
                    break
                read_more()
                yield self._normalised(batch, connection, query), batch.num_rows
            if successor is not None and successor.started:
                self._ahead, successor = successor, None  # the next read takes it over
        finally:
            for read in pending:
                try:
                    read.result()
                except Exception:  # the caller's error (or exit) is the one to tell
                    logger.debug("the read ahead failed as the read ended", exc_info=True)
            day.end()
            if successor is not None:  # an error or an early exit: the next query is not read
                successor.end()

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
        self._took("dbapi", query)
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
    """One query's server-side cursor on PostgreSQL, and what reads it: a thread that runs
    the FETCHes (and the next query's start), a thread that decodes each FETCH's result into
    record batches, and three ADBC statements taken in turn. A chain started for the next
    query shares them; its own :meth:`finish` or :meth:`end` frees them.

    One statement more than the FETCHes asked for ahead, because a statement's result must be
    decoded (and closed) before the statement runs again: the reader asks for each FETCH
    :data:`PG_FETCHES_AHEAD` ahead of the one it uses, once it has the FETCH before that one
    decoded — so the statement that many turns back plus one is free.
    """

    def __init__(
        self,
        adbc: Any,
        query: CompiledQuery,
        name: str,
        pool: ThreadPoolExecutor,
        decoder: ThreadPoolExecutor,
        statements: tuple[Any, ...],
        first: Fetched,
        uses: int,
        asked: int,
    ) -> None:
        self.adbc = adbc
        self.query = query
        self.name = name
        self.pool = pool
        self.decoder = decoder
        self.statements = statements
        #: The first FETCH (under way), of ``asked`` rows.
        self.first = first
        self.asked = asked
        #: How many times the statements were given work: the next takes ``uses % 3``.
        self.uses = uses
        #: Whether a FETCH failed (the transaction is aborted: CLOSE would fail, and hide why).
        self.failed = False
        #: The next query's chain, sharing the thread and the statements (and closing this
        #: cursor before it opens its own).
        self.successor: _PgChain | None = None

    @classmethod
    def start(cls, adbc: Any, query: CompiledQuery, name: str, params: Any, rows: int) -> _PgChain:
        from concurrent.futures import ThreadPoolExecutor

        statements = tuple(adbc.cursor() for _ in range(PG_FETCHES_AHEAD + 1))
        for statement in statements:
            statement.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        pool = ThreadPoolExecutor(1, thread_name_prefix="smolqwery-fetch")
        decoder = ThreadPoolExecutor(1, thread_name_prefix="smolqwery-fetch-decode")
        sql = numbered_placeholders(query.sql, "$")
        first = pool.submit(
            _declare_and_fetch, statements[0], decoder, None, name, sql, params, rows
        )
        return cls(adbc, query, name, pool, decoder, statements, first, 1, rows)

    def _statement(self) -> Any:
        statement = self.statements[self.uses % len(self.statements)]
        self.uses += 1
        return statement

    def fetch(self, rows: int) -> Fetched:
        return self.pool.submit(_fetch, self._statement(), self.decoder, self.name, rows)

    def follow(self, query: CompiledQuery, name: str, params: Any, rows: int) -> _PgChain:
        """Close this cursor and open ``query``'s, with its first FETCH, in the thread (after
        this cursor's FETCHes under way, which find no more rows)."""
        sql = numbered_placeholders(query.sql, "$")
        statement = self._statement()
        first = self.pool.submit(
            _declare_and_fetch, statement, self.decoder, self.name, name, sql, params, rows
        )
        self.successor = _PgChain(
            self.adbc, query, name, self.pool, self.decoder, self.statements, first, self.uses, rows
        )
        return self.successor

    def finish(
        self, pending: Sequence[Fetched], decoding: Future[list[pa.RecordBatch]] | None = None
    ) -> None:
        """The read of this query ends: the FETCHes in flight (``pending``) and the decoding
        under way end, then the cursor is closed and the threads and statements freed —
        unless a successor has them (it closes this cursor itself)."""
        if decoding is not None:
            self._await(decoding.result)
        for fetched in pending:
            self._await(functools.partial(_decoded_rows, fetched))
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
            self.decoder.shutdown(wait=True)
            for statement in self.statements:
                statement.close()

    def _await(self, work: Callable[[], object]) -> None:
        """Wait for work under way; its failure is kept (the caller's error, or exit, is the
        one to tell)."""
        try:
            work()
        except Exception:
            self.failed = True
            logger.debug("the FETCH ahead failed as the read ended", exc_info=True)

    def end(self) -> None:
        """This query is not read after all: its start ends, and everything is freed."""
        self.finish([self.first])


def _calls_djangos_functions(error: BaseException | None) -> bool:
    """Whether SQLite refused a query for a function it lacks: one Django defines on its own
    connection (``django_date_trunc``, ``LPAD``, ``REGEXP``, ``SHA1``...), most likely."""
    return error is not None and "no such function:" in str(error)


class _SqliteDay:
    """One query read through ADBC's SQLite driver: its statement and result, used by one
    thread at a time (the reader's thread while a read is under way)."""

    def __init__(self, query: CompiledQuery) -> None:
        self.query = query
        self.started = False
        self.cursor: Any = None
        self.reader: Any = None
        #: Why running the query failed, when it ran ahead: told by the read of this query.
        self.error: BaseException | None = None

    def start(self, adbc: Any, batch_rows: int) -> None:
        """Run the query (SQLite reads its first batch as it executes); a failure is kept."""
        self.started = True
        try:
            self.cursor = adbc.cursor()
            self.cursor.adbc_statement.set_options(
                **{"adbc.sqlite.query.batch_rows": str(batch_rows)}
            )
            sql = numbered_placeholders(self.query.sql, "?")
            self.cursor.execute(sql, _adbc_params(self.query.params))
            self.reader = self.cursor.fetch_record_batch()
        except Exception as exc:
            self.error = exc
            self.end()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def next_batch(
        self, adbc: Any, successor: _SqliteDay | None, batch_rows: int
    ) -> pa.RecordBatch | None:
        """The next non-empty batch (in the reader's thread); at the end, None, once this
        statement is closed and the ``successor`` query is started (then None again)."""
        if self.reader is None:
            return None
        while True:
            try:
                batch = self.reader.read_next_batch()
            except StopIteration:
                break
            if batch.num_rows:
                return batch
        self.end()
        if successor is not None:
            successor.start(adbc, batch_rows)
        return None

    def end(self) -> None:
        """Free the result and the statement (idempotent)."""
        reader, cursor, self.reader, self.cursor = self.reader, self.cursor, None, None
        try:
            if reader is not None:
                reader.close()
        finally:
            if cursor is not None:
                cursor.close()


def _fetch(
    statement: Any, decoder: ThreadPoolExecutor, name: str, rows: int
) -> tuple[Future[list[pa.RecordBatch]], int]:
    """One FETCH (in the fetch thread): its result, whole in memory, is handed at once to the
    decode thread; returns that decoding and the FETCH's row count."""
    statement.execute(f"FETCH FORWARD {rows} FROM {name}")
    return decoder.submit(_decode, statement.fetch_record_batch()), int(statement.rowcount)


def _decoded_rows(fetched: Fetched) -> list[pa.RecordBatch]:
    """A FETCH's record batches, once it and its decoding are done."""
    decoding, _ = fetched.result()
    return decoding.result()


def _decode(reader: Any) -> list[pa.RecordBatch]:
    """A FETCH's result as record batches (in the decode thread: ADBC builds the Arrow arrays
    without the GIL). The batches own their memory: the result is freed, the statement free."""
    try:
        return [batch for batch in reader if batch.num_rows]
    finally:
        reader.close()


def _declare_and_fetch(
    statement: Any,
    decoder: ThreadPoolExecutor,
    previous: str | None,
    name: str,
    sql: str,
    params: Any,
    rows: int,
) -> tuple[Future[list[pa.RecordBatch]], int]:
    """Close the previous query's cursor, if any, open this one's, and run its first FETCH."""
    if previous is not None:
        statement.execute(f"CLOSE {previous}")
    statement.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
    return _fetch(statement, decoder, name, rows)


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

        adbc = adbc_driver_postgresql.dbapi.connect(_conninfo(connection.settings_dict))
        # The session's TimeZone Django sets on its own connection (UTC with USE_TZ): SQL that
        # depends on it (a timestamptz cast to date) must read what Django would. Committed:
        # a later rollback (a failed read) must not take it back.
        with adbc.cursor() as cursor:
            cursor.execute("SELECT set_config('TimeZone', $1, false)", (_source_zone(connection),))
            cursor.fetchall()
        adbc.commit()
        return adbc
    import adbc_driver_sqlite.dbapi

    return adbc_driver_sqlite.dbapi.connect(str(connection.settings_dict["NAME"]))
