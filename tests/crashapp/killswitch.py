"""A kill switch armed in a child export process, around real calls.

Kill tests need the process to die at exact, repeatable places — inside the extractor, while the
load file is written, around each warehouse call, in the middle of a transaction, after the
ledger committed — and timers cannot hit those. So ``tests.crash_settings`` calls
:func:`arm_from_environment`, which wraps a few real functions (DuckDB's ``execute``, the
BigQuery client's jobs, pyarrow's Parquet writer, Django's cursor, Kombu's publish) with
:func:`checkpoint` calls. The wrapped functions still run for real; a checkpoint only counts,
traces, and when the plan says so, sends SIGKILL to its own process (or pauses it, for the
outage test).

Environment (all optional; without them nothing is wrapped):

``SMOLQWERY_CRASH_TRACE``
    a file to which every checkpoint appends one line ``point|when``; a kill appends
    ``KILL point|when|n`` first, so a test can check where the process died.
``SMOLQWERY_CRASH_PLAN``
    ``point|when|n|action``: on the ``n``-th (1-based) time the checkpoint ``point|when`` is
    reached, ``action`` is ``kill`` (SIGKILL, no cleanup of any kind) or ``pause`` (create
    ``$SMOLQWERY_CRASH_PAUSE_DIR/paused`` and wait until ``resume`` appears next to it).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRACE_ENV = "SMOLQWERY_CRASH_TRACE"
PLAN_ENV = "SMOLQWERY_CRASH_PLAN"
PAUSE_DIR_ENV = "SMOLQWERY_CRASH_PAUSE_DIR"
#: A paused process goes on by itself after this long, so a broken test cannot hang CI.
PAUSE_LIMIT = 180.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where to act: the ``n``-th time checkpoint ``point|when`` is reached."""

    point: str
    when: str
    n: int
    action: str = "kill"

    @property
    def key(self) -> str:
        return f"{self.point}|{self.when}"

    def encode(self) -> str:
        return f"{self.point}|{self.when}|{self.n}|{self.action}"

    @classmethod
    def decode(cls, text: str) -> Plan:
        point, when, n, action = text.rsplit("|", 3)
        if action not in ("kill", "pause"):
            raise ValueError(f"unknown kill switch action {action!r}")
        return cls(point, when, int(n), action)


class _State:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.plan: Plan | None = None
        self.trace_fd: int | None = None
        self.pause_dir: Path | None = None
        self.armed = False


_state = _State()


def _write(line: str) -> None:
    if _state.trace_fd is not None:
        os.write(_state.trace_fd, (line + "\n").encode())


def checkpoint(point: str, when: str = "at") -> None:
    """Count, trace, and act if the plan names this occurrence; free when not armed."""
    if not _state.armed:
        return
    key = f"{point}|{when}"
    _state.counts[key] += 1
    _write(key)
    plan = _state.plan
    if plan is None or plan.key != key or plan.n != _state.counts[key]:
        return
    if plan.action == "kill":
        _write(f"KILL {plan.encode()}")
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # SIGKILL is not deliverable late; never go on past the kill point
    else:
        _pause(plan)


def _pause(plan: Plan) -> None:
    if _state.pause_dir is None:
        raise RuntimeError(f"{PAUSE_DIR_ENV} is needed to pause")
    _write(f"PAUSE {plan.encode()}")
    (_state.pause_dir / "paused").write_text(plan.encode())
    resume = _state.pause_dir / "resume"
    deadline = time.monotonic() + PAUSE_LIMIT
    while not resume.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _write(f"RESUME {plan.encode()}")


def _wrap(owner: Any, attr: str, label: Callable[[tuple[Any, ...]], str] | str) -> None:
    """Replace ``owner.attr`` by a function calling checkpoints before and after the real one."""
    original = getattr(owner, attr)
    if getattr(original, "_smolqwery_crash_wrapped", False):
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        point = label if isinstance(label, str) else label(args)
        checkpoint(point, "before")
        result = original(*args, **kwargs)
        checkpoint(point, "after")
        return result

    wrapper._smolqwery_crash_wrapped = True  # type: ignore[attr-defined]
    setattr(owner, attr, wrapper)


def sql_verb(sql: object) -> str:
    """First keyword of a statement (``BEGIN``, ``DELETE``…), to tell statements apart."""
    words = str(sql).lstrip(" (\n\t").split(None, 1)
    return words[0].upper().rstrip(";") if words else "?"


def _django_label(args: tuple[Any, ...]) -> str:
    sql = str(args[1]) if len(args) > 1 else ""
    lowered = sql.lower()
    for table in ("exportlock", "exportrun", "crashapp_event"):
        if table in lowered:
            return f"django.sql:{sql_verb(sql)}:{table}"
    return f"django.sql:{sql_verb(sql)}"


def _duckdb_label(args: tuple[Any, ...]) -> str:
    sql = str(args[1]) if len(args) > 1 else ""
    if "smolqwery_ledger" in sql:
        return f"duckdb.execute:{sql_verb(sql)}:ledger"
    return f"duckdb.execute:{sql_verb(sql)}"


def _bigquery_query_label(args: tuple[Any, ...]) -> str:
    sql = str(args[1]) if len(args) > 1 else ""
    return f"bigquery.query:{sql_verb(sql)}"


def _install_django() -> None:
    from django.db.backends import utils

    _wrap(utils.CursorWrapper, "execute", _django_label)


def _install_duckdb() -> None:
    try:
        import duckdb
    except ImportError:
        return
    _wrap(duckdb.DuckDBPyConnection, "execute", _duckdb_label)


def _install_parquet() -> None:
    import pyarrow.parquet as pq

    for attr in ("write_table", "write_batch", "close"):
        _wrap(pq.ParquetWriter, attr, f"parquet.{attr}")


def _install_bigquery() -> None:
    try:
        from google.cloud import bigquery
        from google.cloud.bigquery import job
    except ImportError:
        return
    client = bigquery.Client
    for attr in (
        "load_table_from_file",
        "load_table_from_json",
        "get_job",
        "get_table",
        "create_table",
        "delete_table",
        "get_dataset",
        "create_dataset",
        "update_dataset",
        "list_rows",
    ):
        if hasattr(client, attr):
            _wrap(client, attr, f"bigquery.{attr}")
    _wrap(client, "query", _bigquery_query_label)
    if hasattr(client, "query_and_wait"):
        _wrap(client, "query_and_wait", lambda args: f"bigquery.query_and_wait:{sql_verb(args[1])}")
    _wrap(job.QueryJob, "result", "bigquery.QueryJob.result")
    # LoadJob inherits result(); wrapping sets it on LoadJob only.
    _wrap(job.LoadJob, "result", "bigquery.LoadJob.result")


def _install_kombu() -> None:
    """Every message published (``--enqueue``): a test stops the broker between two."""
    try:
        from kombu import messaging
    except ImportError:
        return
    _wrap(messaging.Producer, "publish", "kombu.publish")


def arm_from_environment() -> None:
    """Wrap the real calls when the environment asks for a trace or a plan (child processes)."""
    trace = os.environ.get(TRACE_ENV)
    plan = os.environ.get(PLAN_ENV)
    if not trace and not plan:
        return
    _state.plan = Plan.decode(plan) if plan else None
    if trace:
        _state.trace_fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    pause_dir = os.environ.get(PAUSE_DIR_ENV)
    _state.pause_dir = Path(pause_dir) if pause_dir else None
    _install_django()
    _install_duckdb()
    _install_parquet()
    _install_bigquery()
    _install_kombu()
    _state.armed = True
