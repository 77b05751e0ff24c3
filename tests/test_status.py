"""``smolqwery_status``: exported range, missing days, rows and lag, for people and monitoring."""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from smolqwery.models import ExportRun
from smolqwery.runner import export, table_status
from smolqwery.warehouses.base import Warehouse
from tests.exportapp.extractors import DailyEventsExtractor, EventExtractor
from tests.exportapp.testing import (
    DAILY,
    EVENTS,
    PARIS,
    YEAR,
    add_events,
    at,
    configurer,
    create_tables,
    d,
    date_range,
    point_at,
)
from tests.test_runner import write_like_0_1_3

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(YEAR, 6, 11, 9, 0, tzinfo=PARIS)  # yesterday: the 10th


@pytest.fixture
def wh(warehouse: Warehouse, settings: Any, request: pytest.FixtureRequest) -> Warehouse:
    point_at(settings, warehouse, request)
    configurer(settings)([EVENTS, DAILY], d(6, 1))
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    for day in date_range(d(6, 1), d(6, 10)):
        add_events(day, 2, PARIS)
    return warehouse


def status(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("smolqwery_status", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_status_shows_range_gaps_rows_and_lag(wh: Warehouse) -> None:
    with at(NOW):
        export(date_from=d(6, 1), date_to=d(6, 3), warehouse=wh)
        export(date_from=d(6, 6), date_to=d(6, 7), warehouse=wh)
        export(["daily_events"], warehouse=wh)
        last, tables = table_status()
        out, err = status("--format", "json")
    assert last == d(6, 10)
    events = next(t for t in tables if t.table == "event_row")
    assert (events.first_day, events.last_day, events.exported_days) == (d(6, 1), d(6, 7), 5)
    assert events.missing_days == [d(6, 4), d(6, 5), d(6, 8), d(6, 9), d(6, 10)]
    assert events.rows == 10
    assert events.lag == 7  # behind since the 4th
    assert events.last_run.startswith("success ")
    doc = json.loads(out)
    assert doc["yesterday"] == f"{YEAR}-06-10"
    by_table = {t["table"]: t for t in doc["tables"]}
    assert by_table["daily_events"] == {
        "extractor": "tests.exportapp.extractors.DailyEventsExtractor",
        "table": "daily_events",
        "first_day": f"{YEAR}-06-01",
        "last_day": f"{YEAR}-06-10",
        "exported_days": 10,
        "missing_days": [],
        "rows": 10,
        "lag": 0,
        "last_run": by_table["daily_events"]["last_run"],
        "error": "",
    }
    assert by_table["event_row"]["missing_days"][0] == f"{YEAR}-06-04"
    assert err == ""


def test_max_lag_makes_monitoring_fail(wh: Warehouse) -> None:
    with at(NOW - datetime.timedelta(days=2)):
        export(warehouse=wh)  # up to the 8th
    with at(NOW):
        out, _ = status("--max-lag", "2")
        lines = out.splitlines()
        assert lines[0].split() == [
            "table", "first", "day", "last", "day", "days", "missing", "rows", "lag", "last", "run"
        ]  # fmt: skip
        assert lines[1].split()[:8] == [
            "event_row", f"{YEAR}-06-01", f"{YEAR}-06-08", "8", "2", "16", "2", "success"
        ]  # fmt: skip
        assert f"event_row: missing {YEAR}-06-09..{YEAR}-06-10" in out
        with pytest.raises(CommandError) as info:
            status("--max-lag", "1")
        assert info.value.returncode == 1
        assert str(info.value) == (
            "event_row lags 2 day(s) (max 1); daily_events lags 2 day(s) (max 1)"
        )
        with pytest.raises(CommandError, match="event_row lags 2"):
            status("--max-lag", "0", "--extractor", "event_row")


def test_a_table_that_was_never_exported_lags_since_the_first_date(
    duckdb_warehouse: Warehouse, settings: Any, request: pytest.FixtureRequest
) -> None:
    point_at(settings, duckdb_warehouse, request)
    configurer(settings)([EVENTS, DAILY], d(6, 1))
    create_tables(duckdb_warehouse, EventExtractor)  # daily_events not migrated
    with at(NOW):
        _, tables = table_status()
        err, out = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError) as info:
            call_command("smolqwery_status", stdout=out, stderr=err)
        with pytest.raises(CommandError):
            call_command("smolqwery_status", "--format", "json", stdout=(js := io.StringIO()))
    events, daily = tables
    # Not read: unknown counts, never "0 missing, lag 0" (what a reader would take as up to date).
    daily_line = next(line for line in out.getvalue().splitlines() if line.startswith("daily_"))
    assert daily_line.split()[1:7] == ["-", "-", "?", "?", "?", "?"]
    daily_json = json.loads(js.getvalue())["tables"][1]
    assert (daily_json["lag"], daily_json["missing_days"], daily_json["rows"]) == (None,) * 3
    assert (events.lag, events.exported_days, events.first_day) == (10, 0, None)
    assert len(events.missing_days) == 10
    assert "daily_events" in daily.error
    assert info.value.returncode == 2
    assert "daily_events cannot be read" in str(info.value)
    assert "daily_events: ERROR:" in err.getvalue()


def test_d20_status_and_admin_read_a_0_1_3_table_without_writing(wh: Warehouse) -> None:
    """Before the first export, 0.1.3's days holding rows count as done and nothing is written;
    after it, they are read from the ledger with their row counts. A day without rows in the
    table is never called done: it is missing, and exported."""
    from smolqwery.admin_views import build_overview

    write_like_0_1_3(
        wh,
        [
            datetime.datetime(YEAR, 6, 1, 10, 0, tzinfo=PARIS),
            datetime.datetime(YEAR, 6, 2, 10, 0, tzinfo=PARIS),
            datetime.datetime(YEAR, 6, 5, 0, 30, tzinfo=PARIS),  # nothing on the 3rd and 4th
        ],
    )
    with at(NOW):
        _, tables = table_status(["event_row"])
        overview = build_overview()
    (events,) = tables
    assert (events.first_day, events.last_day, events.exported_days) == (d(6, 1), d(6, 5), 3)
    assert events.missing_days == [d(6, 3), d(6, 4), *date_range(d(6, 6), d(6, 10))]
    assert (events.lag, events.rows) == (8, 0)  # no ledger yet: no row counts either
    row = next(t for t in overview.tables if t.table == "event_row")
    assert (row.first_day, row.last_day, row.exported_days) == (d(6, 1), d(6, 5), 3)
    assert (row.lag_days, row.missing_days, row.first_missing) == (8, 7, d(6, 3))
    assert overview.error == ""
    assert wh.exported_days("event_row") == {}  # neither of them wrote

    with at(NOW):
        export(["event_row"], warehouse=wh)
        _, tables = table_status(["event_row"])
        overview = build_overview()
    (events,) = tables
    assert (events.first_day, events.last_day, events.exported_days) == (d(6, 1), d(6, 10), 10)
    assert (events.missing_days, events.lag) == ([], 0)
    assert events.rows == 3 + 7 * 2  # three legacy rows, two events on each exported day
    row = next(t for t in overview.tables if t.table == "event_row")
    assert (row.lag_days, row.exported_days, row.recent_rows) == (0, 10, 17)


def test_invalid_settings_exit_2_status_unknown(settings: Any) -> None:
    """Monitoring must not read "late" (1) when it cannot tell at all (2)."""
    settings.SMOLQWERY_FIRST_DATE = d(6, 1)
    settings.SMOLQWERY_STATUS_DEADLINE = "10 s"
    with pytest.raises(CommandError, match="SMOLQWERY_STATUS_DEADLINE must be") as info:
        status()
    assert info.value.returncode == 2


def test_the_command_and_the_admin_page_agree(
    duckdb_warehouse: Warehouse, settings: Any, request: pytest.FixtureRequest
) -> None:
    """One reading (smolqwery.status) for both, on the cases where they used to differ: days
    exported before a ``SMOLQWERY_FIRST_DATE`` moved later count as exported, and the last run
    is the table's, whichever extractor class wrote it (a class moved to another module)."""
    from smolqwery.admin_views import build_overview

    wh = duckdb_warehouse
    point_at(settings, wh, request)
    configurer(settings)([EVENTS, DAILY], d(6, 1))
    create_tables(wh, EventExtractor, DailyEventsExtractor)
    for day in date_range(d(6, 1), d(6, 10)):
        add_events(day, 2, PARIS)
    with at(NOW):
        export(date_from=d(6, 1), date_to=d(6, 3), warehouse=wh)
        export(date_from=d(6, 6), date_to=d(6, 7), warehouse=wh)
        export(["daily_events"], warehouse=wh)
    settings.SMOLQWERY_FIRST_DATE = d(6, 2)  # the 1st stays exported
    moved = ExportRun.objects.create(
        run_id="moved",
        extractor="tests.elsewhere.EventExtractor",
        table_name="event_row",
        started_at=NOW + datetime.timedelta(minutes=5),
        finished_at=NOW + datetime.timedelta(minutes=6),
        status=ExportRun.Status.FAILED,
    )
    with at(NOW + datetime.timedelta(minutes=10)):
        out, _ = status("--format", "json")
        overview = build_overview()
    tables = json.loads(out)["tables"]
    rows = {row.table: row for row in overview.tables}
    assert_agree(tables, overview)
    events = next(t for t in tables if t["table"] == "event_row")
    assert (events["first_day"], events["exported_days"]) == (f"{YEAR}-06-01", 5)
    assert events["missing_days"][0] == f"{YEAR}-06-04"
    assert events["last_run"].startswith("failed ")
    assert rows["event_row"].last_run == moved


def assert_agree(tables: list[dict[str, Any]], overview: Any) -> None:
    """The command's JSON and the admin page's rows say the same of every table."""
    assert overview.error == ""
    assert [t["table"] for t in tables] == [row.table for row in overview.tables]
    for table, row in zip(tables, overview.tables, strict=True):
        missing = table["missing_days"]
        command = {
            "first_day": table["first_day"],
            "last_day": table["last_day"],
            "exported_days": table["exported_days"],
            "missing": len(missing),
            "first_missing": missing[0] if missing else None,
            "lag": table["lag"],
            "last_run": table["last_run"],
        }
        started = timezone.localtime(row.last_run.started_at) if row.last_run else None
        page = {
            "first_day": row.first_day.isoformat() if row.first_day else None,
            "last_day": row.last_day.isoformat() if row.last_day else None,
            "exported_days": row.exported_days,
            "missing": row.missing_days,
            "first_missing": row.first_missing.isoformat() if row.first_missing else None,
            "lag": row.lag_days,
            "last_run": f"{row.last_run_state} {started:%Y-%m-%d %H:%M}" if started else "",
        }
        assert command == page, table["table"]


WINDOW = 12  # days before yesterday a ledger may hold

TABLES = {"event_row": EventExtractor, "daily_events": DailyEventsExtractor}
RUN_PATHS = [EVENTS, DAILY, "tests.elsewhere.EventExtractor"]


@st.composite
def ledgers(draw: st.DrawFn) -> dict[str, Any]:
    """Exported days per table, where ``SMOLQWERY_FIRST_DATE`` sits among them, and runs
    recorded under the tables' own or other extractor paths."""
    offsets = st.sets(st.integers(0, WINDOW - 1), max_size=WINDOW)
    return {
        "days": {table: draw(offsets) for table in TABLES},
        "first": draw(st.integers(0, WINDOW - 1)),
        "runs": draw(
            st.lists(
                st.tuples(
                    st.sampled_from(RUN_PATHS),
                    st.sampled_from(["event_row", "daily_events"]),
                    st.sampled_from(["success", "failed", "running"]),
                    st.integers(0, 600),
                ),
                max_size=4,
            )
        ),
    }


@hyp_settings(
    max_examples=8,  # each builds a DuckDB file (about 0.6 s); the agreement is structural
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=ledgers())
def test_property_the_command_and_the_admin_page_always_agree(
    settings: Any, tmp_path_factory: pytest.TempPathFactory, case: dict[str, Any]
) -> None:
    """Whatever the ledger holds, wherever the first date is, whoever wrote the last run."""
    from smolqwery.admin_views import build_overview
    from smolqwery.warehouses.duckdb import DuckDBWarehouse
    from tests.fixtures.warehouses import make_batch

    last = NOW.date() - datetime.timedelta(days=1)
    path = tmp_path_factory.mktemp("agree") / "warehouse.duckdb"
    wh = DuckDBWarehouse(path, "agree", busy_timeout=10)
    try:
        wh.ensure_dataset()
        for table, cls in TABLES.items():
            schema = cls().get_schema()
            wh.create_table(schema)
            for offset in sorted(case["days"][table]):
                day = last - datetime.timedelta(days=offset)
                wh.replace_days(make_batch(schema, day, run_id="r"))
    finally:
        wh.close()
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(path)
    settings.SMOLQWERY_DATASET = "agree"
    configurer(settings)([EVENTS, DAILY], last - datetime.timedelta(days=case["first"]))
    ExportRun.objects.all().delete()
    for i, (extractor, table, state, minutes) in enumerate(case["runs"]):
        ExportRun.objects.create(
            run_id=f"run-{i}",
            extractor=extractor,
            table_name=table,
            started_at=NOW - datetime.timedelta(minutes=minutes),
            status=state,
        )
    with at(NOW):
        out, _ = status("--format", "json")
        overview = build_overview()
    assert_agree(json.loads(out)["tables"], overview)
