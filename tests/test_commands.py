"""The three export commands, through ``call_command`` and as real child processes."""

from __future__ import annotations

import csv
import datetime
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from smolqwery.models import ExportLock, ExportRun
from smolqwery.warehouses.base import Warehouse
from tests.exportapp.extractors import DailyEventsExtractor, EventExtractor, HostileExtractor
from tests.exportapp.testing import (
    DAILY,
    EVENTS,
    HOSTILE,
    PARIS,
    YEAR,
    add_events,
    at,
    configurer,
    create_tables,
    d,
    ledger_counts,
    point_at,
    source_counts,
)
from tests.fixtures.crash import EVENT_TABLE

pytestmark = [pytest.mark.django_db, pytest.mark.source_db]

MORNING = datetime.datetime(YEAR, 6, 4, 6, 0, tzinfo=PARIS)


@pytest.fixture
def configure(settings: Any) -> Any:
    return configurer(settings)


@pytest.fixture
def wh(warehouse: Warehouse, settings: Any, request: pytest.FixtureRequest) -> Warehouse:
    """The parametrized warehouse, also what the commands' ``get_warehouse()`` returns."""
    point_at(settings, warehouse, request)
    return warehouse


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


#: The local time that starts every line of an export without a terminal (cron).
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d ", re.MULTILINE)


def unstamp(text: str) -> str:
    """``text`` without its timestamps, after checking that every line has one."""
    lines = text.splitlines()
    assert all(STAMP.match(line) for line in lines), text
    return STAMP.sub("", text)


def test_extract_exports_then_has_nothing_to_do(wh: Warehouse, configure: Any) -> None:
    configure([EVENTS, DAILY], d(6, 1))
    create_tables(wh, EventExtractor, DailyEventsExtractor)
    for day, n in zip([d(6, 1), d(6, 2), d(6, 3)], [2, 0, 4], strict=True):
        add_events(day, n, PARIS)
    with at(MORNING):
        out, err = run("smolqwery_extract")
        assert err == ""
        assert out.startswith(f"{YEAR}-06-04 06:00:")  # Paris time, to the second
        out = unstamp(out)
        assert "event_row: 3 day(s) to export" in out
        assert f"event_row: {YEAR}-06-02 read, 0 row(s)" in out  # a line per day
        assert f"event_row: exported {YEAR}-06-01..{YEAR}-06-03 (3 day(s), 6 row(s))" in out
        summary = out[out.index("table  ") :].splitlines()
        assert summary[0].split() == [
            "table", "status", "days", "rows", "first", "day", "last", "day", "seconds"
        ]  # fmt: skip
        assert summary[1].split()[:6] == [
            "event_row", "success", "3", "6", f"{YEAR}-06-01", f"{YEAR}-06-03"
        ]  # fmt: skip
        assert summary[2].split()[:4] == ["daily_events", "success", "3", "3"]
        assert "2 extractor(s), 9 row(s), all succeeded" in summary[3]
        assert ledger_counts(wh, "event_row") == source_counts([d(6, 1), d(6, 2), d(6, 3)], PARIS)

        again, _ = run("smolqwery_extract", "--no-progress")
        assert "event_row: up to date" in again and "daily_events: up to date" in again
    assert ExportRun.objects.filter(status="success").count() == 4


def test_extract_verbosity_zero_prints_nothing_when_all_is_well(
    wh: Warehouse, configure: Any
) -> None:
    configure([EVENTS], d(6, 1))
    create_tables(wh, EventExtractor)
    with at(MORNING):
        assert run("smolqwery_extract", "-v", "0") == ("", "")
        out, _ = run("smolqwery_extract", "-v", "2", "--lag", "1")
    assert f"event_row: {YEAR}-06-03 read, 0 row(s)" in out


