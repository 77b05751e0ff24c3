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
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from .errors import SmolqweryError

if TYPE_CHECKING:
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
        #: The path the last query took ("adbc" or "dbapi"), for tests and the benchmark.
        self.last_path = ""

    def close(self) -> None:
        for con in self._adbc.values():
            try:
                con.close()
            except Exception:  # pragma: no cover - closing a dead connection
                logger.debug("closing an ADBC connection failed", exc_info=True)
        self._adbc.clear()

    def read(self, query: CompiledQuery) -> Iterator[tuple[list[Column], int]]:
        """The query's wanted columns, piece by piece, with each piece's row count."""
        from django.db import connections

        if query.empty:
            return
        connection = connections[query.using]
        adbc = self._adbc_connection(connection, query)
        self.last_path = "adbc" if adbc is not None else "dbapi"
        logger.debug("%s: read through %s", query.using, self.last_path)
        if adbc is not None:
            yield from self._read_adbc(adbc, connection, query)
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
        self, adbc: Any, connection: BaseDatabaseWrapper, query: CompiledQuery
    ) -> Iterator[tuple[list[Column], int]]:
        params = _adbc_params(query.params)
        cursor = adbc.cursor()
        try:
            if connection.vendor == "sqlite":
                # The driver's default, 1,024 rows a batch, costs a little per batch downstream.
                cursor.adbc_statement.set_options(
                    **{"adbc.sqlite.query.batch_rows": str(self.fetch_rows)}
                )
                cursor.execute(numbered_placeholders(query.sql, "?"), params)
                yield from self._batches(cursor, connection, query)
                return
            # PostgreSQL: a query with parameters cannot be a COPY, and ADBC then keeps its
            # whole result in memory (a day: +210 MB for 1M rows). A server-side cursor keeps
            # the parameters bound and hands the rows over in FETCHes of bounded size.
            cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            yield from self._read_pg_cursor(adbc, cursor, connection, query, params)
        finally:
            cursor.close()

    def _read_pg_cursor(
        self,
        adbc: Any,
        cursor: Any,
        connection: BaseDatabaseWrapper,
        query: CompiledQuery,
        params: tuple[Any, ...] | None,
    ) -> Iterator[tuple[list[Column], int]]:
        """The rows through ``DECLARE … CURSOR``, the next FETCH run while this one is used.

        In a FETCH's round trip the client would idle while PostgreSQL produces the rows, and
        the server idle while the client decodes, checks and writes them. So a thread of ours
        runs the next FETCH meanwhile (ADBC releases the GIL while it waits), on a second ADBC
        statement: a FETCH's result is whole in memory once it returns, decoded here while the
        other statement runs the next one. One FETCH ahead at most: memory stays two FETCHes.
        Each statement is used by one thread at a time; the FETCH in flight always ends before
        the cursor is closed, on an error as on an early exit, and the thread is joined.
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        self._cursors += 1
        name = f"smolqwery_cursor_{self._cursors}"
        size = self.pg_fetch_rows
        sql = numbered_placeholders(query.sql, "$")
        ahead = adbc.cursor()
        ahead.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        statements = (cursor, ahead)

        def fetch(number: int, rows: int) -> Any:
            statement = statements[number % 2]
            statement.execute(f"FETCH FORWARD {rows} FROM {name}")
            return statement.fetch_record_batch()

        healthy = False  # until the last FETCH came back: a failed one aborts the transaction
        reader: Any = None
        try:
            cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
            with ThreadPoolExecutor(1, thread_name_prefix="smolqwery-fetch") as pool:
                # Small FETCHes first, doubling: the second one already overlaps the first
                # one's work on a small day, and a large day takes few round trips.
                number, asked = 0, max(1, size // 8)
                pending: Future[Any] | None = pool.submit(fetch, number, asked)
                try:
                    while pending is not None:
                        current, pending = pending, None
                        reader = current.result()
                        this, number, asked = asked, number + 1, min(2 * asked, size)
                        # The next FETCH at once (after the last rows, an empty one: cheap).
                        pending = pool.submit(fetch, number, asked)
                        got = 0
                        for batch in reader:
                            if batch.num_rows:
                                got += batch.num_rows
                                yield self._normalised(batch, connection, query), batch.num_rows
                        reader.close()  # before its statement runs a FETCH again
                        if got < this:
                            break  # the last rows: the FETCH ahead found none
                finally:
                    if reader is not None:
                        reader.close()
                    if pending is not None:  # the last, or an early exit: let it end
                        try:
                            pending.result().close()
                            healthy = True
                        except Exception:  # the caller's error (or exit) is the one to tell
                            logger.debug("the FETCH ahead failed as the read ended", exc_info=True)
        finally:
            ahead.close()
            if healthy:
                cursor.execute(f"CLOSE {name}")
            else:  # CLOSE would fail in the aborted transaction, and hide why
                try:
                    adbc.rollback()
                except Exception:  # pragma: no cover - a connection lost: the error tells
                    logger.debug("rolling the ADBC connection back failed", exc_info=True)

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
