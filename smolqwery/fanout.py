"""Fan-out: one run's units run by local processes (``--jobs N``) or queued for Celery workers
(``--enqueue``) and followed to their end (``--wait``).

Planning is the exporter's (same checks, same days); running a unit is :func:`run_unit`'s,
wherever it happens. The report is built from the :class:`~smolqwery.models.ExportUnit` rows,
so ``--jobs`` and ``--enqueue --wait`` print the summary of an in-process run and exit the same
way; units that did not finish (a broker stopped, a worker gone) are reported by name, and the
next run plans their days again from the ledger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .errors import SmolqweryError
from .exporter import Exporter, ExportReport, Progress
from .history import prune_history
from .jobs import init_child, run_child
from .locking import export_lock
from .models import ExportUnit
from .registry import select_extractors
from .runs import Plan, finish, recorded_plan
from .units import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Unit,
    mark_not_published,
    plan_units,
    record_units,
    supersede_earlier,
    writer_turn,
)
from .warehouse_record import record_if_missing, require_migrated, require_unchanged
from .warehouses import get_warehouse

if TYPE_CHECKING:
    from .settings import SmolqwerySettings
    from .warehouses.base import Warehouse

__all__ = [
    "TASK_NAME",
    "Plan",
    "Publisher",
    "announce",
    "enqueue",
    "follow",
    "make_plan",
    "publisher",
    "recorded_plan",
    "run_jobs",
]

logger = logging.getLogger("smolqwery.fanout")

#: The Celery task's name (:mod:`smolqwery.tasks`): publishers need not import it.
TASK_NAME = "smolqwery.run_unit"
#: Seconds between two looks at the units while following them.
FOLLOW_POLL = 1.0
#: Seconds without any unit moving before following says what it waits for (then again).
FOLLOW_NOTICE = 30.0


def make_plan(
    extractors: Iterable[str] | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
    lag: int = 0,
    *,
    config: SmolqwerySettings | None = None,
    supersede: bool = True,
    warehouse: Warehouse | None = None,
) -> Plan:
    """Plan the run's units (as the exporter would) and record them as queued (``supersede``:
    see :func:`~smolqwery.units.record_units`); ``warehouse`` defaults to the configured one."""
    exporter = Exporter(date_from=date_from, date_to=date_to, lag=lag, config=config)
    config = exporter.config
    selected = select_extractors(extractors, config)
    require_migrated(config)
    require_unchanged(config)
    record_if_missing(config)
    with contextlib.ExitStack() as stack:
        wh = warehouse or stack.enter_context(get_warehouse(config))
        # In the writer's turn on DuckDB: workers may be writing the file meanwhile.
        stack.enter_context(writer_turn(wh, exporter.run_id, config))
        units, failures = plan_units(
            selected,
            wh,
            first=exporter.first,
            last=exporter.last,
            tz=exporter.tz,
            batch_days=config.batch_days,
            run_id=exporter.run_id,
            date_from=exporter.date_from,
            date_to=exporter.date_to,
            lag=lag,
        )
    record_units(units, supersede=supersede)
    prune_history(config.history_days)  # finished runs and units past SMOLQWERY_HISTORY_DAYS
    planned = [(s.name[:255], s.table.name if s.table else "") for s in selected]
    logger.info("run %s: %d unit(s) planned", exporter.run_id, len(units))
    return Plan(exporter.run_id, exporter.last, timezone.now(), planned, units, failures)


# -- local processes -----------------------------------------------------------------------


def run_jobs(plan: Plan, jobs: int, progress: Progress | None = None) -> ExportReport:
    """Run the plan's units in ``jobs`` child processes, under the export lease (a cron run)."""
    from django.db import connections

    progress = progress or Progress()
    try:
        with export_lock(plan.run_id, _lock_timeout()) as lease:
            connections.close_all()  # children open their own; none is shared over a fork
            context = multiprocessing.get_context("spawn")
            by_id = {u.unit_id: u for u in plan.units}
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=init_child) as pool:
                futures = {pool.submit(run_child, u.unit_id): u.unit_id for u in plan.units}
                for future in as_completed(futures):
                    unit = by_id[futures[future]]
                    try:
                        future.result()
                    except Exception as exc:  # the child died: the unit did not finish
                        logger.error("unit %s: its process ended: %s", unit.describe(), exc)
                    _unit_done(progress, unit)
                    lease.renew()
        return finish(plan, progress)
    finally:
        progress.close()


