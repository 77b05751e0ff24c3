"""The export runner on both warehouses: pending days, gaps, DST, re-exports, failures.

Time is frozen with time-machine; the source is the ``Event`` table of ``tests.exportapp``;
every count exported is compared with the count in the source.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smolqwery.days import date_range, day_window
from smolqwery.errors import ConfigurationError
from smolqwery.models import ExportLock, ExportRun
from smolqwery.reporting import Progress
from smolqwery.runner import ExportReport, ExtractorResult, export, preview, table_status
from smolqwery.warehouses.base import LEGACY_FINGERPRINT, Warehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.exportapp.extractors import (
    DailyEventsExtractor,
    EventExtractor,
    HostileExtractor,
)
from tests.exportapp.models import Event
from tests.exportapp.testing import (
    DAILY,
    EVENTS,
    HOSTILE,
    NEW_YORK,
    PARIS,
    UTC,
    YEAR,
    D,
    add_events,
    at,
    configurer,
    create_tables,
    d,
    dst_days,
    exported_counts,
    ledger_counts,
    source_counts,
)

pytestmark = [pytest.mark.django_db, pytest.mark.source_db]


@pytest.fixture
def configure(settings: Any) -> Any:
    return configurer(settings)


def result(report: ExportReport, table: str) -> ExtractorResult:
    return next(r for r in report.results if r.table == table)


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def extractor_started(self, name: str, table: str, days: int) -> None:
        self.events.append(("started", table, days))

    def day_done(self, name: str, table: str, day: D, rows: int) -> None:
        self.events.append(("day", table, day, rows))

    def batch_done(self, name: str, table: str, first: D, last: D, rows: int) -> None:
        self.events.append(("batch", table, first, last, rows))

    def extractor_finished(self, result: ExtractorResult) -> None:
        self.events.append(("finished", result.table, result.status))


def test_first_run_second_run_and_three_days_later(warehouse: Warehouse, configure: Any) -> None:
    configure([EVENTS, DAILY], d(3, 1), batch_days=2)
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    days = date_range(d(3, 1), d(3, 10))
    for i, day in enumerate(days):
        add_events(day, [3, 0, 5, 1, 2, 4, 0, 2, 1, 3][i], PARIS)

    # First run, in the morning of the 6th: the 1st to the 5th, from SMOLQWERY_FIRST_DATE.
    progress = Recorder()
    with at(datetime.datetime(YEAR, 3, 6, 8, 0, tzinfo=PARIS)):
        report = export(warehouse=warehouse, progress=progress)
    assert report.ok and report.last_day == d(3, 5)
    first_five = days[:5]
    assert ledger_counts(warehouse, "event_row") == source_counts(first_five, PARIS)
    assert exported_counts(warehouse, "event_row", PARIS) == {
        d: n for d, n in source_counts(first_five, PARIS).items() if n
    }
    daily = fetch_rows(warehouse, "daily_events", order_by=["date"])
    assert [(r["date"], r["events"]) for r in daily] == list(
        source_counts(first_five, PARIS).items()
    )
    events = result(report, "event_row")
    assert (events.days, events.rows, events.first_day, events.last_day) == (
        5,
        11,
        d(3, 1),
        d(3, 5),
    )
    # batch_days=2: three batches, reported as they commit.
    assert [e[2:] for e in progress.events if e[:2] == ("batch", "event_row")] == [
        (d(3, 1), d(3, 2), 3),
        (d(3, 3), d(3, 4), 6),
        (d(3, 5), d(3, 5), 2),
    ]
    assert ("day", "event_row", d(3, 2), 0) in progress.events
    runs = ExportRun.objects.filter(run_id=report.run_id).order_by("table_name")
    assert [(r.table_name, r.status, r.days, r.rows, r.first_day, r.last_day) for r in runs] == [
        ("daily_events", "success", 5, 5, d(3, 1), d(3, 5)),
        ("event_row", "success", 5, 11, d(3, 1), d(3, 5)),
    ]
    assert all(r.finished_at and r.error == "" for r in runs)
    assert not ExportLock.objects.exists()  # released

    # Second run the same day (evening): nothing to do, nothing rewritten.
    ledger_before = warehouse.exported_days("event_row")
    with at(datetime.datetime(YEAR, 3, 6, 23, 59, tzinfo=PARIS)):
        again = export(warehouse=warehouse)
    assert again.ok and [(r.days, r.rows) for r in again.results] == [(0, 0), (0, 0)]
    assert warehouse.exported_days("event_row") == ledger_before

    # Three days later: exactly three more days.
    with at(datetime.datetime(YEAR, 3, 9, 0, 30, tzinfo=PARIS)):
        later = export(warehouse=warehouse)
    assert [(r.days, r.first_day, r.last_day) for r in later.results] == [
        (3, d(3, 6), d(3, 8)),
    ] * 2
    assert ledger_counts(warehouse, "event_row") == source_counts(days[:8], PARIS)
    assert sum(exported_counts(warehouse, "event_row", PARIS).values()) == sum(
        source_counts(days[:8], PARIS).values()
    )


def test_a_gap_is_filled_and_zero_row_days_are_not_extracted_again(
    warehouse: Warehouse, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure([EVENTS], d(5, 1))
    create_tables(warehouse, EventExtractor)
    for day, n in zip(date_range(d(5, 1), d(5, 6)), [2, 0, 3, 0, 1, 2], strict=True):
        add_events(day, n, PARIS)
    with at(datetime.datetime(YEAR, 5, 7, 6, 0, tzinfo=PARIS)):
        export(date_from=d(5, 1), date_to=d(5, 2), warehouse=warehouse)
        export(date_from=d(5, 5), date_to=d(5, 6), warehouse=warehouse)
        assert sorted(warehouse.exported_days("event_row")) == [
            d(5, 1),
            d(5, 2),
            d(5, 5),
            d(5, 6),
        ]
        report = export(warehouse=warehouse)
    # Only the gap: the 3rd and 4th (the 4th has no rows, and is recorded with 0).
    assert (report.results[0].days, report.results[0].first_day, report.results[0].last_day) == (
        2,
        d(5, 3),
        d(5, 4),
    )
    expected = source_counts(date_range(d(5, 1), d(5, 6)), PARIS)
    assert ledger_counts(warehouse, "event_row") == expected
    assert expected[d(5, 4)] == 0

    calls: list[D] = []
    original = EventExtractor.extract

    def counting(self: Any, date_start: datetime.datetime, date_end: datetime.datetime) -> Any:
        calls.append(date_start.date())
        return original(self, date_start, date_end)

    monkeypatch.setattr(EventExtractor, "extract", counting)
    with at(datetime.datetime(YEAR, 5, 8, 6, 0, tzinfo=PARIS)):
        export(warehouse=warehouse)
    assert calls == [d(5, 7)]  # zero-row days 2 and 4 were not extracted again


@pytest.mark.parametrize(
    ("tz_name", "which"),
    [
        ("Europe/Paris", 0),
        ("Europe/Paris", 1),
        ("America/New_York", 0),
        ("America/New_York", 1),
    ],
    ids=["paris-spring", "paris-autumn", "new-york-spring", "new-york-autumn"],
)
def test_dst_days_export_exactly_the_source_rows(
    warehouse: Warehouse, configure: Any, tz_name: str, which: int
) -> None:
    tz = ZoneInfo(tz_name)
    dst_day = dst_days(tz)[which]
    days = [dst_day - datetime.timedelta(days=1), dst_day, dst_day + datetime.timedelta(days=1)]
    configure([EVENTS, DAILY], days[0], tz=tz_name)
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    # One event every 20 real minutes from the day before to the day after, plus boundaries.
    start = day_window(days[0] - datetime.timedelta(days=1), tz).start.astimezone(UTC)
    Event.objects.bulk_create(
        Event(created_at=start + datetime.timedelta(minutes=20 * i)) for i in range(5 * 72)
    )
    for day in days:
        add_events(day, 2, tz, kind="boundary")
    after = day_window(days[-1] + datetime.timedelta(days=1), tz).start
    with at(after + datetime.timedelta(hours=1)):
        report = export(warehouse=warehouse)
    assert report.ok
    expected = source_counts(days, tz)
    # 23 h and 25 h days: 69 and 75 events of the 20-minute grid, plus the two boundaries.
    assert expected == dict(zip(days, [74, 71 if which == 0 else 77, 74], strict=True))
    assert exported_counts(warehouse, "event_row", tz) == expected
    assert ledger_counts(warehouse, "event_row") == expected
    daily = {r["date"]: r["events"] for r in fetch_rows(warehouse, "daily_events")}
    assert daily == expected


def test_d03_a_run_at_2330_in_new_york_does_not_export_today(
    warehouse: Warehouse, configure: Any
) -> None:
    configure([EVENTS], d(3, 1), tz="America/New_York")
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(3, 1), d(3, 5)):
        add_events(day, 3, NEW_YORK)
    # 23:30 on the 5th in New York is already the 6th in UTC.
    with at(datetime.datetime(YEAR, 3, 5, 23, 30, tzinfo=NEW_YORK)):
        report = export(warehouse=warehouse)
    assert report.last_day == d(3, 4)
    assert sorted(warehouse.exported_days("event_row")) == date_range(d(3, 1), d(3, 4))
    assert d(3, 5) not in exported_counts(warehouse, "event_row", NEW_YORK)


def test_a_reexported_range_replaces_and_never_duplicates(
    warehouse: Warehouse, configure: Any
) -> None:
    configure([EVENTS, DAILY], d(6, 1))
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    days = date_range(d(6, 1), d(6, 4))
    for day in days:
        add_events(day, 4, PARIS)
    with at(datetime.datetime(YEAR, 6, 5, 3, 0, tzinfo=PARIS)):
        export(warehouse=warehouse)
        # Late data: two more events on the 2nd, one deleted on the 3rd.
        add_events(d(6, 2), 2, PARIS, kind="late")
        Event.objects.filter(created_at__gte=day_window(d(6, 3), PARIS).start).order_by(
            "created_at"
        ).first().delete()  # type: ignore[union-attr]
        report = export(date_from=d(6, 2), date_to=d(6, 3), warehouse=warehouse)
        assert [(r.days, r.rows) for r in report.results] == [(2, 9), (2, 2)]
        export(date_from=d(6, 2), date_to=d(6, 3), warehouse=warehouse)
    expected = source_counts(days, PARIS)
    assert expected == {d(6, 1): 4, d(6, 2): 6, d(6, 3): 3, d(6, 4): 4}
    assert exported_counts(warehouse, "event_row", PARIS) == expected
    assert ledger_counts(warehouse, "event_row") == expected
    daily = {r["date"]: r["events"] for r in fetch_rows(warehouse, "daily_events")}
    assert daily == expected
    # No row twice: (timestamp, kind, amount) is unique in the source.
    rows = [(r["timestamp"], r["kind"], r["amount"]) for r in fetch_rows(warehouse, "event_row")]
    assert len(rows) == len(set(rows))


def test_lag_reexports_the_last_days(warehouse: Warehouse, configure: Any) -> None:
    configure([EVENTS], d(6, 1))
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(6, 1), d(6, 5)):
        add_events(day, 2, PARIS)
    with at(datetime.datetime(YEAR, 6, 5, 3, 0, tzinfo=PARIS)):
        export(warehouse=warehouse)
    add_events(d(6, 4), 3, PARIS, kind="late")
    with at(datetime.datetime(YEAR, 6, 6, 3, 0, tzinfo=PARIS)):
        report = export(lag=2, warehouse=warehouse)
    assert (report.results[0].first_day, report.results[0].last_day) == (
        d(6, 4),
        d(6, 5),
    )
    assert exported_counts(warehouse, "event_row", PARIS) == source_counts(
        date_range(d(6, 1), d(6, 5)), PARIS
    )


@pytest.mark.parametrize("mode", ["nul", "raise", "naive"])
def test_d09_a_bad_extractor_writes_nothing_and_the_others_go_on(
    warehouse: Warehouse,
    configure: Any,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(HostileExtractor, "mode", mode)
    configure([HOSTILE, EVENTS], d(6, 1))
    create_tables(warehouse, HostileExtractor, EventExtractor)
    for day in date_range(d(6, 1), d(6, 3)):
        add_events(day, 2, PARIS)
    with at(datetime.datetime(YEAR, 6, 4, 3, 0, tzinfo=PARIS)), caplog.at_level("INFO"):
        report = export(warehouse=warehouse)
    assert not report.ok
    # One error in the project's logs per failure (an alert, a Sentry event), not one per layer.
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage().split(":")[0] for r in errors] == [f"{HOSTILE} failed"], errors
    bad = result(report, "hostile_row")
    assert bad.failed and bad.days == 0
    assert f"tests.exportapp.extractors.HostileExtractor: day {YEAR}-06-01" in bad.error
    assert fetch_rows(warehouse, "hostile_row") == []
    assert warehouse.exported_days("hostile_row") == {}
    good = result(report, "event_row")
    assert not good.failed and good.days == 3 and good.rows == 6
    run = ExportRun.objects.get(run_id=report.run_id, table_name="hostile_row")
    assert run.status == "failed" and run.error == bad.error and run.finished_at


def test_d05_a_failure_late_in_a_batch_leaves_no_partial_day(
    warehouse: Warehouse, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of the batch were already streamed into the warehouse when day 3 fails."""
    configure([EVENTS], d(6, 1))
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(6, 1), d(6, 3)):
        add_events(day, 30, PARIS)
    original = EventExtractor.extract

    def failing(
        self: Any, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Any]:
        for i, row in enumerate(original(self, date_start, date_end)):
            if date_start.date() == d(6, 3) and i == 20:
                raise ConnectionError("lost the source database")
            yield row

    monkeypatch.setattr(EventExtractor, "extract", failing)
    with at(datetime.datetime(YEAR, 6, 4, 3, 0, tzinfo=PARIS)):
        report = export(warehouse=warehouse, chunk_rows=7)
        assert f"day {YEAR}-06-03: extract() raised ConnectionError" in report.results[0].error
        assert fetch_rows(warehouse, "event_row") == []
        assert warehouse.exported_days("event_row") == {}
        monkeypatch.setattr(EventExtractor, "extract", original)
        assert export(warehouse=warehouse).ok
    assert ledger_counts(warehouse, "event_row") == dict.fromkeys(date_range(d(6, 1), d(6, 3)), 30)