def test_extract_a_failing_extractor_exits_non_zero_after_exporting_the_others(
    duckdb_warehouse: Warehouse,
    configure: Any,
    settings: Any,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point_at(settings, duckdb_warehouse, request)
    monkeypatch.setattr(HostileExtractor, "mode", "surrogate")
    configure([HOSTILE, EVENTS], d(6, 1))
    create_tables(duckdb_warehouse, HostileExtractor, EventExtractor)
    add_events(d(6, 2), 3, PARIS)
    out, err = io.StringIO(), io.StringIO()
    with at(MORNING), pytest.raises(CommandError) as info:
        call_command("smolqwery_extract", "-v", "2", stdout=out, stderr=err)
    assert info.value.returncode == 1
    assert str(info.value) == "1 extractor(s) failed: hostile_row"
    assert info.value.__cause__ is None  # our own refusal: no traceback to show
    failure = unstamp(err.getvalue())  # once, on stderr, even at -v 2 (no traceback)
    assert failure == (
        f"hostile_row: FAILED: tests.exportapp.extractors.HostileExtractor: day {YEAR}-06-01, "
        "row 3: field 'name' (STRING) is not valid UTF-8 (lone surrogate at position 3): "
        "'abc\\ud800'\n"
    )
    assert "FAILED" not in out.getvalue()
    assert "1 failed" in out.getvalue()
    assert duckdb_warehouse.exported_days("hostile_row") == {}
    assert sum(ledger_counts(duckdb_warehouse, "event_row").values()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", f"{YEAR}-02-30", "--to", f"{YEAR}-03-01"],
            f"'{YEAR}-02-30' is not a valid day",
        ),
        (["--from", "yesterday", "--to", f"{YEAR}-03-01"], "'yesterday' is not a valid day"),
        (["--from", f"{YEAR}-03-01", "--to", "03/01/2024"], "'03/01/2024' is not a valid day"),
        (["--to", f"{YEAR}-03-01"], "--to needs --from"),
        (["--from", f"{YEAR}-06-04"], f"--from {YEAR}-06-04 is not a complete day yet"),
        (["--from", f"{YEAR}-03-02", "--to", f"{YEAR}-03-01"], "the range to re-export is empty"),
        (["--from", f"{YEAR}-06-01", "--to", f"{YEAR}-06-04"], "is not a complete day yet"),
        (["--lag", "-1"], "'-1' is not a whole number of days"),
        (["--lag", "2", "--from", f"{YEAR}-06-01", "--to", f"{YEAR}-06-02"], "--lag cannot be"),
        (["--extractor", "nope"], "no extractor in SMOLQWERY_EXTRACTORS matches 'nope'"),
    ],
)
def test_d18_malformed_options_are_clear_errors(
    duckdb_warehouse: Warehouse,
    settings: Any,
    request: pytest.FixtureRequest,
    configure: Any,
    args: list[str],
    message: str,
) -> None:
    point_at(settings, duckdb_warehouse, request)
    wh = duckdb_warehouse
    configure([EVENTS], d(1, 1))
    create_tables(wh, EventExtractor)
    with at(MORNING), pytest.raises(CommandError, match=message):
        run("smolqwery_extract", *args)
    assert wh.exported_days("event_row") == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", f"{YEAR}-13-01"], f"argument -f/--first-date: '{YEAR}-13-01' is not a valid day"),
        (["-l", "2024-1-5x"], "argument -l/--last-date: '2024-1-5x' is not a valid day"),
        (["-f", f"{YEAR}-06-03", "-l", f"{YEAR}-06-01"], "first day .* is after last day"),
    ],
)
def test_d18_print_extract_refuses_malformed_days(
    configure: Any, args: list[str], message: str
) -> None:
    configure([EVENTS], d(1, 1))
    with pytest.raises(CommandError, match=message):
        run("smolqwery_print_extract", *args)


def test_extract_exits_zero_when_another_export_holds_the_lock(
    wh: Warehouse, configure: Any
) -> None:
    configure([EVENTS], d(6, 1))
    create_tables(wh, EventExtractor)
    add_events(d(6, 1), 2, PARIS)
    with at(MORNING):
        ExportLock.objects.create(
            name="smolqwery.export",
            owner="cron-host:4242:abc",
            acquired_at=MORNING - datetime.timedelta(minutes=5),
            expires_at=MORNING + datetime.timedelta(minutes=55),
        )
        out = unstamp(run("smolqwery_extract")[0])
    assert out.startswith(
        f"another export is running (owner cron-host:4242:abc, since {YEAR}-06-04 05:55:00 CEST"
    )
    assert "nothing done (--wait waits for it)" in out
    assert wh.exported_days("event_row") == {}
    assert not ExportRun.objects.exists()


