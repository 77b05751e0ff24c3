"""``manage.py smolqwery_dbt_sources``: a dbt sources.yml read back by a YAML parser, whose
freshness queries run on the DuckDB file and give the ledger's last export.

dbt itself is not a dependency: docs/consuming.md records the run with dbt-core and
dbt-duckdb (``dbt parse``, ``dbt source freshness``) on a file exported by the demo.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from smolqwery.dbt_sources import to_yaml
from smolqwery.sql_views import render_view_sql, views_of
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.fixtures.warehouses import make_batch

from .activityapp.extractors import ItemsPerDay, WeeklyRetention

D = datetime.date

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_yaml_reads_back_as_written(document: Any) -> None:
    """Strings that YAML would take for something else ("yes", "1.0", "null", "#", ": ",
    line breaks, unicode) stay strings; nesting is kept."""
    assert yaml.safe_load(to_yaml(document)) == document


@pytest.mark.django_db
def test_sources_of_the_configured_tables(settings: Any, tmp_path: Path) -> None:
    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "shop.duckdb"
    settings.SMOLQWERY_DATASET = "analytics"
    settings.SMOLQWERY_EXTRACTORS = [
        "tests.activityapp.extractors.ItemsPerDay",
        "tests.activityapp.extractors.WeeklyRetention",
    ]
    items, cohorts = ItemsPerDay().get_schema(), WeeklyRetention().get_schema()
    wh = DuckDBWarehouse(settings.SMOLQWERY_DUCKDB_PATH, "analytics", busy_timeout=10)
    wh.ensure_dataset()
    for table in (items, cohorts):
        wh.create_table(table)
        for name, kind in views_of(table):
            wh.create_or_replace_view(name, render_view_sql(kind, table, wh))
    rows = [{"date": D(2026, 3, d), "count": d, "total": d * 10} for d in (1, 2, 3)]
    wh.replace_days(make_batch(items, D(2026, 3, 1), D(2026, 3, 3), rows=rows))
    wh.close()

    out = io.StringIO()
    call_command("smolqwery_dbt_sources", stdout=out, stderr=io.StringIO())
    (source,) = yaml.safe_load(out.getvalue())["sources"]
    assert (source["name"], source["database"], source["schema"]) == (
        "smolqwery",
        "shop",
        "analytics",
    )
    assert source["config"]["freshness"]["warn_after"] == {"count": 36, "period": "hour"}
    tables = {t["name"]: t for t in source["tables"]}
    assert list(tables) == [
        "items_per_day",
        "items_per_day_delta",
        "items_per_day_week",
        "items_per_day_month",
        "weekly_retention",
        "weekly_retention_retention",
        "smolqwery_ledger",
    ]
    item = tables["items_per_day"]
    assert item["meta"]["smolqwery"]["first_day"] == "2026-03-01"
    assert item["meta"]["smolqwery"]["exported_days"] == 3
    assert [(c["name"], c["data_type"]) for c in item["columns"]] == [
        ("date", "date"),
        ("count", "bigint"),
        ("total", "bigint"),
    ]
    assert item["columns"][1]["description"] == "Rows created that day"
    assert tables["items_per_day_delta"]["config"] == {"freshness": None}
    assert tables["weekly_retention"]["meta"]["smolqwery"]["last_day"] is None

    # The freshness queries are valid SQL on the file: the ledger's last export, or NULL.
    con = duckdb.connect(str(settings.SMOLQWERY_DUCKDB_PATH), read_only=True)
    try:
        (exported,) = con.execute(item["config"]["loaded_at_query"]).fetchone()
        (never,) = con.execute(tables["weekly_retention"]["config"]["loaded_at_query"]).fetchone()
        (latest,) = con.execute(
            "SELECT max(exported_at) FROM analytics.smolqwery_ledger"
        ).fetchone()
    finally:
        con.close()
    assert exported == latest and never is None


@pytest.mark.django_db
def test_loaded_at_field_form_and_output_file(settings: Any, tmp_path: Path) -> None:
    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "shop.duckdb"
    settings.SMOLQWERY_EXTRACTORS = ["tests.activityapp.extractors.ItemsPerDay"]
    wh = DuckDBWarehouse(settings.SMOLQWERY_DUCKDB_PATH, settings.SMOLQWERY_DATASET)
    wh.ensure_dataset()
    wh.create_table(ItemsPerDay().get_schema())
    wh.close()
    target = tmp_path / "sources.yml"
    call_command(
        "smolqwery_dbt_sources",
        "--loaded-at-field",
        "--name=shop",
        f"--output={target}",
        stderr=io.StringIO(),
    )
    (source,) = yaml.safe_load(target.read_text())["sources"]
    assert source["name"] == "shop"
    assert source["tables"][0]["config"] == {"loaded_at_field": 'CAST("date" AS TIMESTAMP)'}


def test_bigquery_freshness_reads_each_table_s_own_ledger() -> None:
    """BigQuery keeps a ledger per table (``smolqwery_ledger_<table>``): the freshness query and
    the ledger sources name it, never the shared ledger, which BigQuery no longer has."""
    from smolqwery.dbt_sources import Freshness, build_sources
    from smolqwery.warehouses.bigquery import BigQueryWarehouse

    ops = BigQueryWarehouse.ops_class(None)
    assert ops.capabilities.ledger_per_table
    tables = [ItemsPerDay().get_schema(), WeeklyRetention().get_schema()]
    (source,) = build_sources(
        ops,
        "BigQuery dataset shop.analytics",
        "analytics",
        tables,
        {},
        database="shop",
        source_name="smolqwery",
        freshness=Freshness(),
    )["sources"]
    entries = {t["name"]: t for t in source["tables"]}
    query = entries["items_per_day"]["config"]["loaded_at_query"]
    assert "`shop`.`analytics`.`smolqwery_ledger_items_per_day`" in query
    assert "smolqwery_ledger_weekly_retention" in entries
    assert "smolqwery_ledger" not in entries
