"""Warehouses as backends: chosen by short name or dotted path, never a silent fallback; the
views' SQL written once (a third backend with its own ``ops`` gets the same results as DuckDB);
no vendor branch and no Google import outside the backends.

All on DuckDB files or without any warehouse: cheap.
"""

from __future__ import annotations

import ast
import datetime
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from smolqwery.errors import ConfigurationError
from smolqwery.extractor import ExtractorType
from smolqwery.schema import Column, TableSchema
from smolqwery.settings import get_settings
from smolqwery.sql_views import render_view_sql, views_of
from smolqwery.warehouses import backend_class, get_warehouse
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.warehouses import make_batch
from .thirdbackend import DOTTED_PATH, EmbeddedWarehouse

D = datetime.date
ROOT = Path(__file__).resolve().parent.parent

TOTALS = TableSchema(
    name="totals",
    columns=(
        Column("date", "DATE", "REQUIRED"),
        Column("users", "INT64", "REQUIRED", differentiate=True),
        Column("orders", "INT64", "NULLABLE"),
        Column("revenue", "NUMERIC", "NULLABLE"),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
    rollups=("week", "month"),
)


# -- choosing a backend ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("duckdb", DuckDBWarehouse),
        ("smolqwery.warehouses.duckdb.DuckDBWarehouse", DuckDBWarehouse),
        (DOTTED_PATH, EmbeddedWarehouse),
    ],
)
def test_short_names_and_dotted_paths(value: str, expected: type[Warehouse]) -> None:
    assert backend_class(value) is expected


def test_dialect_is_the_former_name_of_vendor(tmp_path: Path) -> None:
    assert EmbeddedWarehouse(tmp_path / "w.duckdb", "ds").dialect == "embedded"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("tests.thirdbackend.NoSuchWarehouse", "cannot be imported"),
        ("tests.no_such_module.Warehouse", "cannot be imported"),
        ("tests.thirdbackend.DOTTED_PATH", "is 'tests.thirdbackend.EmbeddedWarehouse'"),
        ("smolqwery.warehouses.base.Warehouse", "does not implement"),
        ("snowflake", "must be one of duckdb, bigquery or the dotted path"),
    ],
)
def test_anything_else_is_an_error_never_duckdb(
    settings: Any, tmp_path: Path, value: str, says: str
) -> None:
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "never.duckdb")
    with pytest.raises(ConfigurationError, match="SMOLQWERY_WAREHOUSE") as info:
        backend_class(value)
    assert says in str(info.value)
    if "." in value:  # get_settings() checks the spelling; the import happens on use
        settings.SMOLQWERY_WAREHOUSE = value
        with pytest.raises(ConfigurationError, match="SMOLQWERY_WAREHOUSE"):
            get_warehouse()
        from smolqwery.checks import check_settings

        assert [m.id for m in check_settings() if "SMOLQWERY_WAREHOUSE" in m.msg] == [
            "smolqwery.E011"
        ]
    assert not (tmp_path / "never.duckdb").exists()


def test_the_third_backend_is_a_warehouse_of_its_own(settings: Any, tmp_path: Path) -> None:
    """Its vendor name is what the record remembers; its label is what the admin shows."""
    from smolqwery.admin_views import warehouse_label
    from smolqwery.checks import check_settings
    from smolqwery.warehouse_record import current_values

    settings.SMOLQWERY_WAREHOUSE = DOTTED_PATH
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "third.duckdb")
    config = get_settings()
    assert current_values(config)["warehouse"] == "embedded"
    assert current_values(config)["duckdb_path"] == str(tmp_path / "third.duckdb")
    assert warehouse_label(config).startswith("Embedded file ")
    assert not [m for m in check_settings() if m.is_serious()]


# -- the views' SQL, written once ------------------------------------------------------------


def _views(wh: Warehouse) -> dict[str, list[dict[str, Any]]]:
    rows = [
        {"date": D(2024, 1, 29) + datetime.timedelta(days=i), "users": 10 + i * i, "orders": i}
        for i in range(9)
        if i != 4  # a gap: the day after shows NULL in the delta view
    ]
    wh.create_table(TOTALS)
    wh.replace_days(make_batch(TOTALS, D(2024, 1, 29), D(2024, 2, 6), rows=rows))
    out = {}
    for name, kind in views_of(TOTALS):
        wh.create_or_replace_view(name, render_view_sql(kind, TOTALS, wh))
        out[name] = fetch_rows(wh, name, order_by=["date"])
    return out