def _lock_timeout() -> float:
    from .settings import get_settings

    return get_settings().lock_timeout


# -- Celery --------------------------------------------------------------------------------


def celery_app(config: SmolqwerySettings) -> Any:
    """The project's Celery app: ``SMOLQWERY_CELERY_APP``, else Celery's current app."""
    try:
        import celery
    except ImportError:
        raise SmolqweryError(
            "--enqueue needs Celery: pip install 'smolqwery[celery]' and configure the "
            "project's Celery app (docs/scaling.md)"
        ) from None
    if not config.celery_app:
        # An app the project created is made current (``set_as_current``); Celery's fallback,
        # made when there is none, is not (and Celery's Django fixup makes the project's app the
        # default one, so "default" says nothing). The fallback would publish to
        # amqp://localhost, where no worker of this project listens.
        app = celery.current_app._get_current_object()
        if getattr(getattr(celery._state, "_tls", None), "current_app", None) is None:
            raise SmolqweryError(
                "--enqueue found no Celery app: the project's Celery app is not loaded (import "
                "it in the project package's __init__.py, as Celery's Django guide does) or set "
                "SMOLQWERY_CELERY_APP = 'proj.celery.app' (docs/scaling.md)"
            )
        return app
    from django.utils.module_loading import import_string

    try:
        return import_string(config.celery_app.replace(":", "."))
    except ImportError as exc:
        raise SmolqweryError(f"SMOLQWERY_CELERY_APP {config.celery_app!r}: {exc}") from exc


#: Kombu's retries of one message when the broker connection breaks (each bounded by
#: ``SMOLQWERY_PUBLISH_TIMEOUT``): a broker that went away is given up in seconds, not retried
#: forever.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


