"""Settings that must not change after the first export (issue 14, point 7): the dataset, the
DuckDB file, the warehouse and TIME_ZONE are remembered at the first export or ``migrate``;
a change is reported by ``manage.py check`` and refused by exports until accepted."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from smolqwery.checks import check_recorded_settings
from smolqwery.errors import ConfigurationError
from smolqwery.models import WarehouseRecord
from smolqwery.runner import export
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.exportapp.extractors import EventExtractor
from tests.exportapp.testing import EVENTS, PARIS, YEAR, add_events, at, create_tables, d

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(settings: Any, tmp_path: Path) -> DuckDBWarehouse:
    """One day exported to tmp_path/first.duckdb, dataset 'first', in Europe/Paris."""
    settings.SMOLQWERY_EXTRACTORS = [EVENTS]
    settings.SMOLQWERY_FIRST_DATE = d(3, 1)
    settings.TIME_ZONE = "Europe/Paris"
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "first.duckdb")
    settings.SMOLQWERY_DATASET = "first"
    wh = DuckDBWarehouse(tmp_path / "first.duckdb", "first")
    wh.ensure_dataset()
    create_tables(wh, EventExtractor)
    add_events(d(3, 1), 2, PARIS)
    assert WarehouseRecord.objects.count() == 0
    with at(morning(2)):
        assert export().ok
    return wh


def morning(day: int) -> datetime.datetime:
    return datetime.datetime(YEAR, 3, day, 8, tzinfo=PARIS)


def _messages() -> list[tuple[str, str, str]]:
    return [(m.id or "", m.msg, m.hint or "") for m in check_recorded_settings()]


def test_first_export_records_the_settings_and_a_later_one_keeps_them(
    exported: DuckDBWarehouse, tmp_path: Path
) -> None:
    record = WarehouseRecord.objects.get()
    assert (record.warehouse, record.dataset, record.time_zone) == (
        "duckdb",
        "first",
        "Europe/Paris",
    )
    assert record.duckdb_path == str(tmp_path / "first.duckdb")
    assert _messages() == []
    with at(morning(3)):
        assert export().ok
    assert WarehouseRecord.objects.get().recorded_at == record.recorded_at


@pytest.mark.parametrize(
    ("setting", "value", "check_id", "expected"),
    [
        ("SMOLQWERY_DATASET", "second", "smolqwery.W014", "SMOLQWERY_DATASET = 'first'"),
        ("SMOLQWERY_DUCKDB_PATH", "other.duckdb", "smolqwery.W014", "first.duckdb"),
        ("TIME_ZONE", "America/New_York", "smolqwery.W015", "TIME_ZONE = 'Europe/Paris'"),
    ],
)
def test_a_change_is_reported_refused_then_accepted(
    exported: DuckDBWarehouse,
    settings: Any,
    tmp_path: Path,
    setting: str,
    value: str,
    check_id: str,
    expected: str,
) -> None:
    if setting == "SMOLQWERY_DUCKDB_PATH":
        value = str(tmp_path / value)
    setattr(settings, setting, value)
    ((found_id, message, hint),) = _messages()
    assert found_id == check_id
    assert value in message and expected in hint
    assert "smolqwery_accept_settings" in hint

    with at(morning(3)), pytest.raises(ConfigurationError, match=expected):
        export()
    assert exported.exported_days("event_row").keys() == {d(3, 1)}  # nothing written

    call_command("smolqwery_accept_settings", verbosity=0)
    assert _messages() == []
    assert (
        getattr(
            WarehouseRecord.objects.get(),
            {
                "SMOLQWERY_DATASET": "dataset",
                "SMOLQWERY_DUCKDB_PATH": "duckdb_path",
                "TIME_ZONE": "time_zone",
            }[setting],
        )
        == value
    )
    with at(morning(3)):
        report = export()  # no longer refused (the table is created by migrations: see
    assert report.ok or setting != "TIME_ZONE"  # test_newcomer for that part)


def test_setting_it_back_is_enough(exported: DuckDBWarehouse, settings: Any) -> None:
    settings.SMOLQWERY_DATASET = "second"
    assert _messages()
    settings.SMOLQWERY_DATASET = "first"
    assert _messages() == []
