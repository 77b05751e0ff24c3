"""Per-table export leases (issue 17): units of different tables run at the same time, two units
of one table take turns, and a dead holder of this host is taken over at once, as for the
global lease."""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolqwery.errors import ExportLockedError
from smolqwery.locking import (
    EXPORT_LOCK,
    TABLE_LOCK_PREFIX,
    LeaseLostError,
    acquire,
    live_run_ids,
    owner_id,
    run_state,
    table_lock,
    table_lock_name,
)
from smolqwery.models import ExportLock, ExportRun

pytestmark = [pytest.mark.django_db, pytest.mark.source_db]

NOW = datetime.datetime(2026, 6, 10, 4, 0, tzinfo=datetime.timezone.utc)


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_two_tables_are_held_at_once_one_table_takes_turns() -> None:
    with time_machine.travel(NOW, tick=False):
        a = acquire(table_lock_name("events"), "host-a:1:run-a", 600)
        b = acquire(table_lock_name("daily"), "host-b:2:run-b", 600)
        with pytest.raises(ExportLockedError) as info:
            acquire(table_lock_name("events"), "host-c:3:run-c", 600)
        assert str(info.value).startswith(
            "another export of table events is running (owner host-a:1:run-a, since "
        )
        a.release()
        acquire(table_lock_name("events"), "host-c:3:run-c", 600).release()
        b.release()
    assert not ExportLock.objects.exists()


def test_a_table_lease_does_not_block_the_global_one_nor_the_reverse() -> None:
    """The global lease stays for what is global (an enqueue's planning); tables have theirs."""
    glob = acquire(EXPORT_LOCK, "host-a:1:plan", 600)
    acquire(table_lock_name("events"), "host-b:2:unit", 600).release()
    glob.release()


def test_the_context_manager_waits_for_the_table_and_releases_it() -> None:
    holder = acquire(table_lock_name("events"), "host-a:1:busy", 600)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        holder.release()

    with table_lock("events", "waiter", 600, wait=True, sleep=sleep, poll=0.5) as lease:
        assert ExportLock.objects.get().owner == lease.owner == owner_id("waiter")
        lease.renew()
    assert naps == [0.5]
    assert not ExportLock.objects.exists()


def test_an_expired_table_lease_is_taken_over_and_its_holder_stops() -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        stalled = acquire(table_lock_name("events"), "host-a:1:stalled", 60)
        clock.shift(61)
        acquire(table_lock_name("events"), "host-b:2:next", 60)
        with pytest.raises(LeaseLostError):
            stalled.renew()


def test_a_dead_holder_of_a_table_is_taken_over_at_once() -> None:
    ExportLock.objects.create(
        name=table_lock_name("events"),
        owner=f"{socket.gethostname()}:{_exited_pid()}:killed-unit",
        acquired_at=timezone.now(),
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    assert live_run_ids() == frozenset()
    lease = acquire(table_lock_name("events"), owner_id("next"), 3600)
    assert ExportLock.objects.get().owner == lease.owner
    assert live_run_ids() == frozenset({"next"})


def test_live_run_ids_and_run_state_see_every_table_holder() -> None:
    acquire(table_lock_name("events"), owner_id("run-1"), 600)
    acquire(table_lock_name("daily"), owner_id("run-2"), 600)
    ExportLock.objects.create(  # another host, expired: not alive
        name=table_lock_name("other"),
        owner="elsewhere:1:run-3",
        acquired_at=timezone.now() - datetime.timedelta(hours=2),
        expires_at=timezone.now() - datetime.timedelta(hours=1),
    )
    live = live_run_ids()
    assert live == frozenset({"run-1", "run-2"})
    running = ExportRun(run_id="run-2", status=ExportRun.Status.RUNNING)
    gone = ExportRun(run_id="run-3", status=ExportRun.Status.RUNNING)
    assert run_state(running, live) == "running"
    assert run_state(gone, live) == "interrupted"
    assert run_state(running, "run-2") == "running"  # the single-lease form still works


@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from("ab_9"),
            min_size=0,
            max_size=5,
        ).map(lambda tail: "t" * 250 + tail),
        min_size=2,
        max_size=6,
        unique=True,
    )
)
@settings(max_examples=50, deadline=None)
def test_long_table_names_get_distinct_leases_that_fit(names: list[str]) -> None:
    """Tables sharing a long prefix never share a lease, and no lease name is over 255."""
    leases = [table_lock_name(n) for n in names]
    assert len(set(leases)) == len(names)
    assert all(len(lease) <= 255 and lease.startswith(TABLE_LOCK_PREFIX) for lease in leases)


# -- the property: at most one holder per table, whatever happens ------------------------------

TABLES = ("events", "daily", "users")
OWNERS = ("host-a:1:r1", "host-b:2:r2", "host-c:3:r3")
operations = st.lists(
    st.tuples(
        st.sampled_from(("acquire", "release", "renew", "wait")),
        st.sampled_from(TABLES),
        st.sampled_from(OWNERS),
        st.integers(min_value=1, max_value=90),
    ),
    max_size=25,
)


@given(operations)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_at_most_one_live_holder_per_table(ops: list[tuple[str, str, str, int]]) -> None:
    """Acquire, release, renew and time passing, in any order, by three owners on three tables:
    a table has at most one holder; an acquire succeeds exactly when the table is free or its
    lease ran out; a holder whose lease was taken over can neither renew nor release it."""
    ExportLock.objects.all().delete()
    timeout = 60
    model: dict[str, tuple[str, datetime.datetime]] = {}  # table -> (owner, expires)
    leases: dict[tuple[str, str], Any] = {}
    with time_machine.travel(NOW, tick=False) as clock:
        for op, table, owner, seconds in ops:
            now = timezone.now()
            held = model.get(table)
            free = held is None or held[1] <= now
            if op == "acquire":
                try:
                    leases[table, owner] = acquire(table_lock_name(table), owner, timeout)
                    assert free
                    model[table] = (owner, now + datetime.timedelta(seconds=timeout))
                except ExportLockedError:
                    assert not free
            elif op == "release":
                lease = leases.pop((table, owner), None)
                if lease is not None:
                    lease.release()
                    if held is not None and held[0] == owner:
                        del model[table]
            elif op == "renew":
                lease = leases.get((table, owner))
                if lease is not None:
                    try:
                        lease.renew()
                        assert held is not None and held[0] == owner
                        model[table] = (owner, now + datetime.timedelta(seconds=timeout))
                    except LeaseLostError:
                        assert held is None or held[0] != owner
            else:
                clock.shift(seconds)
            rows = {lock.name: lock.owner for lock in ExportLock.objects.all()}
            expected = {table_lock_name(t): o for t, (o, _) in model.items()}
            assert rows == expected