def test_a_missing_table_or_unknown_extractor_is_a_clear_error(
    warehouse: Warehouse, configure: Any
) -> None:
    configure([EVENTS, "tests.exportapp.extractors.DoesNotExist"], d(6, 1))
    with at(datetime.datetime(YEAR, 6, 4, 3, 0, tzinfo=PARIS)):
        report = export(warehouse=warehouse)
        assert [r.status for r in report.results] == ["failed", "failed"]
        assert "table 'event_row' does not exist in the warehouse" in report.results[0].error
        assert "DoesNotExist" in report.results[1].error
        with pytest.raises(ConfigurationError, match="no extractor in SMOLQWERY_EXTRACTORS"):
            export(["nope"], warehouse=warehouse)


def test_first_date_after_yesterday_is_a_clear_error(warehouse: Warehouse, configure: Any) -> None:
    configure([EVENTS], d(6, 4))
    with (
        at(datetime.datetime(YEAR, 6, 4, 12, 0, tzinfo=PARIS)),
        pytest.raises(
            ConfigurationError,
            match=rf"SMOLQWERY_FIRST_DATE is {YEAR}-06-04, after yesterday \({YEAR}-06-03",
        ),
    ):
        export(warehouse=warehouse)
    assert not ExportRun.objects.exists()


