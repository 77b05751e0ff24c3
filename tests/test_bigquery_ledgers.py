"""BigQuery's ledgers, one per export table (issue 17, docs/scaling.md), on the emulator.

BigQuery cancels a transaction that mutates a table another running transaction mutates. A
replacement of table T must therefore mutate T and T's own ledger only; then replacements of
different tables commit concurrently. The shared ledger of a warehouse written before 1.0 moves
into the per-table ledgers in place, each table's entries in one transaction.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from typing import Any

import pytest

from smolqwery.schema import Column, TableSchema
from smolqwery.vocabulary import ExtractorType
from smolqwery.warehouses.base import LEDGER_TABLE, ledger_schema, ledger_table_name
from smolqwery.warehouses.bigquery import BigQueryWarehouse

from .fixtures.emulator import Emulator
from .fixtures.warehouses import make_batch

pytestmark = pytest.mark.emulator

D = datetime.date(2026, 3, 2)


def daily_table(name: str) -> TableSchema:
    return TableSchema(
        name=name,
        columns=(Column("date", "DATE", "REQUIRED"), Column("users", "INT64", "NULLABLE")),
        kind=ExtractorType.date_aggregated,
        date_column="date",
    )


def rows(first: datetime.date, days: int, users: int) -> list[dict[str, Any]]:
    return [{"date": first + datetime.timedelta(days=i), "users": users} for i in range(days)]


def mutated_tables(script: str) -> set[str]:
    """The tables a script's DELETE / INSERT / UPDATE / MERGE statements change."""
    verbs = r"(?:DELETE FROM|INSERT INTO|UPDATE|MERGE INTO)"
    names = re.findall(verbs + r"\s+`([^`]+)`", script)  # `project.dataset.table`
    return {name.rsplit(".", 1)[-1] for name in names}


def test_a_replacement_mutates_only_its_table_and_its_own_ledger(
    bigquery_warehouse: BigQueryWarehouse,
) -> None:
    wh = bigquery_warehouse
    for name in ("alpha", "beta"):
        wh.create_table(daily_table(name))
    wh.replace_days(make_batch(daily_table("alpha"), D, D, rows(D, 1, 3)))
    scripts = [
        str(job.query)
        for job in wh.client.list_jobs()
        if wh.dataset in str(getattr(job, "query", "")) and "BEGIN TRANSACTION" in str(job.query)
    ]
    assert scripts, "no replacement script found"
    assert {frozenset(mutated_tables(s)) for s in scripts} == {
        frozenset({"alpha", ledger_table_name("alpha")})
    }
    assert LEDGER_TABLE not in wh.list_tables()
    assert {d: e.rows for d, e in wh.exported_days("alpha").items()} == {D: 1}


def test_replacements_of_two_tables_commit_at_the_same_time(
    bigquery_emulator: Emulator, bigquery_warehouse: BigQueryWarehouse
) -> None:
    """Two processes' worth of writers (one warehouse object each), two tables, in parallel:
    every replacement commits, none is cancelled, and the ledgers say exactly what is there."""
    dataset = bigquery_warehouse.dataset
    names = ("alpha", "beta")
    for name in names:
        bigquery_warehouse.create_table(daily_table(name))
    spans: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    errors: list[BaseException] = []
    rounds = 3

    def writer(name: str) -> None:
        wh = bigquery_emulator.warehouse(dataset)
        try:
            for k in range(rounds):
                first = D + datetime.timedelta(days=5 * k)
                started = time.monotonic()
                wh.replace_days(
                    make_batch(
                        daily_table(name), first, first + datetime.timedelta(4), rows(first, 5, k)
                    )
                )
                spans[name].append((started, time.monotonic()))
        except BaseException as exc:
            errors.append(exc)
        finally:
            wh.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    overlapping = any(a0 < b1 and b0 < a1 for a0, a1 in spans["alpha"] for b0, b1 in spans["beta"])
    assert overlapping, spans
    for name in names:
        ledger = bigquery_warehouse.exported_days(name)
        assert sorted(ledger) == [D + datetime.timedelta(days=i) for i in range(5 * rounds)]
        assert all(e.rows == 1 for e in ledger.values())


def _old_layout(wh: BigQueryWarehouse, entries: dict[str, list[datetime.date]]) -> None:
    """A dataset as 1.0.dev wrote it: one shared ledger holding the entries of every table."""
    from google.cloud import bigquery

    wh._ensure_table(ledger_schema(clustering=("table_name",)), partition=False)
    values = [(table, day) for table, days in entries.items() for day in days]
    for table, day in values:
        wh.client.query(
            f"INSERT INTO {wh.qualified_name(LEDGER_TABLE)} "
            "(table_name, day, rows, schema_fingerprint, run_id, exported_at) "
            "VALUES (@t, @d, 7, 'old', 'old-run', CURRENT_TIMESTAMP())",
            job_config=bigquery.QueryJobConfig(
                query_parameters=[
                    bigquery.ScalarQueryParameter("t", "STRING", table),
                    bigquery.ScalarQueryParameter("d", "DATE", day),
                ]
            ),
        ).result()


def test_a_shared_ledger_moves_into_per_table_ledgers_in_place(
    bigquery_emulator: Emulator, bigquery_warehouse: BigQueryWarehouse
) -> None:
    wh = bigquery_warehouse
    for name in ("alpha", "beta"):
        wh.create_table(daily_table(name))
    alpha_days = [D, D + datetime.timedelta(days=1)]
    beta_days = [D + datetime.timedelta(days=2)]
    _old_layout(wh, {"alpha": alpha_days, "beta": beta_days})
    # A day the table's own ledger holds too (written after the upgrade): its own entry wins.
    wh.replace_days(make_batch(daily_table("alpha"), D, D, rows(D, 1, 1)))

    reader = bigquery_emulator.warehouse(wh.dataset)  # before any move: both ledgers are read
    assert {d: e.rows for d, e in reader.exported_days("alpha").items()} == {D: 1, alpha_days[1]: 7}
    assert {d: e.rows for d, e in reader.exported_days("beta").items()} == {beta_days[0]: 7}

    assert wh.migrate_ledger("alpha") == 1  # the day its own ledger lacked
    assert wh.migrate_ledger("alpha") == 0  # a retry moves nothing twice
    assert LEDGER_TABLE in wh.list_tables()  # beta's entry is still there
    assert {d: e.rows for d, e in wh.exported_days("alpha").items()} == {D: 1, alpha_days[1]: 7}
    assert wh.migrate_ledger("beta") == 1
    assert LEDGER_TABLE not in wh.list_tables()  # empty: dropped
    fresh = bigquery_emulator.warehouse(wh.dataset)
    assert {d: e.rows for d, e in fresh.exported_days("beta").items()} == {beta_days[0]: 7}
    assert {d: e.rows for d, e in fresh.exported_days("alpha").items()} == {D: 1, alpha_days[1]: 7}
