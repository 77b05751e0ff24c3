"""Dataclass → warehouse columns.

The result, :class:`TableSchema`, is plain data: it is what migrations carry as literals, what
warehouses create and compare, and what rows are validated against. The Arrow type of each
column (:func:`arrow_schema`) is decided here too, beside the warehouse type it carries.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from .errors import SchemaError
from .identifiers import RESERVED_TABLE_PREFIX, validate_column_name, validate_table_name
from .vocabulary import SQ_METADATA_KEY, ExtractorType

if TYPE_CHECKING:
    import pyarrow as pa

    from .interface import BaseExtractor

Mode = Literal["REQUIRED", "NULLABLE"]

#: Python type → BigQuery type. Order matters: ``bool`` before ``int`` (bool is an int) and
#: ``datetime`` before ``date`` (datetime is a date) — the 0.1.3 defects D1 and D2.
TYPE_MAP: tuple[tuple[type, str], ...] = (
    (bool, "BOOL"),
    (int, "INT64"),
    (float, "FLOAT64"),
    (decimal.Decimal, "NUMERIC"),
    (str, "STRING"),
    (bytes, "BYTES"),
    (datetime.datetime, "TIMESTAMP"),
    (datetime.date, "DATE"),
)
SUPPORTED_TYPES = frozenset(bq for _, bq in TYPE_MAP)
NUMERIC_TYPES = frozenset({"INT64", "FLOAT64", "NUMERIC"})
DAY_TYPES = frozenset({"DATE", "TIMESTAMP"})
#: NUMERIC is BigQuery's DECIMAL(38, 9) (DuckDB: the same DECIMAL(38, 9)).
NUMERIC_PRECISION = 38
NUMERIC_SCALE = 9
#: Period views a date-aggregated table may ask for (``<table>_week``, ``<table>_month``).
ROLLUP_PERIODS = ("week", "month")


@dataclasses.dataclass(frozen=True)
class Column:
    """One warehouse column."""

    name: str
    type: str
    mode: Mode = "REQUIRED"
    description: str = ""
    differentiate: bool = False

    @property
    def nullable(self) -> bool:
        return self.mode == "NULLABLE"

    def to_dict(self) -> dict[str, Any]:
        """Plain literal form, as written into migration files."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.description:
            out["description"] = self.description
        if self.differentiate:
            out["differentiate"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        return cls(
            name=data["name"],
            type=data["type"],
            mode=data.get("mode", "REQUIRED"),
            description=data.get("description", ""),
            differentiate=bool(data.get("differentiate", False)),
        )


@dataclasses.dataclass(frozen=True)
class TableSchema:
    """A warehouse table: its columns, the column that places rows in days, and its kind."""

    name: str
    columns: tuple[Column, ...]
    kind: ExtractorType
    date_column: str
    description: str = ""
    clustering: tuple[str, ...] = ()
    rollups: tuple[str, ...] = ()
    #: A cohort table (:class:`smolqwery.cohorts.CohortRetention`'s), which gets the
    #: ``<table>_retention`` view: said explicitly, so that a table of the same columns is not
    #: taken for one.
    cohort: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def differentiated(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.differentiate)

    @property
    def delta_view_name(self) -> str:
        return f"{self.name}_delta"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def date_column_type(self) -> str:
        return self.column(self.date_column).type

    def to_dict(self) -> dict[str, Any]:
        """Plain literal form, as written into migration files (stable key order)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "date_column": self.date_column,
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.description:
            out["description"] = self.description
        if self.clustering:
            out["clustering"] = list(self.clustering)
        if self.rollups:
            out["rollups"] = list(self.rollups)
        if self.cohort:
            out["cohort"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(
            name=data["name"],
            kind=ExtractorType(data["kind"]),
            date_column=data["date_column"],
            columns=tuple(Column.from_dict(c) for c in data["columns"]),
            description=data.get("description", ""),
            clustering=tuple(data.get("clustering", ())),
            rollups=tuple(data.get("rollups", ())),
            cohort=bool(data.get("cohort", False)),
        )

    def fingerprint(self) -> str:
        """Short hash of the storage layout (names, types, modes), recorded in the ledger."""
        layout = [[c.name, c.type, c.mode] for c in self.columns]
        digest = hashlib.sha256(json.dumps(layout, separators=(",", ":")).encode()).hexdigest()
        return digest[:16]

    def differences(self, other: TableSchema) -> list[str]:
        """Human-readable differences in storage layout between ``self`` and ``other``."""
        mine = {c.name: c for c in self.columns}
        theirs = {c.name: c for c in other.columns}
        out: list[str] = []
        for name, col in mine.items():
            if name not in theirs:
                out.append(f"column {name!r} ({col.type} {col.mode}) is missing")
                continue
            them = theirs[name]
            if (col.type, col.mode) != (them.type, them.mode):
                out.append(
                    f"column {name!r} is {them.type} {them.mode}, expected {col.type} {col.mode}"
                )
        for name, col in theirs.items():
            if name not in mine:
                out.append(f"column {name!r} ({col.type} {col.mode}) is unexpected")
        if not out and self.column_names != other.column_names:
            out.append(
                f"column order is {list(other.column_names)}, expected {list(self.column_names)}"
            )
        return out


# -- Arrow: how each type travels to a warehouse --------------------------------------------


def arrow_type(bq_type: str) -> pa.DataType:
    """The Arrow type that carries a BigQuery type exactly (Parquet loads, DuckDB scans)."""
    import pyarrow as pa

    return {
        "INT64": pa.int64(),
        "FLOAT64": pa.float64(),
        "BOOL": pa.bool_(),
        "STRING": pa.string(),
        "BYTES": pa.binary(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "NUMERIC": pa.decimal128(NUMERIC_PRECISION, NUMERIC_SCALE),
    }[bq_type]


def arrow_schema(table: TableSchema) -> pa.Schema:
    """Arrow schema of a table, nullability included."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in table.columns]
    )


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``Optional[X]`` / ``X | None`` → ``(X, True)``; anything else → ``(annotation, False)``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], nullable
        return annotation, nullable
    return annotation, False


