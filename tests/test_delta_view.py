"""The ``<table>_delta`` view, on DuckDB and on the BigQuery emulator (same results on both)."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from smolqwery.extractor import ExtractorType
from smolqwery.schema import Column, TableSchema
from smolqwery.sql_views import render_view_sql, view_name, views_of
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.warehouses import make_batch

D = datetime.date

USER = TableSchema(
    name="user",
    columns=(
        Column("date", "DATE", "REQUIRED"),
        Column("users", "INT64", "REQUIRED", differentiate=True),
        Column("label", "STRING", "NULLABLE"),
        Column("revenue", "NUMERIC", "NULLABLE", differentiate=True),
        Column("ratio", "FLOAT64", "REQUIRED"),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
)


def _load(wh: Warehouse, table: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
    """Create the table and its delta view, and load ``rows`` day by day (gaps allowed)."""
    wh.create_table(table)
    runs: list[list[Mapping[str, Any]]] = []  # runs of consecutive days, one batch each
    for row in sorted(rows, key=lambda r: r["date"]):
        if runs and row["date"] - runs[-1][-1]["date"] == datetime.timedelta(days=1):
            runs[-1].append(row)
        else:
            runs.append([row])
    for run in runs:
        wh.replace_days(make_batch(table, run[0]["date"], run[-1]["date"], rows=run))
    wh.create_or_replace_view(
        table.delta_view_name, render_view_sql("delta", table, wh), "delta view"
    )


def _delta(wh: Warehouse, table: TableSchema, column: str) -> list[tuple[D, Any]]:
    rows = fetch_rows(wh, table.delta_view_name, order_by=["date"])
    return [(r["date"], r[column]) for r in rows]


def _row(day: D, users: int | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"date": day, "users": users, "label": None, "revenue": None}
    row["ratio"] = 0.5
    row.update(extra)
    return row


def test_readme_example(warehouse: Warehouse) -> None:
    """The 0.1.3 README: 10, 20, 35 → 10, 10, 15; other columns unchanged."""
    rows = [
        _row(D(2022, 1, 1), 10, label="a", ratio=1.5),
        _row(D(2022, 1, 2), 20, label="b", ratio=2.5),
        _row(D(2022, 1, 3), 35, label=None, ratio=3.5),
    ]
    _load(warehouse, USER, rows)
    view = fetch_rows(warehouse, "user_delta", order_by=["date"])
    assert [(r["date"], r["users"]) for r in view] == [
        (D(2022, 1, 1), 10),
        (D(2022, 1, 2), 10),
        (D(2022, 1, 3), 15),
    ]
    # Non-differentiated columns are kept, unchanged and in table order (0.1.3 dropped them).
    assert list(view[0]) == ["date", "users", "label", "revenue", "ratio"]
    assert [r["label"] for r in view] == ["a", "b", None]
    assert [r["ratio"] for r in view] == [1.5, 2.5, 3.5]


def test_d07_day_after_a_gap_is_null_never_its_running_total(warehouse: Warehouse) -> None:
    rows = [
        _row(D(2022, 1, 1), 10),
        _row(D(2022, 1, 2), 20),
        # 2022-01-03 and 2022-01-04 missing
        _row(D(2022, 1, 5), 50),
        _row(D(2022, 1, 6), 56),
    ]
    _load(warehouse, USER, rows)
    assert _delta(warehouse, USER, "users") == [
        (D(2022, 1, 1), 10),
        (D(2022, 1, 2), 10),
        (D(2022, 1, 5), None),  # 0.1.3 showed 50 (previous day counted as 0)
        (D(2022, 1, 6), 6),
    ]


def test_gap_at_month_and_year_boundaries(warehouse: Warehouse) -> None:
    """ "Previous calendar day" is date arithmetic, not "previous row" nor day-of-month."""
    rows = [
        _row(D(2021, 12, 31), 100),
        _row(D(2022, 1, 1), 110),
        _row(D(2022, 2, 28), 200),
        _row(D(2022, 3, 1), 230),
    ]
    _load(warehouse, USER, rows)
    assert _delta(warehouse, USER, "users") == [
        (D(2021, 12, 31), 100),
        (D(2022, 1, 1), 10),
        (D(2022, 2, 28), None),
        (D(2022, 3, 1), 30),
    ]


def test_null_values(warehouse: Warehouse) -> None:
    """A NULL value, or a NULL the day before, gives NULL; the day after recovers."""
    dec = decimal.Decimal
    rows = [
        _row(D(2022, 1, 1), 1, revenue=None),
        _row(D(2022, 1, 2), 2, revenue=dec("10.5")),
        _row(D(2022, 1, 3), 3, revenue=None),
        _row(D(2022, 1, 4), 4, revenue=dec("12.25")),
        _row(D(2022, 1, 5), 5, revenue=dec("13")),
    ]
    _load(warehouse, USER, rows)
    assert _delta(warehouse, USER, "revenue") == [
        (D(2022, 1, 1), None),  # first day: its own value, which is NULL
        (D(2022, 1, 2), None),  # previous value unknown
        (D(2022, 1, 3), None),
        (D(2022, 1, 4), None),
        (D(2022, 1, 5), dec("0.75")),
    ]
    assert [v for _, v in _delta(warehouse, USER, "users")] == [1, 1, 1, 1, 1]


def test_single_day_and_empty_table(warehouse: Warehouse) -> None:
    _load(warehouse, USER, [])
    assert fetch_rows(warehouse, "user_delta") == []
    warehouse.replace_days(make_batch(USER, D(2022, 5, 1), rows=[_row(D(2022, 5, 1), 7)]))
    assert _delta(warehouse, USER, "users") == [(D(2022, 5, 1), 7)]


def test_sql_uses_window_functions_and_quoted_identifiers(warehouse: Warehouse) -> None:
    sql = render_view_sql("delta", USER, warehouse)
    assert "LAG(" in sql and "JOIN" not in sql.upper()
    assert warehouse.view_reference("user") in sql
    quote = "`" if warehouse.vendor == "bigquery" else '"'
    assert f"{quote}users{quote}" in sql


def test_views_of_a_table() -> None:
    assert views_of(USER) == [("user_delta", "delta")]
    plain = TableSchema(
        "plain",
        (Column("date", "DATE"), Column("n", "INT64")),
        ExtractorType.date_aggregated,
        "date",
        rollups=("month", "week"),
    )
    assert views_of(plain) == [("plain_week", "week"), ("plain_month", "month")]
    assert view_name("delta", "email_message") == "email_message_delta"
    with pytest.raises(ValueError, match="unknown view kind"):
        view_name("year", "user")


def test_delta_needs_an_aggregated_table_with_differentiated_columns(
    duckdb_warehouse: Warehouse,
) -> None:
    email = TableSchema(
        "email", (Column("timestamp", "TIMESTAMP"),), ExtractorType.individual_rows, "timestamp"
    )
    with pytest.raises(ValueError, match="date-aggregated"):
        render_view_sql("delta", email, duckdb_warehouse)
    plain = TableSchema(
        "plain",
        (Column("date", "DATE"), Column("n", "INT64")),
        ExtractorType.date_aggregated,
        "date",
    )
    with pytest.raises(ValueError, match="no differentiated column"):
        render_view_sql("delta", plain, duckdb_warehouse)
