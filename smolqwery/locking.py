"""The export lock: a lease row in the project's database, so overlapping crons take turns.

Exactly-once does not rest on this lock — every batch of days is replaced atomically in the
warehouse (delete + insert + ledger in one transaction), so two runs exporting the same day
still leave one copy. The lock keeps them from doing the work twice, and from racing each
other's replacements. It is a lease, not a held database lock: a holder that is killed stops
renewing it, and once it expires (``SMOLQWERY_LOCK_TIMEOUT`` seconds after the last renewal)
the next run takes it over.

A holder on this host is checked at once: its owner says ``host:pid:run_id``, and when no process
with that pid exists, or the process with that pid started after the lease was acquired (the pid
was reused), the holder is dead and its lease is taken over without waiting for the timeout.
That check reads ``/proc`` (Linux); elsewhere, or for a holder on another host, the timeout
stands. Two machines sharing a database must not share a host name (containers included).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from .errors import ExportLockedError, LeaseLostError
from .models import ExportLock, ExportRun

__all__ = [
    "DUCKDB_WRITER_LOCK",
    "EXPORT_LOCK",
    "INTERRUPTED",
    "TABLE_LOCK_PREFIX",
    "Lease",
    "LeaseLostError",
    "acquire",
    "export_lock",
    "holder_is_dead",
    "live_run_id",
    "live_run_ids",
    "owner_id",
    "run_state",
    "table_lock",
    "table_lock_name",
]

logger = logging.getLogger("smolqwery.locking")

#: One lock for every export: runs never overlap, whatever extractors they name.
EXPORT_LOCK = "smolqwery.export"
#: Prefix of the per-table leases: units of different tables run at the same time, two units
#: of one table take turns (issue 17).
TABLE_LOCK_PREFIX = "smolqwery.table:"
#: The lease a DuckDB write takes when units run beside each other (one writer per file):
#: waiting for it is the normal turn-taking of one run's units, not another export.
DUCKDB_WRITER_LOCK = "smolqwery.duckdb"
#: Seconds between two attempts while waiting for the lock (``--wait``).
WAIT_POLL = 5.0
#: ``ExportLock.name`` is a CharField(255); longer table names are shortened with a hash.
_NAME_LENGTH = 255


def table_lock_name(table: str) -> str:
    """The lease of one export table: distinct for distinct tables, at most 255 characters.

    BigQuery table names reach 1,024 characters: a long one keeps its first 200 and a hash of
    the whole, so two tables never share a lease.
    """
    name = TABLE_LOCK_PREFIX + table
    if len(name) <= _NAME_LENGTH:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:32]
    return f"{TABLE_LOCK_PREFIX}{table[:200]}#{digest}"


def owner_id(run_id: str) -> str:
    """``host:pid:run_id``: enough to tell, from the admin or an error, who holds the lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"[:255]


#: What status and the admin show for a run still marked running whose process is gone.
INTERRUPTED = "interrupted"


def _now() -> datetime.datetime:
    return timezone.now()