@dataclasses.dataclass
class Publisher:
    """Where ``--enqueue`` puts units: a broker connection, checked before anything is planned."""

    #: The broker as people may read it (password masked): for errors.
    broker: str
    send: Callable[[str], object]
    #: Strings never to print (the broker's password).
    secrets: tuple[str, ...] = ()

    def brief(self, exc: BaseException) -> str:
        """``Type: first line`` of a broker error, secrets masked (a URL in a message)."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        for secret in self.secrets:
            text = text.replace(secret, "**")
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def publisher(config: SmolqwerySettings | None = None) -> Iterator[Publisher]:
    """A connection to the queue, open for the block; a broker that does not answer within
    ``SMOLQWERY_PUBLISH_TIMEOUT`` seconds is a :class:`SmolqweryError` naming it (password
    masked), raised before anything is planned or recorded."""
    from .settings import get_settings

    config = config or get_settings()
    if config.queue == "django":
        from .tasks_django import run_unit_task

        yield Publisher("django.tasks", run_unit_task.enqueue)
        return
    app = celery_app(config)
    timeout = config.publish_timeout
    # Bounded socket operations (redis-py waits forever by default), unless the project set its
    # own; AMQP takes the connect timeout.
    ours = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    mine = {k: v for k, v in ours.items() if k not in (app.conf.broker_transport_options or {})}
    conn = app.connection_for_write(connect_timeout=timeout, transport_options=mine)
    secrets = tuple(x for x in (conn.password,) if x)
    # With a password, kombu masks it: redis://:**@host:port/0.
    broker = conn.as_uri(include_password=not secrets)
    pub = Publisher(broker, lambda unit_id: None, secrets)
    try:
        try:
            conn.ensure_connection(
                max_retries=2, interval_start=0.2, interval_step=0.5, interval_max=1,
                timeout=timeout,
            )  # fmt: skip
        except Exception as exc:
            raise SmolqweryError(
                f"the broker {broker} cannot be reached ({pub.brief(exc)}): nothing was queued"
            ) from None
        producer = app.amqp.Producer(conn, auto_declare=False)
        options: dict[str, Any] = {"queue": config.celery_queue} if config.celery_queue else {}

        def send(unit_id: str) -> object:
            return app.send_task(
                TASK_NAME,
                args=[unit_id],
                producer=producer,
                retry=True,
                retry_policy=PUBLISH_RETRY,
                **options,
            )

        pub.send = send
        yield pub
    finally:
        conn.release()


def enqueue(plan: Plan, pub: Publisher) -> int:
    """Publish every unit of the plan (the workers run them); the number published.

    Only then are the queued units of earlier plans that this one covers superseded. A broker
    that fails on the way is a :class:`SmolqweryError` saying how many units were published;
    the others are marked failed ("not published": nobody will run them) and the next run plans
    their days again.
    """
    published = 0
    for unit in plan.units:
        try:
            pub.send(unit.unit_id)
        except Exception as exc:
            reason = f"not published: the broker {pub.broker} failed ({pub.brief(exc)})"
            mark_not_published(plan.units[published:], reason)
            supersede_earlier(plan.units[:published])
            raise SmolqweryError(
                f"run {plan.run_id}: the broker {pub.broker} failed while queueing "
                f"({pub.brief(exc)}): {published} of {len(plan.units)} unit(s) queued, the other "
                f"{len(plan.units) - published} marked failed (not published); the next run "
                "plans their days again"
            ) from None
        published += 1
    supersede_earlier(plan.units)
    logger.info("run %s: %d unit(s) queued", plan.run_id, published)
    return published


def follow(
    plan: Plan,
    progress: Progress | None = None,
    *,
    stall: float,
    poll: float = FOLLOW_POLL,
    notice: float = FOLLOW_NOTICE,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ExportReport:
    """Follow the plan's units until each is done or failed, or none has moved for ``stall``
    seconds (a broker or every worker gone); the report names the units that did not finish.
    While none moves, a line every ``notice`` seconds says what is awaited (units queued with
    no worker running look like a hung command otherwise)."""
    progress = progress or Progress()
    seen: dict[str, tuple[str, int]] = {}
    moved = noticed = clock()
    by_id = {u.unit_id: u for u in plan.units}
    try:
        while True:
            states = {
                unit_id: (status, attempts)
                for unit_id, status, attempts in ExportUnit.objects.filter(
                    run_id=plan.run_id
                ).values_list("unit_id", "status", "attempts")
            }
            for unit_id, state in states.items():
                if seen.get(unit_id) != state:
                    moved = clock()
                    if state[0] in (DONE, FAILED) and unit_id in by_id:
                        _unit_done(progress, by_id[unit_id])
            seen = states
            unfinished = [s for s, _ in states.values() if s in (QUEUED, RUNNING)]
            now = clock()
            if not unfinished or now - moved > stall:
                break
            if now - max(moved, noticed) >= notice:
                noticed = now
                progress.note(
                    f"run {plan.run_id}: waiting for {len(unfinished)} unit(s) "
                    f"({unfinished.count(QUEUED)} queued, {unfinished.count(RUNNING)} running); "
                    f"none moved for {now - moved:.0f} s, giving up after {stall:.0f} s "
                    f"(is a worker running? manage.py smolqwery_status --run {plan.run_id})"
                )
            sleep(poll)
        return finish(plan, progress)
    finally:
        progress.close()


def announce(plan: Plan, progress: Progress) -> None:
    """Tell ``progress`` each planned extractor's days to export (0: up to date), as an
    in-process run does before it starts."""
    days: dict[str, int] = {}
    for unit in plan.units:
        days[unit.extractor] = days.get(unit.extractor, 0) + len(unit.days)
    for name, table in plan.planned:
        progress.extractor_started(name, table, days.get(name, 0))


def _unit_done(progress: Progress, unit: Unit) -> None:
    record = ExportUnit.objects.filter(unit_id=unit.unit_id).first()
    if record is not None and record.status == DONE:
        progress.batch_done(unit.extractor, unit.table, unit.first_day, unit.last_day, record.rows)