def test_print_extract_prints_rows_and_writes_nothing(
    configure: Any, settings: Any, tmp_path: Path
) -> None:
    """Not even the warehouse file is created: a dry run touches no warehouse at all."""
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "never.duckdb")
    configure([EVENTS, DAILY], d(6, 1))
    add_events(d(6, 2), 2, PARIS)
    add_events(d(6, 3), 1, PARIS)
    with at(MORNING):
        table, _ = run("smolqwery_print_extract", "-f", f"{YEAR}-06-02")
        default, _ = run("smolqwery_print_extract", "--extractor", "daily_events")
        raw, _ = run("smolqwery_print_extract", "-f", f"{YEAR}-06-02", "--format", "json")
        comma, _ = run("smolqwery_print_extract", "-f", f"{YEAR}-06-01", "--format", "csv")

    assert f"== event_row {YEAR}-06-02 (2 row(s))" in table
    assert f"== daily_events {YEAR}-06-03 (1 row(s))" in table
    lines = table.splitlines()
    header = lines.index(f"== event_row {YEAR}-06-02 (2 row(s))") + 1
    assert lines[header].split() == ["timestamp", "kind", "amount", "note"]
    assert lines[header + 2].split() == [f"{YEAR}-06-01T22:00:00+00:00", "click", "1", "NULL"]
    # -l defaults to yesterday, -f to -l.
    assert default.splitlines()[0] == f"== daily_events {YEAR}-06-03 (1 row(s))"
    assert default.count("==") == 1

    doc = json.loads(raw)
    assert [(c["table"], c["day"], len(c["rows"])) for c in doc] == [
        ("event_row", f"{YEAR}-06-02", 2),
        ("event_row", f"{YEAR}-06-03", 1),
        ("daily_events", f"{YEAR}-06-02", 1),
        ("daily_events", f"{YEAR}-06-03", 1),
    ]
    assert doc[0]["rows"][0] == {
        "timestamp": f"{YEAR}-06-01T22:00:00+00:00",
        "kind": "click",
        "amount": 1,
        "note": None,
    }
    assert doc[2]["rows"] == [{"date": f"{YEAR}-06-02", "events": 2, "amount": 3}]

    blocks = comma.split("\n\n")
    events = list(csv.reader(io.StringIO(blocks[0])))
    assert events[0] == ["table", "timestamp", "kind", "amount", "note"]
    assert len(events) == 1 + 3
    daily = list(csv.reader(io.StringIO(blocks[1])))
    assert daily[0] == ["table", "date", "events", "amount"]
    assert daily[1:] == [
        ["daily_events", f"{YEAR}-06-01", "0", "0"],
        ["daily_events", f"{YEAR}-06-02", "2", "3"],
        ["daily_events", f"{YEAR}-06-03", "1", "1"],
    ]

    assert not (tmp_path / "never.duckdb").exists()
    assert not ExportRun.objects.exists()
    assert not ExportLock.objects.exists()


def test_print_extract_reports_rows_an_export_would_refuse(
    configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HostileExtractor, "mode", "naive")
    configure([HOSTILE, DAILY], d(6, 1))
    out, err = io.StringIO(), io.StringIO()
    with at(MORNING), pytest.raises(CommandError, match="1 extractor"):
        call_command("smolqwery_print_extract", stdout=out, stderr=err)
    assert (
        f"hostile_row: FAILED: tests.exportapp.extractors.HostileExtractor: day {YEAR}-06-03, row 3"
        in err.getvalue()
    )
    assert "naive datetime" in err.getvalue()
    assert f"== daily_events {YEAR}-06-03 (1 row(s))" in out.getvalue()


