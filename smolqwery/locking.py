"""The export lock: a lease row in the project's database, so overlapping crons take turns.

Exactly-once does not rest on this lock — every batch of days is replaced atomically in the
warehouse (delete + insert + ledger in one transaction), so two runs exporting the same day
still leave one copy. The lock keeps them from doing the work twice, and from racing each
other's replacements. It is a lease, not a held database lock: a holder that is killed stops
renewing it, and once it expires (``SMOLQWERY_LOCK_TIMEOUT`` seconds after the last renewal)
the next run takes it over.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from .errors import ExportLockedError
from .models import ExportLock

__all__ = ["EXPORT_LOCK", "Lease", "LeaseLostError", "acquire", "export_lock", "owner_id"]

logger = logging.getLogger("smolqwery.locking")

#: One lock for every export: runs never overlap, whatever extractors they name.
EXPORT_LOCK = "smolqwery.export"
#: Seconds between two attempts while waiting for the lock (``--wait``).
WAIT_POLL = 5.0


class LeaseLostError(ExportLockedError):
    """This run's lease expired and another run took it over: stop (a failure, not a skip)."""


def owner_id(run_id: str) -> str:
    """``host:pid:run_id``: enough to tell, from the admin or an error, who holds the lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"[:255]


def _now() -> datetime.datetime:
    return timezone.now()


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
    return (
        f"another export is running (owner {lock.owner}, since {since:%Y-%m-%d %H:%M:%S %Z}, "
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
) -> Iterator[Lease]:
    """Hold the export lock for the block; released even when the block fails.

    With ``wait``, retries every :data:`WAIT_POLL` seconds until the lock is free, for at
    most ``wait_timeout`` seconds (default: the lease timeout), then raises like without it.
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
            sleep(WAIT_POLL)
    try:
        yield lease
    finally:
        lease.release()
