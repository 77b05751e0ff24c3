"""``python -m bench``: generate events, measure the export paths, print figures and targets.

For each database (SQLite, PostgreSQL) and each size (N/10 then N rows over D days):

1. the floor: the extractor's queryset iterated with ``values_list(...).iterator()``;
2. ``manage.py smolqwery_extract`` into DuckDB;
3. ``manage.py smolqwery_extract`` into the BigQuery emulator;
4. smolqwery 0.1.3's write method: ``insert_rows_json`` in 1,000-row requests (full size only);

then a backfill of the aggregated extractor over 365 days, counting the load jobs it makes.
Every measurement runs in a subprocess of its own (``bench.worker``); its peak RSS is the
child's ``ru_maxrss`` read with ``os.wait4``. See bench/RESULTS.md for figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .worker import RESULT_PREFIX

ROOT = Path(__file__).resolve().parent.parent
EVENTS = "bench.extractors.BenchEventExtractor"
QUERYSET = "bench.extractors.BenchEventQuerySetExtractor"
DAILY = "bench.extractors.BenchDailyExtractor"
TIME_ZONE = "Europe/Paris"

#: Targets of issue 8.
MAX_EXTRACT_OVER_FLOOR = 1.5
MIN_LEGACY_OVER_LOAD = 3.0
MAX_RSS_GROWTH = 0.20
#: Targets of issue 16.
MAX_QUERYSET_OVER_ADBC = 1.5
MIN_FLOOR_OVER_QUERYSET = 3.0
MAX_EMULATOR_OVER_DUCKDB = 1.5
DLT_BACKENDS = ("sqlalchemy", "pyarrow", "connectorx")

LABELS = {
    "floor": "(1) floor: values_list().iterator()",
    "duckdb": "(2) smolqwery_extract -> DuckDB",
    "bigquery": "(3) smolqwery_extract -> emulator",
    "legacy": "(4) 0.1.3 insert_rows_json x1000",
    "backfill": "backfill: aggregated, -> emulator",
    "qs_duckdb": "(5) queryset path -> DuckDB",
    "qs_bigquery": "(6) queryset path -> emulator",
    "adbc": "(R) ADBC -> Arrow -> DuckDB, reference",
    **{f"dlt_{b}": f"(P) dlt sql_table {b} -> DuckDB" for b in DLT_BACKENDS},
}


@dataclasses.dataclass
class Measure:
    db: str
    size: int
    step: str
    rows: int
    seconds: float
    cpu: float
    process_seconds: float
    rss_mb: float
    extra: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class BenchError(RuntimeError):
    """A step failed; the message carries the end of its output."""


def run_worker(
    step: str,
    args: Sequence[str],
    env: dict[str, str],
    command: Sequence[str] = (sys.executable, "-m", "bench.worker"),
) -> tuple[dict[str, Any], float, float]:
    """Run one worker step; return its result, its process wall time and its peak RSS in MB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*command, step, *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        try:
            # wait4, not wait: it returns this child's own resource usage (peak RSS in KiB).
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: do not leave the step running
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"step {step} exited with {proc.returncode}:\n{(stdout + stderr)[-4000:]}")
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :]), elapsed, usage.ru_maxrss / 1024
    raise BenchError(f"step {step} printed no result:\n{(stdout + stderr)[-4000:]}")


# -- databases ------------------------------------------------------------------------------