def python_type_to_bigquery(annotation: Any) -> str | None:
    """The BigQuery type of a plain (non-Optional) annotation, or None when unsupported."""
    while isinstance(getattr(annotation, "__supertype__", None), type):
        annotation = annotation.__supertype__  # typing.NewType("UserId", int) → int
    if not isinstance(annotation, type):
        return None
    for py_type, bq_type in TYPE_MAP:
        # Exact types first so that bool is never INT64 and datetime never DATE.
        if annotation is py_type:
            return bq_type
    for py_type, bq_type in TYPE_MAP:
        if issubclass(annotation, py_type):
            return bq_type
    return None


def _resolve_hints(cls: type, extractor_name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # NameError for unresolvable string annotations, and friends
        raise SchemaError(
            f"{extractor_name}: cannot resolve the annotations of dataclass "
            f"{cls.__qualname__}: {exc}"
        ) from exc


def _sq_options(field: dataclasses.Field[Any]) -> Mapping[str, Any]:
    options = field.metadata.get(SQ_METADATA_KEY, {})
    return options if isinstance(options, Mapping) else {}


def build_columns(
    cls: type, *, kind: ExtractorType, date_column: str, extractor_name: str
) -> tuple[Column, ...]:
    """Columns of ``cls``, in declaration order, with the leading ``date`` of aggregated tables."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise SchemaError(f"{extractor_name}: get_dataclass() must return a dataclass, got {cls!r}")
    hints = _resolve_hints(cls, extractor_name)
    columns: list[Column] = []
    if kind is ExtractorType.date_aggregated:
        columns.append(Column(date_column, "DATE", "REQUIRED", "Day the row describes"))

    for field in dataclasses.fields(cls):
        where = f"{extractor_name}: field {cls.__qualname__}.{field.name}"
        annotation = hints.get(field.name, field.type)
        inner, nullable = unwrap_optional(annotation)
        bq_type = python_type_to_bigquery(inner)
        if bq_type is None:
            raise SchemaError(
                f"{where} has unsupported type {annotation!r}; use int, float, bool, str, bytes, "
                "Decimal, datetime.date or datetime.datetime, optionally Optional[...]"
            )
        try:
            validate_column_name(field.name)
        except ValueError as exc:
            raise SchemaError(f"{where}: {exc}") from exc
        if kind is ExtractorType.date_aggregated and field.name == date_column:
            raise SchemaError(
                f"{where}: date-aggregated tables get their {date_column!r} column from "
                "smolqwery; remove this field"
            )
        options = _sq_options(field)
        differentiate = bool(options.get("differentiate", False))
        if differentiate:
            if kind is not ExtractorType.date_aggregated:
                raise SchemaError(
                    f"{where}: differentiate=True is only allowed on date-aggregated extractors"
                )
            if bq_type not in NUMERIC_TYPES:
                raise SchemaError(
                    f"{where}: differentiate=True needs a numeric field (int, float, Decimal), "
                    f"got {bq_type}"
                )
        columns.append(
            Column(
                name=field.name,
                type=bq_type,
                mode="NULLABLE" if nullable else "REQUIRED",
                description=str(options.get("description") or ""),
                differentiate=differentiate,
            )
        )
    return tuple(columns)


def build_table_schema(extractor: BaseExtractor[Any]) -> TableSchema:
    """The table an extractor fills, validated (raises :class:`SchemaError` naming the problem)."""
    name = extractor.get_name()
    kind = extractor.get_extractor_type()
    if not isinstance(kind, ExtractorType):
        raise SchemaError(
            f"{name}: get_extractor_type() must return an ExtractorType, got {kind!r}"
        )
    table = extractor.get_table_name()
    try:
        validate_table_name(table)
    except ValueError as exc:
        raise SchemaError(f"{name}: {exc}") from exc
    if table.lower().startswith(RESERVED_TABLE_PREFIX):
        raise SchemaError(
            f"{name}: table name {table!r} starts with {RESERVED_TABLE_PREFIX!r}, which smolqwery "
            "reserves for its own tables; override get_table_name()"
        )
    date_column = extractor.get_date_field()
    columns = build_columns(
        extractor.get_dataclass(), kind=kind, date_column=date_column, extractor_name=name
    )
    by_name = {c.name: c for c in columns}
    seen: dict[str, str] = {}
    for col in columns:
        # BigQuery and DuckDB compare column names case-insensitively.
        if col.name.lower() in seen:
            raise SchemaError(
                f"{name}: columns {seen[col.name.lower()]!r} and {col.name!r} have the same "
                "name to the warehouse (names are case-insensitive)"
            )
        seen[col.name.lower()] = col.name
    if date_column not in by_name:
        raise SchemaError(
            f"{name}: individual-rows dataclass needs a {date_column!r} field "
            "(datetime.datetime or datetime.date) placing each row in its day; "
            "override get_date_field() to use another name"
        )
    date_col = by_name[date_column]
    if date_col.type not in DAY_TYPES or date_col.nullable:
        raise SchemaError(
            f"{name}: field {date_column!r} must be a non-Optional datetime.datetime or "
            f"datetime.date, got {date_col.type} {date_col.mode}"
        )
    clustering = tuple(extractor.get_clustering_fields())
    for col_name in clustering:
        if col_name not in by_name:
            raise SchemaError(f"{name}: clustering column {col_name!r} is not a field")
    rollups = tuple(extractor.get_rollups())
    for period in rollups:
        if period not in ROLLUP_PERIODS:
            raise SchemaError(f"{name}: rollup {period!r} must be one of {ROLLUP_PERIODS}")
    if rollups and kind is not ExtractorType.date_aggregated:
        raise SchemaError(f"{name}: rollups need a date-aggregated extractor")
    return TableSchema(
        name=table,
        columns=columns,
        kind=kind,
        date_column=date_column,
        description=extractor.get_table_description(),
        clustering=clustering,
        rollups=rollups,
    )