def test_d22_commands_never_configure_the_root_logger(
    wh: Warehouse, configure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    configure([EVENTS, HOSTILE], d(6, 1))
    create_tables(wh, EventExtractor, HostileExtractor)
    add_events(d(6, 1), 2, PARIS)
    caplog.set_level(logging.DEBUG)
    root = logging.getLogger()
    ours = logging.getLogger("smolqwery")
    before = (root.level, list(root.handlers), ours.level, list(ours.handlers), ours.propagate)
    with at(MORNING):
        run("smolqwery_extract", "-v", "3")
        run("smolqwery_status", "-v", "3")
        run("smolqwery_print_extract", "-v", "3")
    after = (root.level, list(root.handlers), ours.level, list(ours.handlers), ours.propagate)
    assert before == after
    ours_records = [r for r in caplog.records if "/smolqwery/" in r.pathname]
    assert ours_records, "the runner logs what it does"
    assert {r.name.split(".")[0] for r in ours_records} == {"smolqwery"}
    assert any(r.name == "smolqwery.runner" for r in ours_records)


# -- real processes --------------------------------------------------------------------------


def test_commands_in_real_processes(scenario_on: Any) -> None:
    """cron's view: exit statuses and output of the three commands, run as child processes."""
    scenario = scenario_on("duckdb", days=3)

    status = scenario.run("--max-lag", "1", command="smolqwery_status")
    assert status.returncode == 1, status.describe()
    assert f"{EVENT_TABLE} lags 3 day(s) (max 1)" in status.stderr

    dry = scenario.run("-f", scenario.first_day.isoformat(), command="smolqwery_print_extract")
    assert dry.returncode == 0, dry.describe()
    assert f"== {EVENT_TABLE} {scenario.first_day.isoformat()}" in dry.stdout
    with scenario.warehouse() as warehouse:
        assert warehouse.exported_days(EVENT_TABLE) == {}

    first = scenario.run("--no-progress")
    assert first.returncode == 0, first.describe()
    assert f"{EVENT_TABLE}: 3 day(s) to export" in first.stdout
    assert "2 extractor(s)" in first.stdout and "all succeeded" in first.stdout
    assert scenario.problems() == []

    second = scenario.run()  # no terminal: plain lines even without --no-progress
    assert second.returncode == 0, second.describe()
    assert f"{EVENT_TABLE}: up to date" in second.stdout

    ok = scenario.run("--max-lag", "0", "--format", "json", command="smolqwery_status")
    assert ok.returncode == 0, ok.describe()
    tables = {t["table"]: t for t in json.loads(ok.stdout)["tables"]}
    assert tables[EVENT_TABLE]["lag"] == 0 and tables[EVENT_TABLE]["missing_days"] == []
    assert tables[EVENT_TABLE]["exported_days"] == 3


def test_d18_malformed_dates_in_a_real_process(scenario_on: Any) -> None:
    scenario = scenario_on("duckdb", days=2)
    bad = scenario.run("--from", "2024-02-30", "--to", "2024-03-01")
    assert bad.returncode == 2, bad.describe()  # argparse's usage error
    assert "argument --from: '2024-02-30' is not a valid day: use YYYY-MM-DD" in bad.stderr
    assert "Traceback" not in bad.output
    printed = scenario.run("-l", "tomorrow", command="smolqwery_print_extract")
    assert printed.returncode == 2, printed.describe()
    assert "argument -l/--last-date: 'tomorrow' is not a valid day" in printed.stderr
    with scenario.warehouse() as warehouse:
        assert warehouse.exported_days(EVENT_TABLE) == {}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_progress_bar_shows_days_and_rows(
    duckdb_warehouse: Warehouse, configure: Any
) -> None:
    from smolqwery.reporting import RichProgress, make_progress
    from smolqwery.runner import export

    configure([EVENTS, HOSTILE], d(6, 1))
    create_tables(duckdb_warehouse, EventExtractor, HostileExtractor)
    add_events(d(6, 2), 4, PARIS)
    screen = _Terminal()
    progress = make_progress(screen)
    assert isinstance(progress, RichProgress)
    assert not isinstance(make_progress(_Terminal(), bar=False), RichProgress)
    assert not isinstance(make_progress(io.StringIO()), RichProgress)
    HostileExtractor.mode = "nan"
    try:
        with at(MORNING):
            export(warehouse=duckdb_warehouse, progress=progress)
    finally:
        HostileExtractor.mode = "ok"
    shown = screen.getvalue()
    assert "event_row" in shown and "3/3" in shown and "4 rows" in shown
    assert "hostile_row: FAILED:" in shown and "finite number" in shown


def test_extract_fails_when_its_lease_is_taken_over(
    duckdb_warehouse: Warehouse,
    configure: Any,
    settings: Any,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run that outlived its lease stops with an error (unlike a run that finds the lock)."""
    point_at(settings, duckdb_warehouse, request)
    configure([EVENTS], d(6, 1), batch_days=1)
    create_tables(duckdb_warehouse, EventExtractor)
    original = EventExtractor.extract

    def extract(self: Any, date_start: datetime.datetime, date_end: datetime.datetime) -> Any:
        ExportLock.objects.update(owner="other-host:99:newer")  # as a takeover would
        return original(self, date_start, date_end)

    monkeypatch.setattr(EventExtractor, "extract", extract)
    with at(MORNING), pytest.raises(CommandError, match="taken over by other-host:99:newer"):
        run("smolqwery_extract")
    assert sorted(duckdb_warehouse.exported_days("event_row")) == [d(6, 1)]
    assert ExportRun.objects.get().status == "failed"


def test_print_extract_table_cells_keep_a_row_on_one_line() -> None:
    """Newlines, tabs and backslashes of a value print escaped in the table format (JSON and
    CSV carry them as they are): a row stays one line, and ``a\\nb`` reads back unambiguously."""
    from smolqwery.management.commands.smolqwery_print_extract import _cell

    assert _cell("two\nlines\tand\r\\n") == "two\\nlines\\tand\\r\\\\n"
    assert _cell(None) == "NULL" and _cell("plain") == "plain"