def _split_owner(owner: str) -> tuple[str, int, str] | None:
    """``(host, pid, run_id)`` of an owner written by :func:`owner_id`, None otherwise."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


#: Slack when comparing a process's start with a lease's acquisition: the boot time in
#: ``/proc/stat`` is whole seconds, clock ticks are 10 ms.
_START_SLACK = datetime.timedelta(seconds=2)


def _process_start(pid: int) -> datetime.datetime | None:
    """When process ``pid`` started (aware, UTC), None if it no longer runs (gone or zombie).

    Raises OSError or ValueError when this cannot be known (no ``/proc``, hidden processes).
    """
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, owned by another user
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return None
    ticks = int(fields[19])
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    seconds = boot + ticks / os.sysconf("SC_CLK_TCK")
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


def _is_local(owner: tuple[str, int, str] | None) -> bool:
    return owner is not None and owner[0] == socket.gethostname()


def holder_is_dead(lock: ExportLock) -> bool:
    """True only when the holder is known dead: a process of this host that no longer runs.

    A pid that runs again but started after the lease was acquired is another process (pid
    reuse, or a reboot since). Holders on other hosts and owners in another format give False:
    their lease runs until it expires. Without ``/proc`` (macOS), a running pid counts as alive.
    """
    owner = _split_owner(lock.owner)
    if os.name != "posix" or not _is_local(owner):
        return False  # not ours to judge (on Windows, os.kill would terminate the holder)
    assert owner is not None
    if owner[1] == os.getpid():
        return False  # this very process (a nested call)
    try:
        started = _process_start(owner[1])
    except (OSError, ValueError, IndexError, StopIteration):
        return False  # it runs, but when it started cannot be read (no /proc): alive
    if started is None:
        return True
    acquired = lock.acquired_at
    if timezone.is_naive(acquired):  # USE_TZ = False: local wall time
        acquired = timezone.make_aware(acquired)
    return started > acquired + _START_SLACK


def live_run_id(name: str = EXPORT_LOCK) -> str | None:
    """The run id of the run holding the lock and still alive, as far as can be known.

    An ``ExportRun`` still marked running that is not this run was interrupted: killed, or its
    lease expired or was taken over. A holder on another host counts as alive until its lease
    expires.
    """
    lock = ExportLock.objects.filter(name=name).first()
    return None if lock is None else _live_holder(lock)


def live_run_ids() -> frozenset[str]:
    """The run ids holding any export lease (global or per table) and still alive."""
    held = (_live_holder(lock) for lock in ExportLock.objects.all())
    return frozenset(run for run in held if run is not None)


def _live_holder(lock: ExportLock) -> str | None:
    owner = _split_owner(lock.owner)
    if owner is None:
        return None
    if holder_is_dead(lock):
        return None
    if _is_local(owner) and Path("/proc/self/stat").exists():
        return owner[2]  # alive here, even past its lease (a slow batch it may still finish)
    return owner[2] if lock.expires_at > _now() else None


class Lease:
    """A held lock; :meth:`renew` it as work completes, :meth:`release` it when done."""

    def __init__(self, name: str, owner: str, timeout: float) -> None:
        self.name = name
        self.owner = owner
        self.timeout = datetime.timedelta(seconds=timeout)

    def renew(self) -> None:
        """Push the expiry back; raises :class:`ExportLockedError` if another run took over."""
        updated = ExportLock.objects.filter(name=self.name, owner=self.owner).update(
            expires_at=_now() + self.timeout
        )
        if not updated:
            holder = ExportLock.objects.filter(name=self.name).first()
            raise LeaseLostError(
                f"the export lock expired and was taken over by "
                f"{holder.owner if holder else 'nobody'}; this run stops (raise "
                "SMOLQWERY_LOCK_TIMEOUT above the time one batch of days takes)"
            )

    def release(self) -> None:
        ExportLock.objects.filter(name=self.name, owner=self.owner).delete()
        logger.debug("released lock %s (%s)", self.name, self.owner)


def _local(moment: datetime.datetime) -> datetime.datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def _describe(lock: ExportLock) -> str:
    since, until = _local(lock.acquired_at), _local(lock.expires_at)
    what = "another export is running"
    if lock.name.startswith(TABLE_LOCK_PREFIX):
        what = f"another export of table {lock.name[len(TABLE_LOCK_PREFIX) :]} is running"
    elif lock.name == DUCKDB_WRITER_LOCK:
        what = "another unit or plan has the DuckDB file's writer turn"
    return (
        f"{what} (owner {lock.owner}, since {since:%Y-%m-%d %H:%M:%S %Z}, "
        f"lease until {until:%Y-%m-%d %H:%M:%S %Z})"
    )


def acquire(name: str, owner: str, timeout: float) -> Lease:
    """Take the lock now, or raise :class:`ExportLockedError` saying who holds it.

    Atomic without a table lock: taking over an expired lease is one conditional UPDATE,
    taking a free one is one INSERT that the primary key makes fail for all but one process.
    """
    try:
        return _acquire(name, owner, timeout)
    except OperationalError as exc:
        # SQLite in its default journal mode refuses every write while another process reads:
        # typically the running export streaming its source tables. That is "locked", not a
        # crash; the holder's row is still readable and says who it is.
        if "locked" not in str(exc).lower():
            raise
        holder = ExportLock.objects.filter(name=name).first()
        if holder is not None:
            raise ExportLockedError(_describe(holder)) from None
        raise ExportLockedError(
            "another export is probably running: the database refused to record the export "
            f"lock ({exc}); with SQLite, enable WAL mode so that writes do not wait for readers"
        ) from None


def _acquire(name: str, owner: str, timeout: float) -> Lease:
    now = _now()
    expires = now + datetime.timedelta(seconds=timeout)
    taken = ExportLock.objects.filter(name=name, expires_at__lte=now).update(
        owner=owner, acquired_at=now, expires_at=expires
    )
    if taken:
        logger.warning("took over the expired export lock %s (now held by %s)", name, owner)
        return Lease(name, owner, timeout)
    try:
        with transaction.atomic():
            ExportLock.objects.create(name=name, owner=owner, acquired_at=now, expires_at=expires)
    except IntegrityError:
        holder = ExportLock.objects.filter(name=name).first()
        if holder is None:  # released between our two statements: try once more
            return _acquire(name, owner, timeout)
        if holder_is_dead(holder):
            # Conditional on the dead owner and its acquisition: of two runs taking over at
            # once, one wins and the other finds the lock held by a live process.
            dead = ExportLock.objects.filter(
                name=name, owner=holder.owner, acquired_at=holder.acquired_at
            ).update(owner=owner, acquired_at=now, expires_at=expires)
            if dead:
                logger.warning(
                    "took over the export lock %s from %s, a process of this host that no "
                    "longer exists (killed?); now held by %s",
                    name,
                    holder.owner,
                    owner,
                )
                return Lease(name, owner, timeout)
            return _acquire(name, owner, timeout)
        raise ExportLockedError(_describe(holder)) from None
    logger.debug("acquired lock %s (%s)", name, owner)
    return Lease(name, owner, timeout)


@contextlib.contextmanager
def export_lock(
    run_id: str,
    timeout: float,
    *,
    wait: bool = False,
    wait_timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    name: str = EXPORT_LOCK,
    poll: float = WAIT_POLL,
) -> Iterator[Lease]:
    """Hold the export lock for the block; released even when the block fails.

    With ``wait``, retries every ``poll`` seconds (:data:`WAIT_POLL`) until the lock is free,
    for at most ``wait_timeout`` seconds (default: the lease timeout), then raises like
    without it.
    """
    owner = owner_id(run_id)
    deadline = time.monotonic() + (timeout if wait_timeout is None else wait_timeout)
    while True:
        try:
            lease = acquire(name, owner, timeout)
            break
        except ExportLockedError as exc:
            if not wait or time.monotonic() >= deadline:
                raise
            logger.info("%s; waiting", exc)
            sleep(poll)
    try:
        yield lease
    finally:
        lease.release()


def table_lock(
    table: str,
    run_id: str,
    timeout: float,
    *,
    wait: bool = False,
    wait_timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = WAIT_POLL,
) -> contextlib.AbstractContextManager[Lease]:
    """Hold the lease of one export table for the block (see :func:`export_lock`).

    Same rules as the global lease: one holder at a time, renewed as work completes, expired
    leases and dead holders of this host taken over.
    """
    return export_lock(
        run_id,
        timeout,
        wait=wait,
        wait_timeout=wait_timeout,
        sleep=sleep,
        name=table_lock_name(table),
        poll=poll,
    )


def run_state(run: ExportRun, live: str | frozenset[str] | None) -> str:
    """A run's status as people should read it: ``interrupted`` for a run marked running that
    is not a live holder of a lock (``live``: from :func:`live_run_id` or
    :func:`live_run_ids`)."""
    alive = live if isinstance(live, frozenset) else frozenset({live} if live else ())
    if run.status == str(ExportRun.Status.RUNNING) and run.run_id not in alive:
        return INTERRUPTED
    return str(run.status)