def test_views_of_the_third_backend_equal_duckdbs(tmp_path: Path) -> None:
    """Other SQL fragments (``ops``), same views: the SQL of views knows no backend."""
    duck = DuckDBWarehouse(tmp_path / "duck.duckdb", "ds", busy_timeout=10)
    third = EmbeddedWarehouse(tmp_path / "third.duckdb", "ds", busy_timeout=10)
    for wh in (duck, third):
        wh.ensure_dataset()
    assert render_view_sql("week", TOTALS, duck) != render_view_sql("week", TOTALS, third)
    expected = _views(duck)
    assert [r["users"] for r in expected["totals_delta"]] == [10, 1, 3, 5, None, 11, 13, 15]
    assert [(r["date"], r["days"]) for r in expected["totals_week"]] == [
        (D(2024, 1, 29), 6),
        (D(2024, 2, 5), 2),
    ]
    assert _views(third) == expected


# -- fences ----------------------------------------------------------------------------------

VENDORS = frozenset({"bigquery", "duckdb"})


def test_no_vendor_branch_outside_the_backends() -> None:
    """``x == "duckdb"`` and the like only in ``smolqwery/warehouses``: elsewhere the backend's
    methods decide."""
    found = []
    for path in sorted((ROOT / "smolqwery").rglob("*.py")):
        if "warehouses" in path.parts or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value in VENDORS for o in operands):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_core_imports_no_google_package() -> None:
    """Only the BigQuery backend imports google.* (it is the ``smolqwery[bigquery]`` extra)."""
    code = (
        "import sys, django; django.setup()\n"
        "import smolqwery.runner, smolqwery.checks, smolqwery.admin_views, smolqwery.operations\n"
        "import smolqwery.migration_state, smolqwery.sql_views, smolqwery.warehouse_record\n"
        "from smolqwery.settings import get_settings\n"
        "from smolqwery.warehouses import get_warehouse\n"
        "from django.core.checks import run_checks; run_checks()\n"
        "get_warehouse(get_settings()).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'google'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_without_the_bigquery_extra_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from smolqwery.warehouses.bigquery import BigQueryWarehouse

    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)  # as if not installed
    with override_settings(SMOLQWERY_WAREHOUSE="bigquery", SMOLQWERY_BIGQUERY_PROJECT="p"):
        config = get_settings()
        with pytest.raises(ConfigurationError, match=r"smolqwery\[bigquery\]"):
            get_warehouse(config)
        [message] = BigQueryWarehouse.check_settings(config)
    assert message.id == "smolqwery.E012"
    assert "smolqwery[bigquery]" in message.hint
    assert "google-cloud-bigquery" in message.msg and "pip" not in message.msg  # said once


# -- parameters ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=15),
    data=st.data(),
)
def test_duckdb_binds_exactly_the_parameters_a_statement_uses(
    values: list[int], data: st.DataObject
) -> None:
    """One ``Params`` serves several statements (``$p1`` is not ``$p10``): each statement gets
    the values it names, in any order, and DuckDB refuses none."""
    import duckdb

    from smolqwery.warehouses.duckdb import DuckDBOperations

    p = DuckDBOperations().params()
    placeholders = [p(v, "INT64") for v in values]
    used = data.draw(st.lists(st.sampled_from(range(len(values))), min_size=1, max_size=6))
    sql = "SELECT " + ", ".join(placeholders[i] for i in used)
    with duckdb.connect() as con:
        assert con.execute(sql, p.bind(sql)).fetchone() == tuple(values[i] for i in used)


def test_settings_know_the_short_names_the_registry_resolves() -> None:
    from smolqwery.settings import WAREHOUSES
    from smolqwery.warehouses import BACKENDS

    assert set(WAREHOUSES) == set(BACKENDS)
    assert {backend_class(name).vendor for name in BACKENDS} == set(BACKENDS)
