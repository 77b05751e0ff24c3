"""The queryset extractor: declare the columns (a dataclass), return a queryset per day.

smolqwery compiles the queryset with Django's own compiler and reads it as Arrow record
batches (:mod:`smolqwery.arrow_source`), validated column by column in Arrow
(:mod:`smolqwery.arrow_validation`): no Python object per row. Use it for large tables; the
0.1.3 way (``extract()`` yielding dataclass instances) stays for rows that need Python.
"""

from __future__ import annotations

import dataclasses
import datetime
import operator
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .errors import SmolqweryError
from .interface import BaseExtractor, D
from .vocabulary import ExtractorType

if TYPE_CHECKING:
    from django.db.models import QuerySet

#: How the export reads a queryset extractor (see :attr:`QuerySetExtractor.read_as`).
Reader = Literal["auto", "adbc", "dbapi"]
#: Every value of :attr:`QuerySetExtractor.read_as` (``manage.py check`` refuses others).
READ_AS = ("auto", "adbc", "dbapi", "rows")

__all__ = ["CompiledQuery", "QuerySetExtractor", "QueryShapeError", "compile_queryset"]

#: Rows per database round trip of the row path (``extract()``).
ITERATOR_CHUNK = 5000


class QueryShapeError(SmolqweryError):
    """The queryset does not select the columns the dataclass declares."""


@dataclasses.dataclass(frozen=True)
class CompiledQuery:
    """A queryset compiled by Django: SQL in Django's ``%s`` paramstyle and its parameters."""

    using: str
    sql: str
    params: tuple[Any, ...]
    #: For each wanted column (dataclass order): its position in the SELECT list.
    positions: tuple[int, ...]
    #: For each wanted column: the expression Django selects (its ``output_field``).
    expressions: tuple[Any, ...]
    #: True when Django found the result empty without asking the database (``id__in=[]``).
    empty: bool = False


def compile_queryset(queryset: QuerySet[Any, Any], names: Sequence[str]) -> CompiledQuery:
    """Compile ``queryset`` with Django's own compiler, its columns matched to ``names``.

    A ``.values()``/``.values_list()`` queryset keeps its columns (they must be exactly
    ``names``, in any order); a model queryset gets ``.values(*names)``.
    """
    from django.core.exceptions import EmptyResultSet
    from django.db.models import QuerySet

    if not isinstance(queryset, QuerySet):
        raise QueryShapeError(
            f"get_queryset() must return a QuerySet, got {type(queryset).__name__}"
        )
    if getattr(queryset, "_fields", None) is None:
        from django.core.exceptions import FieldError

        try:
            queryset = queryset.values(*names)
        except FieldError as exc:
            raise QueryShapeError(
                f"get_queryset() returned {queryset.model.__name__} objects, whose fields are "
                f"not all the dataclass's {list(names)} ({exc}): return .values() naming "
                "each of them, renaming with annotations (e.g. "
                ".values('is_staff', timestamp=F('date_joined')))"
            ) from exc
    query = queryset.query
    # The order of Django's SELECT list: Django 5.2+ records it (values_list() and extra()
    # columns in the order given); before, extra(select=), then fields, then annotations.
    order = getattr(query, "selected", None)
    selected = (
        list(order)
        if order
        else [*query.extra_select, *query.values_select, *query.annotation_select]
    )
    if sorted(selected) != sorted(names):
        missing = [name for name in names if name not in selected]
        extra = [name for name in selected if name not in names]
        raise QueryShapeError(
            f"get_queryset() selects {selected}, the dataclass declares {list(names)}"
            + (f"; missing: {missing}" if missing else "")
            + (f"; not in the dataclass: {extra}" if extra else "")
            + ": select exactly the dataclass's fields (values()/values_list() with annotations)"
        )
    compiler = query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return CompiledQuery(queryset.db, "", (), (), (), empty=True)
    expressions = [entry[0] for entry in compiler.select]
    if len(expressions) != len(selected):  # pragma: no cover - Django selects what it names
        raise QueryShapeError(f"the compiled query selects {len(expressions)} columns")
    positions = tuple(selected.index(name) for name in names)
    return CompiledQuery(
        using=queryset.db,
        sql=sql,
        params=tuple(params),
        positions=positions,
        expressions=tuple(expressions[p] for p in positions),
    )


class QuerySetExtractor(BaseExtractor[D]):
    """An extractor whose rows are a queryset: ``.values()``/``.values_list()`` (annotations
    allowed) selecting exactly the dataclass's fields, or a model queryset (smolqwery then
    selects the fields by name). Each field's value is what Django gives for that column.

    ``extract()`` is implemented too (the row path, one dataclass per row), so everything that
    reads rows — ``read_as = "rows"``, 0.1.3 code calling ``extract()`` — works.
    """

    #: How the export reads the queryset: ``"auto"`` (ADBC on PostgreSQL and SQLite files,
    #: Django's DB-API cursor elsewhere), ``"adbc"``, ``"dbapi"``, or ``"rows"`` (the row path,
    #: ``extract()``: for comparison; it is 3-5x slower).
    read_as: ClassVar[str] = "auto"

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    @abstractmethod
    def get_queryset(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> QuerySet[Any, Any]:
        """The rows of ``[date_start, date_end)`` (one local day, aware datetimes)."""

    def get_field_names(self) -> tuple[str, ...]:
        """The dataclass fields the queryset must select, in dataclass order."""
        return tuple(f.name for f in dataclasses.fields(self.get_dataclass()))  # type: ignore[arg-type]

    def get_reader(self) -> Reader:
        """The Arrow reader to use (``read_as`` unless it is ``"rows"``)."""
        return "auto" if self.read_as == "rows" else self.read_as  # type: ignore[return-value]

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[D]:
        """The row path: the same compiled query through Django's converters, one dataclass
        per row (what smolqwery 0.1.3 extractors do by hand)."""
        from django.db import connections

        cls: Any = self.get_dataclass()
        names = self.get_field_names()
        queryset = self.get_queryset(date_start, date_end)
        compiled = compile_queryset(queryset, names)
        if compiled.empty:
            return
        if getattr(queryset, "_fields", None) is None:
            queryset = queryset.values(*names)
        compiler = queryset.query.get_compiler(using=compiled.using)
        chunked = connections[compiled.using].features.can_use_chunked_reads
        positions = compiled.positions
        getter = operator.itemgetter(*positions)
        rows = compiler.results_iter(chunked_fetch=chunked, chunk_size=ITERATOR_CHUNK)
        if len(positions) == 1:
            for row in rows:
                yield cls(row[positions[0]])
        else:
            for row in rows:
                yield cls(*getter(row))