def test_selecting_extractors_by_table_or_path(warehouse: Warehouse, configure: Any) -> None:
    configure([EVENTS, DAILY], d(6, 1))
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    with at(datetime.datetime(YEAR, 6, 3, 3, 0, tzinfo=PARIS)):
        assert [r.table for r in export(["daily_events"], warehouse=warehouse).results] == [
            "daily_events"
        ]
        assert [r.table for r in export([EVENTS], warehouse=warehouse).results] == ["event_row"]
    assert sorted(warehouse.exported_days("event_row")) == [d(6, 1), d(6, 2)]


def test_dry_run_shows_the_rows_and_writes_nothing(warehouse: Warehouse, configure: Any) -> None:
    configure([EVENTS, DAILY], d(6, 1))
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    add_events(d(6, 2), 3, PARIS)
    with at(datetime.datetime(YEAR, 6, 4, 3, 0, tzinfo=PARIS)):
        chunks = list(preview(d(6, 1), d(6, 2)))
    assert [(c.table.name, c.day, len(c.rows)) for c in chunks] == [  # type: ignore[union-attr]
        ("event_row", d(6, 1), 0),
        ("event_row", d(6, 2), 3),
        ("daily_events", d(6, 1), 1),
        ("daily_events", d(6, 2), 1),
    ]
    assert chunks[3].rows == [{"date": d(6, 2), "events": 3, "amount": 6}]  # type: ignore[union-attr]
    assert warehouse.exported_days("event_row") == {}
    assert fetch_rows(warehouse, "event_row") == []
    assert not ExportRun.objects.exists()
    assert not ExportLock.objects.exists()


