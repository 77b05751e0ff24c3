"""Rebuilding a 0.1.3 table with the types it should have had (issue 14, point 8; D1, D2).

0.1.3 stored ``bool`` fields as INT64 and ``datetime`` fields as DATE. ``rebuild_table`` turns
such a table into the right layout with every row kept, atomically, and back without loss.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolqwery.errors import SchemaMismatchError, WarehouseError
from smolqwery.extractor import ExtractorType
from smolqwery.schema import Column, TableSchema
from smolqwery.warehouses.base import NOT_A_BOOL, Warehouse
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.fixtures.warehouses import make_batch

UTC = datetime.timezone.utc
D = datetime.date

#: A table as 0.1.3 created it for ``timestamp: datetime``, ``opened: bool``, ``seen: bool |
#: None``.
LEGACY = TableSchema(
    name="flags",
    kind=ExtractorType.individual_rows,
    date_column="timestamp",
    columns=(
        Column("timestamp", "DATE"),
        Column("opened", "INT64"),
        Column("seen", "INT64", "NULLABLE"),
        Column("label", "STRING"),
    ),
)
FIXED = TableSchema(
    name="flags",
    kind=ExtractorType.individual_rows,
    date_column="timestamp",
    description="Flags, rebuilt",
    columns=(
        Column("timestamp", "TIMESTAMP", description="When"),
        Column("opened", "BOOL"),
        Column("seen", "BOOL", "NULLABLE"),
        Column("label", "STRING"),
    ),
)
OLD_ROWS = [
    {"timestamp": D(2022, 3, 7), "opened": 1, "seen": None, "label": "a"},
    {"timestamp": D(2022, 3, 7), "opened": 0, "seen": 1, "label": "b"},
    {"timestamp": D(2022, 3, 9), "opened": 1, "seen": 0, "label": "c"},
]


def midnight_utc(day: D) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), UTC)


def converted(row: dict[str, Any]) -> dict[str, Any]:
    """The reference: what a 0.1.3 row becomes."""
    seen = row["seen"]
    return {
        "timestamp": midnight_utc(row["timestamp"]),
        "opened": bool(row["opened"]),
        "seen": None if seen is None else bool(seen),
        "label": row["label"],
    }


def fill(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    wh.create_table(LEGACY)
    # One batch per day: a batch spanning year 1 to 9999 would carry millions of empty days.
    for day in sorted({r["timestamp"] for r in rows}):
        of_day = [r for r in rows if r["timestamp"] == day]
        wh.replace_days(make_batch(LEGACY, day, day, of_day, tz=UTC))


def layout(wh: Warehouse) -> list[tuple[str, str, str]]:
    return [(c.name, c.type, c.mode) for c in wh.get_table_columns("flags") or ()]


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    found: Warehouse = request.getfixturevalue(f"{request.param}_warehouse")
    return found


def test_rebuild_keeps_every_row_and_reverses_exactly(wh: Warehouse) -> None:
    fill(wh, OLD_ROWS)
    ledger = wh.exported_days("flags")

    assert wh.rebuild_table(LEGACY, FIXED) is True
    assert layout(wh) == [(c.name, c.type, c.mode) for c in FIXED.columns]
    assert fetch_rows(wh, "flags", order_by=["label"]) == [converted(r) for r in OLD_ROWS]
    assert next(c.description for c in wh.get_table_columns("flags") or ()) == "When"
    assert wh.exported_days("flags") == ledger  # the days stay exported
    assert not any(name.startswith("smolqwery_rebuild") for name in wh.list_tables())
    if wh.vendor == "bigquery":
        table = wh.get_table("flags")  # type: ignore[attr-defined]
        assert table.time_partitioning.field == "timestamp"
    assert wh.rebuild_table(LEGACY, FIXED) is False  # a re-run changes nothing

    # A row exported after the upgrade has a time of day; a DATE keeps only its UTC day.
    late = datetime.datetime(
        2022, 3, 10, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    new_row = {"timestamp": late, "opened": True, "seen": None, "label": "d"}
    wh.replace_days(make_batch(FIXED, D(2022, 3, 10), rows=[new_row], tz=late.tzinfo))

    assert wh.rebuild_table(FIXED, LEGACY) is True
    assert layout(wh) == [(c.name, c.type, c.mode) for c in LEGACY.columns]
    back = fetch_rows(wh, "flags", order_by=["label"])
    assert back[:3] == OLD_ROWS  # the old rows come back exactly
    assert back[3] == {"timestamp": D(2022, 3, 11), "opened": 1, "seen": None, "label": "d"}


def test_an_int_that_is_not_a_bool_stops_the_rebuild_and_changes_nothing(wh: Warehouse) -> None:
    rows = [*OLD_ROWS, {"timestamp": D(2022, 3, 9), "opened": 2, "seen": None, "label": "z"}]
    fill(wh, rows)
    with pytest.raises(WarehouseError, match=NOT_A_BOOL):
        wh.rebuild_table(LEGACY, FIXED)
    assert layout(wh) == [(c.name, c.type, c.mode) for c in LEGACY.columns]
    assert fetch_rows(wh, "flags", order_by=["label"]) == sorted(rows, key=lambda r: r["label"])
    assert not any(name.startswith("smolqwery_rebuild") for name in wh.list_tables())


def test_a_table_in_neither_layout_is_refused(duckdb_warehouse: Warehouse) -> None:
    other = dataclasses.replace(LEGACY, columns=(*LEGACY.columns[:3], Column("label", "INT64")))
    duckdb_warehouse.create_table(other)
    with pytest.raises(SchemaMismatchError, match="neither the layout to rebuild"):
        duckdb_warehouse.rebuild_table(LEGACY, FIXED)
    with pytest.raises(ValueError, match="cannot rebuild label STRING -> INT64"):
        duckdb_warehouse.rebuild_table(LEGACY, other)


_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "timestamp": st.dates(D(1, 1, 1), D(9999, 12, 31)),
            "opened": st.sampled_from([0, 1]),
            "seen": st.sampled_from([0, 1, None]),
        }
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=12, deadline=None)
@given(rows=_ROWS)
def test_rebuild_there_and_back_is_lossless(rows: list[dict[str, Any]]) -> None:
    """Against the reference: each DATE becomes midnight UTC and each 0/1 a bool, and back."""
    rows = [{**r, "label": f"r{i:02d}"} for i, r in enumerate(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        wh = DuckDBWarehouse(Path(tmp) / "wh.duckdb", "legacy")
        wh.ensure_dataset()
        fill(wh, rows)
        wh.rebuild_table(LEGACY, FIXED)
        assert fetch_rows(wh, "flags", order_by=["label"]) == [converted(r) for r in rows]
        wh.rebuild_table(FIXED, LEGACY)
        assert fetch_rows(wh, "flags", order_by=["label"]) == rows
