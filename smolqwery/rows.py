"""Rows on their way from an extractor to a warehouse: validation and Arrow conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from .schema import TableSchema

#: NUMERIC is BigQuery's DECIMAL(38, 9).
NUMERIC_PRECISION = 38
NUMERIC_SCALE = 9


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