@contextlib.contextmanager
def source_database(db: str, workdir: Path, pg_name: str) -> Iterator[dict[str, str]]:
    """A fresh, empty source database; yields the ``BENCH_*`` variables that select it."""
    if db == "sqlite":
        path = workdir / "source.sqlite3"
        path.unlink(missing_ok=True)
        try:
            yield {"BENCH_DB": "sqlite", "BENCH_SQLITE_PATH": str(path)}
        finally:
            path.unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    def admin(statement: sql.Composable) -> None:
        with psycopg.connect(
            host=os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            port=os.environ.get("BENCH_PG_PORT", "5432"),
            user=os.environ.get("BENCH_PG_USER", "postgres"),
            dbname="postgres",
            autocommit=True,
        ) as con:
            con.execute(statement)

    name = sql.Identifier(pg_name)
    admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    admin(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield {"BENCH_DB": "postgres", "BENCH_PG_NAME": pg_name}
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@contextlib.contextmanager
def emulator(workdir: Path, enabled: bool) -> Iterator[Any]:
    """The BigQuery emulator, started the way the test suite starts it."""
    if not enabled:
        yield None
        return
    from tests.fixtures.emulator import install, start

    emu = start(install(verbose=True), workdir / "emulator")
    try:
        yield emu
    finally:
        emu.stop()


# -- the run --------------------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    rows: int
    days: int
    small: int
    dbs: list[str]
    bigquery: bool
    legacy: bool
    backfill_days: int
    repeat: int
    via: str
    pg_name: str
    first: datetime.date
    last: datetime.date
    arrow: bool = True
    #: Interpreter of the peers' virtualenv (bench/peers-venv); empty: no peers.
    peers: str = ""
    #: dlt's sqlalchemy backend is measured up to this size only (148 s for 1M rows).
    sqlalchemy_max: int = 1_000_000
    #: Measurements not to run (e.g. ``bigquery`` at 10M rows to save time).
    skip: frozenset[str] = frozenset()


def day_range(days: int) -> tuple[datetime.date, datetime.date]:
    """The last ``days`` complete local days: what a daily cron would have to export."""
    today = datetime.datetime.now(ZoneInfo(TIME_ZONE)).date()
    last = today - datetime.timedelta(days=1)
    return last - datetime.timedelta(days=days - 1), last


def measure(
    plan: Plan,
    results: list[Measure],
    db: str,
    size: int,
    step: str,
    env: dict[str, str],
    workdir: Path,
    log: Any,
) -> Measure:
    """Run one measurement ``plan.repeat`` times and keep the fastest run."""
    first, last = plan.first, plan.last
    extractor = EVENTS
    if step == "backfill":
        extractor = DAILY
        first = last - datetime.timedelta(days=plan.backfill_days - 1)
    best: Measure | None = None
    for _ in range(plan.repeat if step != "legacy" else 1):
        tag = uuid.uuid4().hex[:10]
        step_env = {**env, "BENCH_FIRST_DATE": first.isoformat()}
        worker_step = {"floor": "floor", "legacy": "legacy", "adbc": "adbc"}.get(step, plan.via)
        command: Sequence[str] = (sys.executable, "-m", "bench.worker")
        if step.startswith("qs_"):
            extractor = QUERYSET
        if step.startswith("dlt_"):
            command = (plan.peers, "-m", "bench.peers")
            worker_step = step.removeprefix("dlt_")
        if step in ("duckdb", "qs_duckdb", "adbc") or step.startswith("dlt_"):
            step_env |= {
                "BENCH_WAREHOUSE": "duckdb",
                "BENCH_DUCKDB_PATH": str(workdir / f"warehouse-{tag}.duckdb"),
            }
        elif step in ("bigquery", "legacy", "backfill", "qs_bigquery"):
            step_env |= {"BENCH_WAREHOUSE": "bigquery", "BENCH_DATASET": f"bench_{tag}"}
        args = ["--first", first.isoformat(), "--last", last.isoformat(), "--extractor", extractor]
        if step.startswith("dlt_"):
            args = []
        result, elapsed, rss = run_worker(worker_step, args, step_env, command)
        for leftover in workdir.glob(f"warehouse-{tag}.duckdb*"):
            leftover.unlink()
        extra = {k: v for k, v in result.items() if k not in ("rows", "seconds", "cpu")}
        rows, seconds, cpu = int(result["rows"]), result["seconds"], result["cpu"]
        current = Measure(db, size, step, rows, seconds, cpu, elapsed, rss, extra)
        print(
            f"  {db:8} {size:>10,} {LABELS[step]:38} {current.seconds:8.2f} s "
            f"(cpu {current.cpu:6.2f} s) "
            f"{current.rate:>11,.0f} rows/s {rss:7.0f} MB",
            file=log,
            flush=True,
        )
        if best is None or current.seconds < best.seconds:
            best = current
    assert best is not None
    results.append(best)
    return best


def run(plan: Plan, log: Any = sys.stderr) -> list[Measure]:
    results: list[Measure] = []
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_TIME_ZONE": TIME_ZONE,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if "BENCH_DUCKDB_MEMORY_LIMIT" in os.environ:  # bench/settings.py: DuckDB's memory_limit
        base_env["BENCH_DUCKDB_MEMORY_LIMIT"] = os.environ["BENCH_DUCKDB_MEMORY_LIMIT"]
    workdir = Path(tempfile.mkdtemp(prefix="smolqwery-bench-"))
    try:
        with emulator(workdir, plan.bigquery) as emu:
            if emu is not None:
                base_env |= {"BENCH_BQ_ENDPOINT": emu.endpoint, "BENCH_BQ_PROJECT": emu.project}
            for db in plan.dbs:
                with source_database(db, workdir, plan.pg_name) as db_env:
                    env = {**base_env, **db_env}
                    sizes = [s for s in (plan.small, plan.rows) if s]
                    for size in sizes:
                        args = ["--first", plan.first.isoformat(), "--last", plan.last.isoformat()]
                        result, _, _ = run_worker("prepare", [*args, "--rows", str(size)], env)
                        print(
                            f"{db}: {result['rows']:,} events over {plan.days} days generated "
                            f"in {result['seconds']:.1f} s",
                            file=log,
                            flush=True,
                        )
                        steps = ["floor", "duckdb"]
                        if plan.bigquery:
                            steps.append("bigquery")
                            if plan.legacy and size == plan.rows:
                                steps.append("legacy")
                        if plan.arrow:
                            steps += ["adbc", "qs_duckdb"]
                            if plan.bigquery:
                                steps.append("qs_bigquery")
                        if plan.peers:
                            steps += [
                                f"dlt_{b}"
                                for b in DLT_BACKENDS
                                if b != "sqlalchemy" or size <= plan.sqlalchemy_max
                            ]
                        for step in steps:
                            if step in plan.skip:
                                continue
                            measure(plan, results, db, size, step, env, workdir, log)
                    if plan.bigquery and plan.backfill_days:
                        measure(plan, results, db, plan.rows, "backfill", env, workdir, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# -- the report -----------------------------------------------------------------------------


def _find(results: list[Measure], db: str, size: int, step: str) -> Measure | None:
    for m in results:
        if (m.db, m.size, m.step) == (db, size, step):
            return m
    return None


def _verdict(ok: bool) -> str:
    return "holds" if ok else "MISSED"


def _arrow_targets(results: list[Measure], db: str, size: int) -> list[str]:
    """Issue 16's ratios for one database and size (targets: PostgreSQL for the peers)."""
    lines: list[str] = []
    qs = _find(results, db, size, "qs_duckdb")
    if qs is None:
        return lines
    ref = _find(results, db, size, "adbc")
    floor = _find(results, db, size, "floor")
    rows = _find(results, db, size, "duckdb")
    prefix = f"  {db} {size:,}:"
    if ref:
        ratio = qs.seconds / ref.seconds
        verdict = _verdict(ratio <= MAX_QUERYSET_OVER_ADBC) if db == "postgres" else "no target"
        lines.append(
            f"{prefix} (5)/(R) = {ratio:.2f}, CPU {qs.cpu / ref.cpu:.2f}  "
            f"(target <= {MAX_QUERYSET_OVER_ADBC}: {verdict})"
        )
    if floor:
        ratio = floor.seconds / qs.seconds
        verdict = _verdict(ratio >= MIN_FLOOR_OVER_QUERYSET)
        lines.append(
            f"{prefix} (1)/(5) = {ratio:.2f}, CPU {floor.cpu / qs.cpu:.2f}  "
            f"(target >= {MIN_FLOOR_OVER_QUERYSET:.0f}: {verdict})"
        )
    if rows:
        lines.append(f"{prefix} (2)/(5) = {rows.seconds / qs.seconds:.2f} (row path / queryset)")
    for backend in DLT_BACKENDS:
        peer = _find(results, db, size, f"dlt_{backend}")
        if peer:
            ratio = peer.seconds / qs.seconds
            verdict = _verdict(ratio > 1) if db == "postgres" else "no target"
            lines.append(
                f"{prefix} dlt {backend} / (5) = {ratio:.2f}, CPU {peer.cpu / qs.cpu:.2f}  "
                f"(target > 1: {verdict})"
            )
    bq = _find(results, db, size, "qs_bigquery")
    if bq:
        load = float(bq.extra.get("load_seconds") or 0.0)
        bound = MAX_EMULATOR_OVER_DUCKDB * qs.seconds + load
        lines.append(
            f"{prefix} (6) = {bq.seconds:.2f} s against 1.5 x (5) + the emulator's own time (HTTP "
            f"round trips: {load:.2f} s) = {bound:.2f} s: {_verdict(bq.seconds <= bound)}"
        )
    return lines


def report(plan: Plan, results: list[Measure]) -> tuple[str, bool]:
    """The figures table, the ratios and the targets, as text; and whether every target holds."""
    lines = [
        f"smolqwery benchmark: {plan.rows:,} events over {plan.days} days "
        f"({plan.first} .. {plan.last}, {TIME_ZONE}), best of {plan.repeat}, "
        f"(2)/(3) via {'manage.py smolqwery_extract' if plan.via == 'extract' else 'the library'}",
        f"python {platform.python_version()}, {os.cpu_count()} CPUs",
        "",
        f"{'database':9} {'events':>10}  {'measurement':38} {'rows':>10} {'wall s':>8} "
        f"{'cpu s':>7} {'rows/s':>10} {'peak RSS':>9}",
    ]
    for m in results:
        lines.append(
            f"{m.db:9} {m.size:>10,}  {LABELS[m.step]:38} {m.rows:>10,} {m.seconds:8.2f} "
            f"{m.cpu:7.2f} {m.rate:>10,.0f} {m.rss_mb:>6.0f} MB"
        )
    lines += ["", "ratios and targets:"]
    all_ok = True
    for db in plan.dbs:
        for size in [s for s in (plan.small, plan.rows) if s]:
            floor = _find(results, db, size, "floor")
            duck = _find(results, db, size, "duckdb")
            bq = _find(results, db, size, "bigquery")
            legacy = _find(results, db, size, "legacy")
            if floor and duck:
                ratio = duck.seconds / floor.seconds
                cpu_ratio = duck.cpu / floor.cpu
                text = f"  {db} {size:,}: (2)/(1) = {ratio:.2f}, in CPU time {cpu_ratio:.2f}"
                if size == plan.rows:
                    ok = ratio <= MAX_EXTRACT_OVER_FLOOR
                    all_ok &= ok
                    text += f"  (target <= {MAX_EXTRACT_OVER_FLOOR}: {_verdict(ok)})"
                else:
                    text += "  (fixed costs of the command weigh at this size; target at full size)"
                lines.append(text)
            if bq and floor:
                lines.append(f"  {db} {size:,}: (3)/(1) = {bq.seconds / floor.seconds:.2f}")
            if legacy and bq:
                ratio = legacy.seconds / bq.seconds
                ok = ratio >= MIN_LEGACY_OVER_LOAD
                all_ok &= ok
                lines.append(
                    f"  {db} {size:,}: (4)/(3) = {ratio:.1f}  "
                    f"(target >= {MIN_LEGACY_OVER_LOAD:.0f}: {_verdict(ok)})"
                )
        for size in [s for s in (plan.small, plan.rows) if s]:
            lines += _arrow_targets(results, db, size)
        if plan.small:
            for step in ("floor", "duckdb", "bigquery", "qs_duckdb", "qs_bigquery", "adbc"):
                small, big = (
                    _find(results, db, plan.small, step),
                    _find(results, db, plan.rows, step),
                )
                if small and big:
                    growth = big.rss_mb / small.rss_mb - 1
                    ok = growth <= MAX_RSS_GROWTH
                    # (R) is the yardstick, not smolqwery: its growth is shown, not judged.
                    target = f"target <= {MAX_RSS_GROWTH:+.0%}: {_verdict(ok)}"
                    if step == "adbc":
                        target = "the reference: no target"
                    else:
                        all_ok &= ok
                    lines.append(
                        f"  {db} peak RSS {LABELS[step].split(' ', 1)[0]} {plan.small:,} -> "
                        f"{plan.rows:,}: {small.rss_mb:.0f} -> {big.rss_mb:.0f} MB "
                        f"({growth:+.0%}; {target})"
                    )
        backfill = _find(results, db, plan.rows, "backfill")
        if backfill:
            jobs = backfill.extra.get("load_jobs")
            ok = jobs is not None and jobs <= 2
            all_ok &= ok
            lines.append(
                f"  {db} backfill of {plan.backfill_days} days (aggregated): {backfill.rows} rows, "
                f"{jobs} load job(s) in {backfill.seconds:.1f} s (target O(1): {_verdict(ok)})"
            )
    return "\n".join(lines), all_ok


def peers_python() -> str:
    """The peers' interpreter, its virtualenv made by bench/peers-venv if needed."""
    out = subprocess.run(
        ["sh", str(ROOT / "bench" / "peers-venv")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="events (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30, help="days they span (default 30)")
    parser.add_argument(
        "--small",
        type=int,
        default=None,
        help="size of the RSS comparison run (default rows/10; 0: none)",
    )
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--no-bigquery", action="store_true", help="skip (3), (4) and the backfill")
    parser.add_argument("--no-legacy", action="store_true", help="skip (4)")
    parser.add_argument("--backfill-days", type=int, default=365, help="0 skips the backfill")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement; keeps the fastest"
    )
    parser.add_argument(
        "--via",
        choices=("command", "library"),
        default="command",
        help="(2)/(3) through manage.py smolqwery_extract (default) or RowConverter + "
        "replace_days directly (to tell the runner's overhead from the library's)",
    )
    parser.add_argument(
        "--pg-name",
        default="smolqwery_bench",
        help="PostgreSQL database created and dropped for the run (default smolqwery_bench)",
    )
    parser.add_argument(
        "--no-arrow", action="store_true", help="skip (5), (6) and the ADBC reference (R)"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure dlt's sql_table backends (P), in bench/peers-venv's virtualenv",
    )
    parser.add_argument(
        "--sqlalchemy-max",
        type=int,
        default=1_000_000,
        help="measure dlt's slow sqlalchemy backend up to this size only (default 1,000,000)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated measurements not to run: floor, duckdb, bigquery, qs_duckdb, ...",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not dbs or set(dbs) - {"sqlite", "postgres"}:
        parser.error("--db takes sqlite and/or postgres")
    first, last = day_range(args.days)
    plan = Plan(
        rows=args.rows,
        days=args.days,
        small=args.rows // 10 if args.small is None else args.small,
        dbs=dbs,
        bigquery=not args.no_bigquery,
        legacy=not args.no_legacy,
        backfill_days=args.backfill_days,
        repeat=max(1, args.repeat),
        via={"command": "extract", "library": "direct"}[args.via],
        pg_name=args.pg_name,
        first=first,
        last=last,
        arrow=not args.no_arrow,
        peers=peers_python() if args.peers else "",
        sqlalchemy_max=args.sqlalchemy_max,
        skip=frozenset(s.strip() for s in args.skip.split(",") if s.strip()),
    )
    started = time.perf_counter()
    results = run(plan)
    text, ok = report(plan, results)
    print(text)
    verdict = "yes" if ok else "no"
    print(f"\ntotal {time.perf_counter() - started:.0f} s; every target holds: {verdict}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "plan": dataclasses.asdict(plan),
                    "results": [dataclasses.asdict(m) for m in results],
                },
                default=str,
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