def test_d20_a_normal_run_reads_the_ledger_not_the_tables(
    warehouse: Warehouse, configure: Any
) -> None:
    """Finding pending days never scans an export table once smolqwery's ledger covers it."""
    configure([EVENTS], d(6, 1))
    create_tables(warehouse, EventExtractor)
    add_events(d(6, 1), 5, PARIS)
    calls: list[str] = []

    class Spy:
        """The real warehouse, with a record of which contract methods the runner calls."""

        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(warehouse, name)

    spy: Any = Spy()
    with at(datetime.datetime(YEAR, 6, 4, 3, 0, tzinfo=PARIS)):
        export(warehouse=spy)
        calls.clear()
        export(warehouse=spy)  # ledger starts at SMOLQWERY_FIRST_DATE: no table scan
    assert "legacy_days" not in calls
    assert "exported_days" in calls


def write_like_0_1_3(warehouse: Warehouse, moments: list[datetime.datetime]) -> None:
    """Rows in ``event_row`` the way smolqwery 0.1.3 wrote them: into the table, no ledger."""
    table = warehouse.qualified_name("event_row")
    if warehouse.vendor == "duckdb":
        import duckdb

        con = duckdb.connect(str(warehouse.path))  # type: ignore[attr-defined]
        try:
            for moment in moments:
                con.execute(
                    f'INSERT INTO {table} ("timestamp", kind, amount) VALUES (?, ?, 1)',
                    [moment, "old"],
                )
        finally:
            con.close()
        return
    from google.cloud import bigquery

    warehouse.client.query(  # type: ignore[attr-defined]
        f"INSERT INTO {table} (`timestamp`, kind, amount) SELECT t, 'old', 1 FROM UNNEST(@t) AS t",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ArrayQueryParameter("t", "TIMESTAMP", moments)]
        ),
    ).result()


