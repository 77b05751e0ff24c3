"""The export lock (D6): one export at a time, expired leases taken over, and exactly-once even
when a run loses its lease in the middle.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from smolqwery.errors import ExportLockedError
from smolqwery.locking import (
    DUCKDB_WRITER_LOCK,
    EXPORT_LOCK,
    LeaseLostError,
    acquire,
    export_lock,
    holder_is_dead,
    live_run_id,
    owner_id,
)
from smolqwery.models import ExportLock, ExportRun
from smolqwery.reporting import Progress
from smolqwery.runner import export
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.exportapp.extractors import EventExtractor
from tests.exportapp.testing import (
    EVENTS,
    PARIS,
    YEAR,
    D,
    add_events,
    at,
    configurer,
    create_tables,
    d,
    date_range,
    exported_counts,
    ledger_counts,
    source_counts,
)

pytestmark = [pytest.mark.django_db, pytest.mark.source_db]

NOW = datetime.datetime(YEAR, 6, 10, 4, 0, tzinfo=PARIS)


@pytest.fixture
def configure(settings: Any) -> Any:
    return configurer(settings)


def test_the_lock_is_exclusive_and_says_who_holds_it() -> None:
    with at(NOW):
        lease = acquire(EXPORT_LOCK, "host-a:1:run-a", 600)
        with pytest.raises(ExportLockedError) as info:
            acquire(EXPORT_LOCK, "host-b:2:run-b", 600)
        assert str(info.value) == (
            f"another export is running (owner host-a:1:run-a, since {YEAR}-06-10 04:00:00 CEST, "
            f"lease until {YEAR}-06-10 04:10:00 CEST)"
        )
        lease.release()
        acquire(EXPORT_LOCK, "host-b:2:run-b", 600).release()
    assert not ExportLock.objects.exists()


def test_a_wait_for_the_duckdb_writer_turn_does_not_read_as_another_export() -> None:
    """A worker's log showed "another export is running" while units of its own run took turns
    on the DuckDB file: the writer lease names itself."""
    with at(NOW):
        lease = acquire(DUCKDB_WRITER_LOCK, "host-a:1:run-a", 600)
        with pytest.raises(ExportLockedError) as info:
            acquire(DUCKDB_WRITER_LOCK, "host-a:2:run-a", 600)
        assert str(info.value).startswith(
            "another unit or plan has the DuckDB file's writer turn (owner host-a:1:run-a, "
        )
        lease.release()


def test_an_expired_lease_is_taken_over_and_its_holder_cannot_renew() -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        dead = acquire(EXPORT_LOCK, "host-a:1:killed", 60)
        clock.shift(59)
        with pytest.raises(ExportLockedError):
            acquire(EXPORT_LOCK, "host-b:2:next", 60)
        clock.shift(2)  # the killed holder never renewed: its lease ran out
        taken = acquire(EXPORT_LOCK, "host-b:2:next", 60)
        assert ExportLock.objects.get().owner == "host-b:2:next"
        with pytest.raises(LeaseLostError, match="taken over by host-b:2:next"):
            dead.renew()
        dead.release()  # releasing a lease we lost leaves the new holder alone
        assert ExportLock.objects.get().owner == "host-b:2:next"
        clock.shift(50)
        taken.renew()  # renewing pushes the expiry back
        clock.shift(50)
        with pytest.raises(ExportLockedError):
            acquire(EXPORT_LOCK, "host-c:3:late", 60)


def test_waiting_for_the_lock_retries_until_it_is_free() -> None:
    holder = acquire(EXPORT_LOCK, "host-a:1:busy", 600)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            holder.release()

    with export_lock("waiter", 600, wait=True, sleep=sleep) as lease:
        assert ExportLock.objects.get().owner == lease.owner == owner_id("waiter")
    assert naps == [5.0, 5.0, 5.0]
    assert not ExportLock.objects.exists()

    acquire(EXPORT_LOCK, "host-a:1:busy", 600)
    with pytest.raises(ExportLockedError), export_lock("impatient", 600, wait=True, wait_timeout=0):
        pass


def test_the_lock_is_released_when_the_export_fails() -> None:
    with pytest.raises(RuntimeError), export_lock("run", 600):
        assert ExportLock.objects.exists()
        raise RuntimeError("boom")
    assert not ExportLock.objects.exists()


def test_d06_an_overlapping_export_is_refused_and_writes_nothing(
    warehouse: Warehouse, configure: Any
) -> None:
    """A second export started while the first one runs (here: from inside its extractor)."""
    configure([EVENTS], d(6, 1))
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(6, 1), d(6, 9)):
        add_events(day, 3, PARIS)
    refusals: list[str] = []

    class Overlapping(Progress):
        def day_done(self, name: str, table: str, day: D, rows: int) -> None:
            if day == d(6, 2):
                try:
                    export(warehouse=warehouse)
                except ExportLockedError as exc:
                    refusals.append(str(exc))

    with at(NOW):
        report = export(warehouse=warehouse, progress=Overlapping())
    assert report.ok
    assert len(refusals) == 1 and refusals[0].startswith("another export is running (owner ")
    assert report.run_id in refusals[0]
    expected = source_counts(date_range(d(6, 1), d(6, 9)), PARIS)
    assert ledger_counts(warehouse, "event_row") == expected
    assert exported_counts(warehouse, "event_row", PARIS) == expected
    assert ExportRun.objects.count() == 1  # the refused run recorded nothing


def test_d06_exactly_once_even_when_a_run_loses_its_lease(
    warehouse: Warehouse, configure: Any, settings: Any
) -> None:
    """Run A stalls past its lease after its first batch; run B takes the expired lease over and
    exports the remaining days; A notices it lost the lock before its next batch and stops.
    Every day ends up exported once, by one run or the other."""
    configure([EVENTS], d(6, 1), batch_days=3)
    settings.SMOLQWERY_LOCK_TIMEOUT = 60
    create_tables(warehouse, EventExtractor)
    for day in date_range(d(6, 1), d(6, 9)):
        add_events(day, 2, PARIS)
    outcome: dict[str, Any] = {}

    with time_machine.travel(NOW, tick=False) as clock:

        class Stalling(Progress):
            def batch_done(self, name: str, table: str, first: D, last: D, rows: int) -> None:
                if "b" not in outcome:
                    clock.shift(120)  # A's lease has expired
                    outcome["b"] = export(warehouse=warehouse)

        with pytest.raises(LeaseLostError, match="taken over by nobody"):
            export(warehouse=warehouse, progress=Stalling())
    assert outcome["b"].ok and outcome["b"].results[0].days == 9 - 3
    expected = source_counts(date_range(d(6, 1), d(6, 9)), PARIS)
    assert ledger_counts(warehouse, "event_row") == expected
    assert exported_counts(warehouse, "event_row", PARIS) == expected
    rows = [(r["timestamp"], r["amount"]) for r in fetch_rows(warehouse, "event_row")]
    assert len(rows) == len(set(rows)) == sum(expected.values())
    a = ExportRun.objects.exclude(run_id=outcome["b"].run_id).get()
    assert a.status == "failed" and "taken over" in a.error and a.days == 3


# -- holders that died on this host (issue 13) -------------------------------------------------


def _lock_of(pid: int, acquired: datetime.datetime, host: str | None = None) -> ExportLock:
    return ExportLock.objects.create(
        name=EXPORT_LOCK,
        owner=f"{host or socket.gethostname()}:{pid}:held",
        acquired_at=acquired,
        expires_at=acquired + datetime.timedelta(hours=1),
    )


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_holder_of_this_host_is_taken_over_at_once() -> None:
    """The lease has an hour to run, but no process has its pid any more."""
    _lock_of(_exited_pid(), timezone.now())
    assert live_run_id() is None
    lease = acquire(EXPORT_LOCK, owner_id("next"), 3600)
    assert ExportLock.objects.get().owner == lease.owner == owner_id("next")
    assert live_run_id() == "next"  # this process: alive


def test_a_killed_holder_not_yet_reaped_is_dead() -> None:
    """A zombie (killed, its parent has not waited for it) still has its pid; it is dead."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _lock_of(proc.pid, timezone.now())
        assert not holder_is_dead(lock)  # alive, and started before it took the lock
        with pytest.raises(ExportLockedError):
            acquire(EXPORT_LOCK, owner_id("next"), 3600)
        proc.kill()
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
        assert holder_is_dead(lock)
        acquire(EXPORT_LOCK, owner_id("next"), 3600)
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_does_not_keep_a_dead_holder_alive() -> None:
    """The pid runs again, but that process started after the lease was acquired."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _lock_of(proc.pid, timezone.now() - datetime.timedelta(minutes=10))
        assert holder_is_dead(lock)
        assert acquire(EXPORT_LOCK, owner_id("next"), 3600).owner == owner_id("next")
    finally:
        proc.kill()
        proc.wait()


def test_holders_elsewhere_keep_their_lease_until_it_expires() -> None:
    """Another host's pid says nothing here; nor does an owner in an unknown format."""
    lock = _lock_of(_exited_pid(), timezone.now(), host="another-host")
    assert not holder_is_dead(lock)
    assert live_run_id() == "held"
    with pytest.raises(ExportLockedError, match="another-host"):
        acquire(EXPORT_LOCK, owner_id("next"), 3600)
    ExportLock.objects.update(owner="legacy owner", expires_at=timezone.now())
    assert not holder_is_dead(ExportLock.objects.get())
    assert live_run_id() is None  # expired: taken over by the next run
    acquire(EXPORT_LOCK, owner_id("next"), 3600)
