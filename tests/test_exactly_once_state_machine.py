"""Exactly once under every order of operations: a stateful test against a reference model.

Hypothesis drives random sequences of what users and operators do — source rows added on any
day (late data included), ``export()`` plain, with ``--from``/``--to``, ``--from`` alone,
``--lag`` or ``--extractor``, ``SMOLQWERY_FIRST_DATE`` moved earlier or later, a day passing,
an extractor failing on some days, a run killed at a kill point, a table left by smolqwery
0.1.3 (rows, no ledger), units planned by ``--enqueue`` and taken by a worker any time later,
in any order, killed and redelivered — against the real warehouse, and after every step checks
the invariant against a model written in plain Python:

* every day from ``SMOLQWERY_FIRST_DATE`` to yesterday either has no ledger entry and is
  listed missing by :func:`~smolqwery.runner.table_status`, or the table holds exactly the rows
  the extractor gave for that day when it was last exported and the ledger counts them
  (before its first export, a 0.1.3 table's days holding rows count as done as they are);
* the ledger holds exactly the days the model exported, with their row counts;
* no row is ever duplicated;
* the delta view equals the day-to-day differences computed in Python from the table.

A killed run is simulated in-process: the warehouse raises :class:`Killed` (a
``BaseException``, like the ``SystemExit`` of a signal handler) before a batch, while its rows
stream into the transaction, or just after it committed. Real ``SIGKILL`` is
``tests/test_crash.py``'s job. Examples run on DuckDB here; the same machine runs on the
emulator in ``tests/test_exactly_once_bigquery.py`` (a file of its own, so that pytest-xdist
can run it beside this one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from smolqwery.days import date_range, day_window
from smolqwery.fanout import make_plan
from smolqwery.models import ExportLock, ExportRun, ExportUnit
from smolqwery.runner import export, table_status
from smolqwery.sql_views import render_view_sql
from smolqwery.units import Unit, run_unit
from smolqwery.warehouses.base import DayBatch, Warehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.exportapp import machine
from tests.exportapp.models import Event
from tests.exportapp.testing import PARIS, UTC, YEAR
from tests.fixtures.warehouses import make_batch

pytestmark = pytest.mark.django_db

EVENTS = "tests.exportapp.machine.MachineEventExtractor"
TOTALS = "tests.exportapp.machine.MachineTotalExtractor"
EVENT_TABLE = machine.MachineEventExtractor().get_schema()
TOTAL_TABLE = machine.MachineTotalExtractor().get_schema()
TABLES = {EVENTS: EVENT_TABLE, TOTALS: TOTAL_TABLE}
#: Days of the game: late March, so that Paris' 23-hour day is in it.
BASE = datetime.date(YEAR, 3, 24)
SPAN = 12
BATCH_DAYS = 3
#: Where a kill hits the ``n``-th ``replace_days`` of a run.
PHASES = ("before", "during", "after")
ONE = datetime.timedelta(days=1)
#: Where in a local day source rows are added: midnight, noon, the last microsecond.
MOMENTS = ("start", "middle", "end")
KILLS = st.none() | st.tuples(st.integers(1, 4), st.sampled_from(PHASES))

Rows = tuple[tuple[Any, ...], ...]


class Killed(BaseException):
    """The run dies here."""


class Killable:
    """The real warehouse, killing the run at the ``n``-th ``replace_days`` when armed."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.plan: tuple[int, str] | None = None
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.warehouse, name)

    def replace_days(self, batch: DayBatch) -> None:
        self.calls += 1
        if self.plan is None or self.plan[0] != self.calls:
            self.warehouse.replace_days(batch)
            return
        phase = self.plan[1]
        if phase == "before":
            raise Killed(phase)
        if phase == "during":
            self.warehouse.replace_days(dataclasses.replace(batch, chunks=_dying(batch.chunks)))
            raise AssertionError("the rows of a killed batch were all consumed")
        self.warehouse.replace_days(batch)
        raise Killed(phase)


def _dying(chunks: Any) -> Iterator[Any]:
    """Death when the warehouse pulls the batch's rows: inside its transaction (DuckDB, after
    the day's DELETE) or while the load file is written (BigQuery)."""
    raise Killed("during")
    yield from chunks