def delete_rows_from(warehouse: Warehouse, moment: datetime.datetime) -> None:
    """Delete the rows of ``event_row`` from ``moment`` on, behind smolqwery's back."""
    table = warehouse.qualified_name("event_row")
    if warehouse.vendor == "duckdb":
        import duckdb

        con = duckdb.connect(str(warehouse.path))  # type: ignore[attr-defined]
        try:
            con.execute(f'DELETE FROM {table} WHERE "timestamp" >= ?', [moment])
        finally:
            con.close()
        return
    from google.cloud import bigquery

    warehouse.client.query(  # type: ignore[attr-defined]
        f"DELETE FROM {table} WHERE `timestamp` >= @t",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("t", "TIMESTAMP", moment)]
        ),
    ).result()


def test_d04_a_table_filled_by_0_1_3_is_read_in_local_days(
    duckdb_warehouse: Warehouse, configure: Any
) -> None:
    """0.1.3 resumed after the newest row's UTC date: west of UTC, a day was skipped forever.

    The table holds rows at 21:00 on the 3rd in New York (02:00 on the 4th in UTC) and no
    ledger: the 3rd is adopted, the 4th is exported, and so are the 1st and 2nd, which hold no
    rows (0.1.3 counted them done; their export can only add what it missed).
    """
    configure([EVENTS], d(3, 1), tz="America/New_York")
    create_tables(duckdb_warehouse, EventExtractor)
    for day in date_range(d(3, 1), d(3, 6)):
        add_events(day, 2, NEW_YORK)
    write_like_0_1_3(duckdb_warehouse, [datetime.datetime(YEAR, 3, 3, 21, 0, tzinfo=NEW_YORK)])
    with at(datetime.datetime(YEAR, 3, 7, 9, 0, tzinfo=NEW_YORK)):
        report = export(warehouse=duckdb_warehouse)
        assert (report.results[0].days, report.results[0].first_day) == (5, d(3, 1))
        assert report.results[0].last_day == d(3, 6)
        # Every day is in the ledger now, the 3rd counted per New York day: nothing to do.
        assert export(warehouse=duckdb_warehouse).results[0].days == 0
    assert ledger_counts(duckdb_warehouse, "event_row") == {
        **{day: 2 for day in date_range(d(3, 1), d(3, 6))},
        d(3, 3): 1,
    }


