"""Run the BigQuery emulator with a timing log (for ``python -m bench.fanout --profile``).

Runs in the *emulator's* interpreter (Python 3.13, its own virtualenv), not the project's::

    <emulator venv>/bin/python bench/emulator_profile.py LOG|- serve --host ... (the CLI's options)

With ``SMOLQWERY_BENCH_EMULATOR_THREADS=N`` in its environment, the emulator's DuckDB runs on
N threads instead of one per core (``python -m bench.fanout --emulator-threads N``). With a LOG
(not ``-``) it writes one JSON line per HTTP request (method, route, status, wall seconds) and
per job (type, first statement, wall and thread CPU seconds, seconds queued before a job thread
took it) to LOG, then serves as ``local-bigquery serve`` does. Apart from the thread count,
nothing of the emulator is changed: the request middleware and the job wrapper only measure.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from typing import Any

_lock = threading.Lock()
#: DuckDB threads of the emulator (unset: DuckDB's default, one per core).
THREADS_ENV = "SMOLQWERY_BENCH_EMULATOR_THREADS"


def _writer(path: str) -> Any:
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the server's lifetime

    def write(record: dict[str, Any]) -> None:
        line = json.dumps(record)
        with _lock:
            out.write(line + "\n")

    return write


def _route(path: str) -> str:
    """The path with its ids blanked, so requests group by kind."""
    path = re.sub(r"/projects/[^/]+", "/projects/P", path)
    path = re.sub(r"/datasets/[^/]+", "/datasets/D", path)
    path = re.sub(r"/tables/[^/]+", "/tables/T", path)
    path = re.sub(r"/jobs/[^/]+", "/jobs/J", path)
    return re.sub(r"/queries/[^/]+", "/queries/J", path)


def install(log: str) -> None:
    from local_bigquery.app import app
    from local_bigquery.jobs import runner

    write = _writer(log)

    class Timing:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            started = time.monotonic()
            status: list[int] = []

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                await send(message)

            try:
                await self.inner(scope, receive, sending)
            finally:
                write(
                    {
                        "kind": "request",
                        "t": started,
                        "method": scope["method"],
                        "route": _route(scope["path"]),
                        "query": scope.get("query_string", b"").decode()[:120],
                        "status": status[0] if status else 0,
                        "wall": round(time.monotonic() - started, 4),
                    }
                )

    app.add_middleware(Timing)

    submit = runner._executor.submit

    def timed_submit(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return submit(_timed, time.monotonic(), fn, *args, **kwargs)

    def _timed(queued: float, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # fn is context.run; args[0] is runner._execute, args[1] the job
        started, cpu = time.monotonic(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            job, job_type = args[1], args[2]
            config = job.configuration
            text = ""
            if job_type == "query" and config.query is not None:
                text = " ".join((config.query.query or "").split())[:60]
            write(
                {
                    "kind": "job",
                    "t": started,
                    "type": job_type,
                    "id": job.jobReference.jobId,
                    "sql": text,
                    "queued": round(started - queued, 4),
                    "wall": round(time.monotonic() - started, 4),
                    "cpu": round(time.thread_time() - cpu, 4),
                }
            )

    runner._executor.submit = timed_submit  # type: ignore[method-assign]


def limit_threads(threads: int) -> None:
    """Give the emulator's DuckDB ``threads`` threads (default: one per core): one query then
    runs on one thread, and several jobs run side by side instead."""
    import functools

    from local_bigquery.engine import database

    connect = database._connect.__wrapped__

    @functools.cache
    def limited() -> Any:
        con = connect()
        con.execute(f"SET threads = {int(threads)}")
        return con

    database._connect = limited


def main() -> None:
    log, argv = sys.argv[1], sys.argv[2:]
    if log != "-":
        install(log)
    threads = os.environ.get(THREADS_ENV)
    if threads:
        limit_threads(int(threads))
    from local_bigquery.cli import main as cli

    cli(argv)


if __name__ == "__main__":
    main()
