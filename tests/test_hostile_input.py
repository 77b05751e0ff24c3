"""Hostile input gets a clear error and writes nothing (issue 6).

Bad rows, failing extractors, identifiers crafted to inject SQL, missing dotted paths, a first
date in the future — on DuckDB and on the BigQuery emulator, through the export runner with a
real warehouse. Malformed dates on the command line and unusable credentials go through the real
command in a child process.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from smolqwery.days import local_now, yesterday
from smolqwery.errors import ConfigurationError
from smolqwery.registry import load_extractor_class
from smolqwery.runner import ExportReport, export
from smolqwery.schema import TableSchema
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.crashapp import hostile
from tests.fixtures.crash import (
    EVENT_TABLE,
    NO_AMBIENT_CREDENTIALS,
    ScenarioFactory,
    credential_cases,
    fake_pem,
)

DAYS = 3


def _yesterday() -> datetime.date:
    tz = timezone.get_default_timezone()
    return yesterday(local_now(tz), tz)


@pytest.fixture
def run_export(settings: Any, warehouse: Warehouse, db: None) -> Any:
    """``run_export(*dotted_paths)``: create their tables, export three days, return the
    report; the tables of the warehouse before the run are in ``run_export.before``."""

    class Runner:
        before: list[str] = []

        def __call__(self, *paths: str, create: bool = True) -> ExportReport:
            settings.SMOLQWERY_EXTRACTORS = list(paths)
            settings.SMOLQWERY_FIRST_DATE = _yesterday() - datetime.timedelta(days=DAYS - 1)
            settings.SMOLQWERY_BATCH_DAYS = 31
            if create:
                for path in paths:
                    warehouse.create_table(load_extractor_class(path)().get_schema())
            self.before = warehouse.list_tables()
            return export(warehouse=warehouse)

    return Runner()


def assert_nothing_written(warehouse: Warehouse, table: str) -> None:
    assert fetch_rows(warehouse, table) == []
    assert warehouse.exported_days(table) == {}


def the_failure(report: ExportReport, table: str) -> str:
    assert not report.ok
    failed = [r for r in report.failed if r.table == table or not r.table]
    assert len(failed) == 1, report
    return failed[0].error


@pytest.mark.parametrize("case", sorted(hostile.CASES))
def test_bad_row_is_a_clear_error_and_nothing_is_written(
    case: str, run_export: Any, warehouse: Warehouse
) -> None:
    path = hostile.dotted_path(case)
    table = f"hostile_{case}"
    report = run_export(path)
    error = the_failure(report, table)
    _, words = hostile.CASES[case]
    for word in (path, _yesterday().isoformat(), *words):
        assert word.lower() in error.lower(), f"{word!r} not in {error!r}"
    assert len(error) < 1000, "an error message is a sentence, not a dump"
    assert_nothing_written(warehouse, table)
    assert warehouse.list_tables() == run_export.before

    from smolqwery.models import ExportRun

    run = ExportRun.objects.get(extractor=path)
    assert (run.status, run.days, run.rows) == ("failed", 0, 0)
    assert run.error == error


def test_d08_aggregated_extractor_with_two_rows_a_day(
    run_export: Any, warehouse: Warehouse
) -> None:
    report = run_export("tests.crashapp.hostile.TwoRowsADayExtractor")
    error = the_failure(report, "hostile_two_rows_a_day")
    assert "exactly one row per day" in error and _yesterday().isoformat() in error
    assert_nothing_written(warehouse, "hostile_two_rows_a_day")


def test_d09_a_failing_extractor_does_not_stop_the_others(
    run_export: Any, warehouse: Warehouse
) -> None:
    report = run_export(hostile.dotted_path("raises"), "tests.crashapp.hostile.GoodExtractor")
    assert [r.status for r in report.results] == ["failed", "success"]
    assert_nothing_written(warehouse, "hostile_raises")
    ledger = warehouse.exported_days("hostile_good")
    assert sorted(ledger) == [_yesterday() - datetime.timedelta(days=i) for i in (2, 1, 0)]
    assert len(fetch_rows(warehouse, "hostile_good")) == 3 * DAYS


def test_dotted_path_that_does_not_exist(run_export: Any, warehouse: Warehouse) -> None:
    missing = ["tests.crashapp.hostile.NoSuchExtractor", "no_such_package.extractors.Extractor"]
    warehouse.create_table(hostile.GoodExtractor().get_schema())
    report = run_export(*missing, "tests.crashapp.hostile.GoodExtractor", create=False)
    errors = {r.extractor: r.error for r in report.failed}
    assert set(errors) == set(missing)
    for path, error in errors.items():
        assert path in error and "cannot be imported" in error
    assert warehouse.list_tables() == run_export.before
    assert len(warehouse.exported_days("hostile_good")) == DAYS  # the others go on (D9)


@pytest.mark.parametrize("days_ahead", [0, 1, 400])
def test_first_date_after_yesterday(
    days_ahead: int, settings: Any, warehouse: Warehouse, db: None
) -> None:
    settings.SMOLQWERY_EXTRACTORS = ["tests.crashapp.hostile.GoodExtractor"]
    warehouse.create_table(hostile.GoodExtractor().get_schema())
    first = _yesterday() + datetime.timedelta(days=1 + days_ahead)
    settings.SMOLQWERY_FIRST_DATE = first
    with pytest.raises(ConfigurationError) as caught:
        export(warehouse=warehouse)
    assert "SMOLQWERY_FIRST_DATE" in str(caught.value) and first.isoformat() in str(caught.value)
    assert_nothing_written(warehouse, "hostile_good")


# -- identifiers crafted to inject SQL --------------------------------------------------------

CANARY = TableSchema.from_dict(
    {
        "name": "y",
        "kind": "individual_rows",
        "date_column": "timestamp",
        "columns": [{"name": "timestamp", "type": "TIMESTAMP", "mode": "REQUIRED"}],
    }
)


@pytest.mark.parametrize(
    "extractor",
    [
        *(f"tests.crashapp.hostile.{c.__name__}" for c in hostile.INJECTED_TABLE_CLASSES),
        "tests.crashapp.hostile.InjectedDateFieldExtractor",
        "tests.crashapp.hostile.InjectedClusteringExtractor",
        "tests.crashapp.hostile.InjectedColumnExtractor",
    ],
)
def test_d21_identifiers_crafted_to_inject_sql(
    extractor: str, run_export: Any, warehouse: Warehouse
) -> None:
    warehouse.create_table(CANARY)
    report = run_export(extractor, create=False)
    (failed,) = report.failed
    assert failed.extractor == extractor
    assert any(w in failed.error for w in ("invalid", "not a field", "needs a")), failed.error
    assert "Traceback" not in failed.error
    assert warehouse.list_tables() == run_export.before
    assert "y" in warehouse.list_tables()


@pytest.mark.parametrize(
    "dataset", ["x; DROP TABLE y", "x`y", "x'y", 'x"y', "x.y", "x-y", "a" * 1025]
)
def test_d21_dataset_names_crafted_to_inject_sql(
    dataset: str, settings: Any, tmp_path: Path, bigquery_emulator: Any
) -> None:
    from smolqwery.warehouses import get_warehouse
    from smolqwery.warehouses.bigquery import BigQueryWarehouse
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    settings.SMOLQWERY_DATASET = dataset
    with pytest.raises(ConfigurationError) as caught:
        get_warehouse()
    assert "SMOLQWERY_DATASET" in str(caught.value)
    with pytest.raises(ValueError, match="dataset name"):
        DuckDBWarehouse(tmp_path / "wh.duckdb", dataset)
    with pytest.raises(ValueError, match="dataset name"):
        BigQueryWarehouse(bigquery_emulator.client(), dataset)
    assert not (tmp_path / "wh.duckdb").exists()


# -- the command line, in a real process ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2024-13-01", "--to", "2024-12-31"], ["2024-13-01"]),
        (["--from", "2024-02-30", "--to", "2024-03-01"], ["2024-02-30"]),
        (["--from", "yesterday", "--to", "2024-01-01"], ["yesterday"]),
        (["--from", "2024-01-05", "--to", "2024-01-01"], ["2024-01-05", "2024-01-01"]),
        (["--to", "2024-01-01"], ["--to", "--from"]),
        (["--from", "2999-01-01"], ["2999-01-01"]),
        (["--lag", "-1"], ["--lag"]),
        (["--lag", "three"], ["three"]),
        (["--from", "2999-01-01", "--to", "2999-01-02"], ["2999-01-02"]),
    ],
)
def test_d18_malformed_dates_on_the_command_line(
    args: list[str], words: list[str], crash_scenarios: ScenarioFactory
) -> None:
    scenario = crash_scenarios.new("duckdb", days=2)
    result = scenario.run(*args)
    assert result.returncode not in (0, -9), result.describe()
    for word in words:
        assert word in result.output, result.describe()
    assert "Traceback" not in result.output, result.describe()
    with scenario.warehouse() as wh:
        assert wh.exported_days(EVENT_TABLE) == {}
        assert fetch_rows(wh, EVENT_TABLE) == []


@pytest.mark.parametrize(
    "args",
    [["-f", "2024-02-30"], ["-f", "2024-01-01", "-l", "garbage"], ["-l", "01/02/2024"]],
)
def test_d18_malformed_dates_of_print_extract(
    args: list[str], crash_scenarios: ScenarioFactory
) -> None:
    scenario = crash_scenarios.new("duckdb", days=2)
    result = scenario.run(*args, command="smolqwery_print_extract")
    assert result.returncode not in (0, -9), result.describe()
    assert args[-1] in result.output, result.describe()
    assert "Traceback" not in result.output and "AttributeError" not in result.output


@pytest.mark.emulator
@pytest.mark.parametrize(
    "case",
    ["unreachable endpoint", "invalid key", "token server unreachable", "no credentials at all"],
)
def test_unusable_credentials(
    case: str, crash_scenarios: ScenarioFactory, bigquery_emulator: Any
) -> None:
    scenario = crash_scenarios.new(
        "bigquery", bigquery_emulator, days=2, settings={"SMOLQWERY_RETRY_DEADLINE": 5}
    )
    config = credential_cases(bigquery_emulator.endpoint, fake_pem())[case]
    scenario.settings = {
        **{k: v for k, v in scenario.settings.items() if not k.startswith("SMOLQWERY_BIGQUERY")},
        **config,
    }
    result = scenario.run(env=NO_AMBIENT_CREDENTIALS, timeout=120)
    assert result.returncode not in (0, -9), result.describe()
    assert "Traceback" not in result.output, result.describe()
    hint = {
        "unreachable endpoint": "127.0.0.1:9",
        "invalid key": "SMOLQWERY_GOOGLE_PRIVATE_KEY",
        "token server unreachable": "token",
        "no credentials at all": "credentials",
    }[case]
    assert hint.lower() in result.output.lower(), result.describe()
    with scenario.warehouse() as wh:  # the real emulator, seen with working credentials
        assert wh.exported_days(EVENT_TABLE) == {}
        assert fetch_rows(wh, EVENT_TABLE) == []