def test_d20_a_table_filled_by_0_1_3_is_adopted_once(warehouse: Warehouse, configure: Any) -> None:
    """The first run records the 0.1.3 days in the ledger; later runs never look at the table.

    0.1.3 left rows on the 1st, 3rd and 4th (Paris) and no ledger. The first run adopts those
    days with the table's own counts (the source is not read for them) and exports the 2nd
    (no rows in the table), the 5th and the 6th. Then every row from the 4th on is deleted
    behind smolqwery's back: a runner still looking at the table would export the 4th again;
    the ledger says it is done.
    """
    configure([EVENTS], d(3, 1))
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(3, 1), d(3, 7)):
        add_events(day, 4, PARIS)  # what a re-extraction of the legacy days would find
    write_like_0_1_3(
        warehouse,
        [
            datetime.datetime(YEAR, 3, 1, 12, 0, tzinfo=PARIS),
            # nothing on the 2nd: 0.1.3 counted it done; it is exported now
            datetime.datetime(YEAR, 3, 3, 0, 0, tzinfo=PARIS),
            datetime.datetime(YEAR, 3, 3, 23, 59, tzinfo=PARIS),
            datetime.datetime(YEAR, 3, 4, 0, 30, tzinfo=PARIS),  # 23:30 UTC on the 3rd
        ],
    )
    legacy = {d(3, 1): 1, d(3, 3): 2, d(3, 4): 1}

    with at(datetime.datetime(YEAR, 3, 7, 8, 0, tzinfo=PARIS)):
        first = export(warehouse=warehouse)
    assert first.ok
    events = result(first, "event_row")
    assert (events.days, events.first_day, events.last_day) == (3, d(3, 2), d(3, 6))
    ledger = warehouse.exported_days("event_row")
    expected = {**legacy, d(3, 2): 4, d(3, 5): 4, d(3, 6): 4}
    assert {day: e.rows for day, e in ledger.items()} == expected
    assert all(
        (e.schema_fingerprint, e.run_id) == (LEGACY_FINGERPRINT, first.run_id)
        for day, e in ledger.items()
        if day in legacy
    )
    assert ledger[d(3, 5)].schema_fingerprint != LEGACY_FINGERPRINT
    assert exported_counts(warehouse, "event_row", PARIS) == expected

    delete_rows_from(warehouse, datetime.datetime(YEAR, 3, 4, 0, 0, tzinfo=PARIS))
    with at(datetime.datetime(YEAR, 3, 8, 8, 0, tzinfo=PARIS)):
        second = export(warehouse=warehouse)
    events = result(second, "event_row")
    assert (events.days, events.first_day, events.last_day) == (1, d(3, 7), d(3, 7))
    assert sorted(warehouse.exported_days("event_row")) == date_range(d(3, 1), d(3, 7))
    assert warehouse.exported_days("event_row")[d(3, 4)] == ledger[d(3, 4)]