def local_day(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.astimezone(PARIS).date()
    assert isinstance(value, datetime.date)
    return value


def row_key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    if table == EVENT_TABLE.name:
        return (row["timestamp"].astimezone(UTC), row["amount"])
    return (row["date"], row["events"], row["amount"])


@dataclasses.dataclass
class Model:
    """What the warehouse must hold, worked out without smolqwery."""

    today: datetime.date
    first: datetime.date
    source: dict[int, datetime.datetime] = dataclasses.field(default_factory=dict)
    failing: set[datetime.date] = dataclasses.field(default_factory=set)
    #: table -> day -> rows the extractor gave when the day was last exported.
    exported: dict[str, dict[datetime.date, Rows]] = dataclasses.field(default_factory=dict)
    #: table -> day -> rows smolqwery 0.1.3 left (no ledger), until the table is adopted.
    legacy: dict[str, dict[datetime.date, Rows]] = dataclasses.field(default_factory=dict)
    #: unit id -> a unit planned by ``--enqueue``, and its state.
    queued: dict[str, Queued] = dataclasses.field(default_factory=dict)

    @property
    def yesterday(self) -> datetime.date:
        return self.today - datetime.timedelta(days=1)

    def rows(self, table: str, day: datetime.date) -> Rows:
        """What the extractor gives for ``day`` from the source as it is now."""
        end = day_window(day, PARIS).end
        if table == EVENT_TABLE.name:
            return tuple(
                sorted((m, amount) for amount, m in self.source.items() if local_day(m) == day)
            )
        before = [amount for amount, m in self.source.items() if m < end]
        return ((day, len(before), sum(before)),)

    def run(
        self,
        tables: list[str],
        date_from: datetime.date | None,
        date_to: datetime.date | None,
        lag: int,
        kill: tuple[int, str] | None,
    ) -> bool:
        """Apply one export run; True when the kill hit."""
        try:
            return self._run(tables, date_from, date_to, lag, kill)
        finally:  # once the ledger knows a table, nothing of it is adopted any more
            for table in tables:
                if self.exported[table]:
                    self.legacy.pop(table, None)

    def _run(
        self,
        tables: list[str],
        date_from: datetime.date | None,
        date_to: datetime.date | None,
        lag: int,
        kill: tuple[int, str] | None,
    ) -> bool:
        calls = 0
        for table in tables:
            self.exported.setdefault(table, {})
        for table in tables:
            done = self.exported[table]
            for batch in batches(self.days(table, date_from, date_to, lag)):
                calls += 1
                hit = kill is not None and kill[0] == calls
                if hit and kill is not None and kill[1] in ("before", "during"):
                    return True
                if table == EVENT_TABLE.name and self.failing.intersection(batch):
                    break  # the extractor fails: its later batches are not tried
                done.update({d: self.rows(table, d) for d in batch})
                if hit:
                    return True
        return False

    def days(
        self, table: str, date_from: datetime.date | None, date_to: datetime.date | None, lag: int
    ) -> list[datetime.date]:
        """The days a run (or a plan) takes for ``table``, after adopting a 0.1.3 table."""
        last = self.yesterday
        done = self.exported.setdefault(table, {})
        legacy = self.legacy.get(table, {})
        if not done:  # a 0.1.3 table: its days holding rows join the ledger as they are
            done.update({d: r for d, r in legacy.items() if self.first <= d <= last and r})
        if date_from is not None:
            return date_range(date_from, date_to or last)
        days = [d for d in date_range(self.first, last) if d not in done]
        if lag:
            start = max(self.first, last - datetime.timedelta(days=lag - 1))
            days = sorted(set(days).union(date_range(start, last)))
        return days

    def plan(
        self,
        run: str,
        tables: list[str],
        date_from: datetime.date | None,
        date_to: datetime.date | None,
        lag: int,
    ) -> list[Queued]:
        """``--enqueue``: the units recorded, and earlier queued units they supersede."""
        forced = date_from is not None or lag > 0
        units = [
            Queued(run, table, tuple(batch), forced)
            for table in tables
            for batch in batches(self.days(table, date_from, date_to, lag))
        ]
        for table in tables:
            if self.exported[table]:
                self.legacy.pop(table, None)
        for old in self.queued.values():
            if old.status == "queued":
                covering = {
                    day
                    for u in units
                    if u.table == old.table and (u.forced or not old.forced)
                    for day in u.days
                }
                if covering.issuperset(old.days):
                    old.status = "superseded"
        return units

    def deliver(self, unit: Queued, kill: str | None, spooled: bool) -> str:
        """A worker runs ``unit`` (killed at ``kill``): what happened, ``killed`` included."""
        if unit.status in ("done", "superseded"):
            return "skipped"
        done = self.exported.setdefault(unit.table, {})
        if not unit.forced and done.keys() >= set(unit.days):
            unit.status = "done"
            return "skipped"
        fails = unit.table == EVENT_TABLE.name and bool(self.failing.intersection(unit.days))
        # A spooled unit (DuckDB) extracts before it writes: the extractor fails first.
        if fails and (spooled or kill not in ("before", "during")):
            unit.status = "failed"
            return "failed"
        if kill in ("before", "during"):
            unit.status = "failed"
            return "killed"
        done.update({d: self.rows(unit.table, d) for d in unit.days})
        self.legacy.pop(unit.table, None)
        unit.status = "failed" if kill else "done"
        return "killed" if kill else "done"


@dataclasses.dataclass
class Queued:
    """A unit on the queue, as the model sees it."""

    run: str
    table: str
    days: tuple[datetime.date, ...]
    forced: bool
    status: str = "queued"


def batches(days: list[datetime.date]) -> list[list[datetime.date]]:
    out: list[list[datetime.date]] = []
    for day in days:
        if out and day - out[-1][-1] == datetime.timedelta(days=1) and len(out[-1]) < BATCH_DAYS:
            out[-1].append(day)
        else:
            out.append([day])
    return out


def expected_delta(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The delta view's definition: a day's change from the previous calendar day, else NULL
    across a gap, and the first day's own value."""
    out: list[tuple[Any, ...]] = []
    previous: dict[str, Any] | None = None
    for row in sorted(rows, key=lambda r: r["date"]):
        if previous is None:
            delta = (row["events"], row["amount"])
        elif (row["date"] - previous["date"]).days == 1:
            delta = (row["events"] - previous["events"], row["amount"] - previous["amount"])
        else:
            delta = (None, None)
        out.append((row["date"], *delta))
        previous = row
    return out


class ExactlyOnce(RuleBasedStateMachine):
    """One project over a few weeks: its source, its warehouse, its cron and its operators."""

    #: Set by the test: the warehouse, its tables and view created, emptied for each example.
    warehouse: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.warehouse = type(self).warehouse
        self.killable = Killable(self.warehouse)
        run_sql(
            self.warehouse, "DELETE FROM {} WHERE TRUE", [*ledgers(self.warehouse), *TABLES_BY_NAME]
        )
        Event.objects.all().delete()
        ExportRun.objects.all().delete()
        ExportLock.objects.all().delete()
        machine.FAILING_DAYS.clear()
        self.amounts = itertools.count(1)
        self.model = Model(today=BASE + datetime.timedelta(days=4), first=BASE)
        #: Unit ids published by ``--enqueue`` and not taken by a worker yet.
        self.queue: list[str] = []
        ExportUnit.objects.all().delete()
        self.clock: Any = None
        #: Whether the warehouse or what status must say may have changed since the last check.
        self.dirty = True
        self.travel()

    # -- helpers ---------------------------------------------------------------------------

    def travel(self) -> None:
        if self.clock is not None:
            self.clock.stop()
        moment = datetime.datetime.combine(self.model.today, datetime.time(9, 0), PARIS)
        self.clock = time_machine.travel(moment, tick=False)
        self.clock.start()
        django_settings.SMOLQWERY_FIRST_DATE = self.model.first

    def teardown(self) -> None:
        if self.clock is not None:
            self.clock.stop()
        machine.FAILING_DAYS.clear()

    def day(self, offset: int) -> datetime.date:
        return BASE + datetime.timedelta(days=offset)

    # -- rules -----------------------------------------------------------------------------

    @initialize(
        today=st.integers(2, 6),
        first=st.integers(0, 5),
    )
    def start(self, today: int, first: int) -> None:
        self.model.today = self.day(today)
        self.model.first = min(self.day(first), self.model.yesterday)
        self.travel()

    @rule(offset=st.integers(0, SPAN), moments=st.lists(st.sampled_from(MOMENTS), min_size=1))
    def add_source_rows(self, offset: int, moments: list[str]) -> None:
        """Rows created on a past day (late data), yesterday or today, at the day's edges."""
        day = min(self.day(offset), self.model.today)
        window = day_window(day, PARIS)
        for where in moments:
            moment = {
                "start": window.start,
                "middle": window.start + (window.end - window.start) / 2,
                "end": window.end - datetime.timedelta(microseconds=1),
            }[where].astimezone(UTC)
            amount = next(self.amounts)
            Event.objects.create(created_at=moment, amount=amount)
            self.model.source[amount] = moment

    @rule(kill=KILLS)
    def cron_run(self, kill: tuple[int, str] | None) -> None:
        """``smolqwery_extract`` from cron; sometimes killed."""
        self.export(None, None, 0, None, kill)

    @rule(
        which=st.sampled_from(["range", "from", "lag", "extractor"]),
        start=st.integers(0, SPAN),
        length=st.integers(0, 4),
        lag=st.integers(1, 4),
        only=st.sampled_from([None, EVENTS, TOTAL_TABLE.name]),
        kill=KILLS,
    )
    def operator_run(
        self,
        which: str,
        start: int,
        length: int,
        lag: int,
        only: str | None,
        kill: tuple[int, str] | None,
    ) -> None:
        """``smolqwery_extract --from D [--to D]``, ``--lag N`` or ``--extractor X``."""
        last = self.model.yesterday
        date_from = date_to = None
        if which in ("range", "from"):
            date_from = min(self.day(start), last)
            if which == "range":
                date_to = min(date_from + datetime.timedelta(days=length), last)
        if which == "extractor" and only is None:
            only = EVENTS
        self.export(date_from, date_to, lag if which == "lag" else 0, only, kill)

    def export(
        self,
        date_from: datetime.date | None,
        date_to: datetime.date | None,
        lag: int,
        only: str | None,
        kill: tuple[int, str] | None,
    ) -> None:
        self.dirty = True
        names = [p for p in TABLES if only is None or only in (p, TABLES[p].name)]
        tables = [TABLES[p].name for p in names]
        self.killable.plan, self.killable.calls = kill, 0
        expect_kill = self.model.run(tables, date_from, date_to, lag, kill)
        killed = False
        try:
            report = export(
                extractors=[only] if only else None,
                date_from=date_from,
                date_to=date_to,
                lag=lag,
                warehouse=self.killable,  # type: ignore[arg-type]
            )
        except Killed:
            killed = True
        finally:
            self.killable.plan = None
        assert killed == expect_kill
        if not killed:
            failed = {r.table for r in report.failed}
            assert failed <= {EVENT_TABLE.name}, [r.error for r in report.failed]

    @rule(
        which=st.sampled_from(["cron", "range", "lag"]),
        start=st.integers(0, SPAN),
        length=st.integers(0, 4),
        lag=st.integers(1, 4),
    )
    def enqueue(self, which: str, start: int, length: int, lag: int) -> None:
        """``smolqwery_extract --enqueue`` (cron, or an operator's range or lag): the units are
        recorded and wait for a worker."""
        date_from = date_to = None
        if which == "range":
            date_from = min(self.day(start), self.model.yesterday)
            date_to = min(date_from + datetime.timedelta(days=length), self.model.yesterday)
        lag = lag if which == "lag" else 0
        plan = make_plan(date_from=date_from, date_to=date_to, lag=lag, warehouse=self.warehouse)
        assert not plan.failures, plan.failures
        expected = self.model.plan(plan.run_id, list(TABLES_BY_NAME), date_from, date_to, lag)
        got = [(u.table, tuple(u.days), u.forced) for u in plan.units]
        assert sorted(got) == sorted((u.table, u.days, u.forced) for u in expected)
        for u in plan.units:
            self.model.queued[u.unit_id] = next(
                q for q in expected if (q.table, q.days) == (u.table, tuple(u.days))
            )
            self.queue.append(u.unit_id)
        self.dirty = True

    @precondition(lambda self: self.queue)
    @rule(pick=st.integers(0, 63), kill=st.none() | st.sampled_from(PHASES))
    def a_worker_takes_a_unit(self, pick: int, kill: str | None) -> None:
        """A worker takes any unit on the queue (late, out of order), sometimes dies in it; a
        unit whose worker died goes back on the queue (``acks_late``)."""
        unit_id = self.queue.pop(pick % len(self.queue))
        record = ExportUnit.objects.get(unit_id=unit_id)
        spooled = self.warehouse.ops.capabilities.single_writer
        expected = self.model.deliver(self.model.queued[unit_id], kill, spooled)
        self.killable.plan, self.killable.calls = ((1, kill) if kill else None), 0
        try:
            result = run_unit(
                Unit.from_record(record), warehouse=self.killable, queued=True, spool=True
            )
        except Killed:
            outcome = "killed"
            self.queue.append(unit_id)  # redelivered
        else:
            outcome = {"done": "done", "skipped": "skipped", "failed": "failed"}[result.status]
        finally:
            self.killable.plan = None
        assert outcome == expected, (outcome, expected)
        assert ExportUnit.objects.get(unit_id=unit_id).status == self.model.queued[unit_id].status
        self.dirty = True

    @rule(offset=st.integers(0, SPAN))
    def move_first_date(self, offset: int) -> None:
        """``SMOLQWERY_FIRST_DATE`` moved earlier (more history) or later."""
        self.model.first = min(self.day(offset), self.model.yesterday)
        django_settings.SMOLQWERY_FIRST_DATE = self.model.first
        self.dirty = True

    @precondition(lambda self: self.model.today < BASE + datetime.timedelta(days=SPAN))
    @rule()
    def a_day_passes(self) -> None:
        self.model.today += datetime.timedelta(days=1)
        self.travel()
        self.dirty = True

    @rule(offset=st.integers(0, SPAN), failing=st.booleans())
    def source_fails_on(self, offset: int, failing: bool) -> None:
        """The event extractor raises on that day (or works again)."""
        day = self.day(offset)
        (machine.FAILING_DAYS.add if failing else machine.FAILING_DAYS.discard)(day)
        (self.model.failing.add if failing else self.model.failing.discard)(day)

    @precondition(lambda self: not any(self.model.exported.values()) and not self.model.legacy)
    @rule(
        table=st.sampled_from([EVENT_TABLE.name, TOTAL_TABLE.name]),
        offsets=st.sets(st.integers(0, SPAN), min_size=1, max_size=6),
    )
    def left_by_0_1_3(self, table: str, offsets: set[int]) -> None:
        """The table was filled by smolqwery 0.1.3: rows for some days, and no ledger."""
        schema = EVENT_TABLE if table == EVENT_TABLE.name else TOTAL_TABLE
        days = sorted({min(self.day(o), self.model.yesterday) for o in offsets})
        legacy: dict[datetime.date, Rows] = {}
        for day in days:
            rows = self.model.rows(table, day)
            dicts = [
                dict(
                    zip(
                        ["timestamp", "amount"]
                        if table == EVENT_TABLE.name
                        else ["date", "events", "amount"],
                        r,
                        strict=True,
                    )
                )
                for r in rows
            ]
            self.warehouse.replace_days(make_batch(schema, day, rows=dicts, run_id="0.1.3"))
            legacy[day] = rows
        forget_ledger(self.warehouse, table)
        self.model.legacy[table] = legacy
        self.dirty = True

    # -- the invariant ---------------------------------------------------------------------

    @invariant()
    def exactly_once(self) -> None:
        if not self.dirty:  # only the source changed: neither the warehouse nor status did
            return
        self.dirty = False
        model, wh = self.model, self.warehouse
        last = model.yesterday
        _, statuses = table_status(warehouse=wh)  # type: ignore[arg-type]
        missing = {s.table: set(s.missing_days) for s in statuses}
        assert all(not s.error for s in statuses), [s.error for s in statuses]
        entries = [e for ledger in ledgers(wh) for e in fetch_rows(wh, ledger)]
        held_rows: dict[str, list[dict[str, Any]]] = {}
        for table in (EVENT_TABLE.name, TOTAL_TABLE.name):
            ledger = {e["day"]: e["rows"] for e in entries if e["table_name"] == table}
            assert len(ledger) == len([e for e in entries if e["table_name"] == table])
            exported = model.exported.get(table, {})
            assert ledger == {d: len(r) for d, r in exported.items()}, table
            held: dict[datetime.date, list[tuple[Any, ...]]] = {}
            rows = held_rows[table] = fetch_rows(wh, table)
            keys = [row_key(table, r) for r in rows]
            duplicates = [k for k, n in Counter(keys).items() if n > 1]
            assert not duplicates, (table, duplicates)
            for row, key in zip(rows, keys, strict=True):
                held.setdefault(local_day(row[TABLES_BY_NAME[table].date_column]), []).append(key)
            legacy = model.legacy.get(table, {})
            for day in date_range(model.first, last):
                if day in exported:
                    assert sorted(held.get(day, [])) == sorted(exported[day]), (table, day)
                    assert day not in missing[table], (table, day)
                elif legacy.get(day) and not exported:
                    assert sorted(held.get(day, [])) == sorted(legacy[day]), (table, day)
                    assert day not in missing[table], (table, day)
                else:
                    assert day in missing[table], (table, day, "not in the ledger, not missing")
        recorded = dict(ExportUnit.objects.values_list("unit_id", "status"))
        assert {u: recorded[u] for u in model.queued} == {
            u: q.status for u, q in model.queued.items()
        }
        totals = held_rows[TOTAL_TABLE.name]
        delta = fetch_rows(wh, TOTAL_TABLE.delta_view_name)
        assert sorted((r["date"], r["events"], r["amount"]) for r in delta) == expected_delta(
            totals
        )


TABLES_BY_NAME = {t.name: t for t in TABLES.values()}


def run_sql(warehouse: Warehouse, sql: str, tables: list[str], table_name: str = "") -> None:
    """``sql`` on each of ``tables`` behind smolqwery's back (``@t``/``?``: ``table_name``)."""
    statements = [sql.format(warehouse.qualified_name(t)) for t in tables]
    if warehouse.vendor == "duckdb":
        import duckdb

        con = duckdb.connect(str(warehouse.path))  # type: ignore[attr-defined]
        try:
            for statement in statements:
                con.execute(statement.replace("@t", "?"), [table_name] if table_name else [])
        finally:
            con.close()
        return
    from google.cloud import bigquery

    params = [bigquery.ScalarQueryParameter("t", "STRING", table_name)] if table_name else []
    for statement in statements:
        warehouse.client.query(  # type: ignore[attr-defined]
            statement, job_config=bigquery.QueryJobConfig(query_parameters=params)
        ).result()


def ledgers(warehouse: Warehouse) -> list[str]:
    """The ledger tables of the scenario's tables (one shared, or one per table)."""
    return sorted({warehouse.ledger_of(t) for t in TABLES_BY_NAME})


def forget_ledger(warehouse: Warehouse, table: str) -> None:
    """Delete a table's ledger entries behind smolqwery's back (a 0.1.3 table had none)."""
    run_sql(warehouse, "DELETE FROM {} WHERE table_name = @t", [warehouse.ledger_of(table)], table)


@contextlib.contextmanager
def prepared(warehouse: Warehouse) -> Iterator[None]:
    """The machine's tables on ``warehouse``; settings changed by its steps restored after."""
    for table in TABLES.values():
        warehouse.create_table(table)
    warehouse.create_or_replace_view(
        TOTAL_TABLE.delta_view_name, render_view_sql("delta", TOTAL_TABLE, warehouse)
    )
    ExactlyOnce.warehouse = warehouse
    with override_settings(
        TIME_ZONE="Europe/Paris",
        SMOLQWERY_EXTRACTORS=list(TABLES),
        SMOLQWERY_BATCH_DAYS=BATCH_DAYS,
        SMOLQWERY_FIRST_DATE=BASE,
    ):
        yield


def play(warehouse: Warehouse, examples: int, steps: int) -> None:
    with prepared(warehouse):
        run_state_machine_as_test(
            ExactlyOnce,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )


@contextlib.contextmanager
def duckdb_machine(tmp_path: Path) -> Iterator[Warehouse]:
    import duckdb

    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    path = tmp_path / "machine.duckdb"
    # Held open for the test: the warehouse's own connections then share the open database
    # instead of opening the file for each operation (50 ms each).
    keeper = duckdb.connect(str(path))
    try:
        with DuckDBWarehouse(path, "smolqwery_machine", busy_timeout=10) as wh:
            wh.ensure_dataset()
            yield wh
    finally:
        keeper.close()


#: Steps per example: enough for an export, late data, a moved FIRST_DATE and a re-export.
STEPS = 8
#: Fewer on the emulator, which spends a core on every query (25 examples of 6 steps took
#: 11.6 minutes on a loaded machine): an export, late data and a re-export still fit.
EMULATOR_STEPS = 4
#: The emulator's examples: the runner's logic is proven by the 200 DuckDB examples; these
#: prove that BigQuery's replace keeps the same invariant (25 examples took 8.7 minutes of
#: CI's 25 on a loaded machine).
EMULATOR_EXAMPLES = 12


def test_exactly_once_on_duckdb(tmp_path: Path) -> None:
    with duckdb_machine(tmp_path) as wh:
        play(wh, examples=200, steps=STEPS)


# -- what the machine found, replayed --------------------------------------------------------


def test_found_a_day_without_rows_in_a_0_1_3_table_was_called_done(tmp_path: Path) -> None:
    """Found before the fix: 0.1.3 rows on the 25th only, FIRST_DATE the 24th. The 24th was
    counted done (0.1.3's 'every day up to the last one'), yet the table lacked it."""
    with duckdb_machine(tmp_path) as wh, prepared(wh):
        state = ExactlyOnce()
        try:
            state.start(today=2, first=0)
            state.exactly_once()
            state.left_by_0_1_3(offsets={1}, table=TOTAL_TABLE.name)
            state.exactly_once()
            state.cron_run(kill=None)
            state.exactly_once()
        finally:
            state.teardown()
    assert ExactlyOnce.warehouse.exported_days(TOTAL_TABLE.name).keys() == {BASE, BASE + ONE}


def test_found_a_range_first_made_status_call_earlier_days_done(tmp_path: Path) -> None:
    """Found before the fix (issue 13's second scenario, shrunk): ``--from 25th --to 25th`` on a
    fresh table, FIRST_DATE the 24th: status called the 24th done (a '0.1.3 day'), and the
    next plain run would have adopted it with 0 rows instead of exporting it."""
    with duckdb_machine(tmp_path) as wh, prepared(wh):
        state = ExactlyOnce()
        try:
            state.start(today=2, first=0)
            state.add_source_rows(offset=0, moments=["start", "end"])
            state.operator_run(kill=None, lag=1, length=0, only=None, start=1, which="range")
            state.exactly_once()
            state.cron_run(kill=None)
            state.exactly_once()
        finally:
            state.teardown()
    assert {d: e.rows for d, e in wh.exported_days(EVENT_TABLE.name).items()} == {
        BASE: 2,
        BASE + ONE: 0,
    }


def test_found_from_alone_was_refused(tmp_path: Path) -> None:
    """Found before the fix: ``--from D`` without ``--to`` was an error (running totals)."""
    with duckdb_machine(tmp_path) as wh, prepared(wh):
        state = ExactlyOnce()
        try:
            state.start(today=2, first=0)
            state.operator_run(kill=None, lag=1, length=0, only=None, start=0, which="from")
            state.exactly_once()
        finally:
            state.teardown()


def test_found_a_cron_plan_dropped_a_queued_forced_range(tmp_path: Path) -> None:
    """Found before the fix (shrunk): ``--enqueue --from 24th --to 24th``, then the nightly
    ``--enqueue`` before a worker took the range: the range's units were marked superseded by
    the plain plan, so the re-export the operator asked for would never have run."""
    with duckdb_machine(tmp_path) as wh, prepared(wh):
        state = ExactlyOnce()
        try:
            state.start(today=2, first=0)
            state.enqueue(lag=1, length=0, start=0, which="range")
            state.exactly_once()
            state.enqueue(lag=1, length=0, start=0, which="cron")
            state.exactly_once()
            while state.queue:
                state.a_worker_takes_a_unit(pick=0, kill=None)
                state.exactly_once()
        finally:
            state.teardown()
    assert set(ExportUnit.objects.values_list("forced", "status")) == {
        (True, "done"),
        (False, "done"),
    }