def test_issue13_first_date_moved_earlier_exports_the_new_days(
    warehouse: Warehouse, configure: Any
) -> None:
    """Regression (issue 13): moving SMOLQWERY_FIRST_DATE earlier after an export lost days.

    The ledger then started after FIRST_DATE; the table was taken for a 0.1.3 one and the 1st
    to the 14th were written to the ledger with 0 rows, never extracted, while status said 0
    missing.
    """
    configure([EVENTS, DAILY], d(3, 15))
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    for day in date_range(d(3, 1), d(3, 20)):
        add_events(day, 2, PARIS)
    with at(datetime.datetime(YEAR, 3, 21, 8, 0, tzinfo=PARIS)):
        assert export(warehouse=warehouse).ok
        configure([EVENTS, DAILY], d(3, 1))
        _, before = table_status(warehouse=warehouse)
        assert [s.missing_days for s in before] == [date_range(d(3, 1), d(3, 14))] * 2
        report = export(warehouse=warehouse)
        assert report.ok
        assert [(r.days, r.first_day, r.last_day) for r in report.results] == [
            (14, d(3, 1), d(3, 14))
        ] * 2
        _, after = table_status(warehouse=warehouse)
    days = date_range(d(3, 1), d(3, 20))
    assert ledger_counts(warehouse, "event_row") == source_counts(days, PARIS)
    assert exported_counts(warehouse, "event_row", PARIS) == source_counts(days, PARIS)
    assert ledger_counts(warehouse, "daily_events") == dict.fromkeys(days, 1)
    assert [(s.missing_days, s.exported_days) for s in after] == [([], 20)] * 2
    assert LEGACY_FINGERPRINT not in {
        e.schema_fingerprint for e in warehouse.exported_days("event_row").values()
    }


def test_issue13_a_range_first_then_a_plain_run_exports_every_day(
    warehouse: Warehouse, configure: Any
) -> None:
    """Regression (issue 13): ``--from D10 --to D10`` on a fresh table, then a plain run.

    Every day before the 10th was adopted as a 0.1.3 day with 0 rows and never extracted.
    """
    configure([EVENTS], d(3, 1))
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(3, 1), d(3, 12)):
        add_events(day, 3, PARIS)
    with at(datetime.datetime(YEAR, 3, 13, 8, 0, tzinfo=PARIS)):
        assert export(warehouse=warehouse, date_from=d(3, 10), date_to=d(3, 10)).ok
        _, between = table_status(warehouse=warehouse)
        assert between[0].missing_days == [
            *date_range(d(3, 1), d(3, 9)),
            d(3, 11),
            d(3, 12),
        ]
        report = export(warehouse=warehouse)
        _, after = table_status(warehouse=warehouse)
    assert (report.results[0].days, report.results[0].rows) == (11, 33)
    days = date_range(d(3, 1), d(3, 12))
    assert ledger_counts(warehouse, "event_row") == dict.fromkeys(days, 3)
    assert exported_counts(warehouse, "event_row", PARIS) == dict.fromkeys(days, 3)
    assert after[0].missing_days == []


def test_from_alone_re_exports_up_to_yesterday(warehouse: Warehouse, configure: Any) -> None:
    """``--from D`` without ``--to``: late data re-read in a running total's every later day."""
    configure([EVENTS, DAILY], d(3, 1))
    create_tables(warehouse, EventExtractor, DailyEventsExtractor)
    for day in date_range(d(3, 1), d(3, 6)):
        add_events(day, 1, PARIS)
    with at(datetime.datetime(YEAR, 3, 7, 8, 0, tzinfo=PARIS)):
        assert export(warehouse=warehouse).ok
        add_events(d(3, 3), 2, PARIS, kind="late")
        report = export(warehouse=warehouse, extractors=["daily_events"], date_from=d(3, 3))
    assert [(r.table, r.days, r.first_day, r.last_day) for r in report.results] == [
        ("daily_events", 4, d(3, 3), d(3, 6))
    ]
    days = date_range(d(3, 1), d(3, 6))
    daily = fetch_rows(warehouse, "daily_events", order_by=["date"])
    assert [(r["date"], r["events"]) for r in daily] == list(source_counts(days, PARIS).items())
    assert ledger_counts(warehouse, "event_row")[d(3, 3)] == 1  # not asked: left as it was


def test_export_runs_are_recorded_as_batches_commit(warehouse: Warehouse, configure: Any) -> None:
    """ExportRun rows are written as batches commit (what the admin page shows)."""
    configure([EVENTS], d(6, 1), batch_days=1)
    create_tables(warehouse, EventExtractor)
    seen: list[tuple[str, int]] = []

    class Watch(Progress):
        def batch_done(self, name: str, table: str, first: D, last: D, rows: int) -> None:
            run = ExportRun.objects.get(table_name=table)
            seen.append((run.status, run.days))

    with at(datetime.datetime(YEAR, 6, 4, 3, 0, tzinfo=PARIS)):
        export(warehouse=warehouse, progress=Watch())
    assert seen == [("running", 1), ("running", 2), ("running", 3)]
    assert ExportRun.objects.get().status == "success"
