"""Fan-out benchmark (issue 17): 2 Celery workers against 1, 8 extractors, on the emulator.

    python -m bench.fanout [--days 60] [--unit-days 10] [--repeat 2] [--json out.json]
                           [--workers 1,2] [--profile] [--emulator-threads N]

Each measurement is a fresh project (its own SQLite database and emulator dataset, the tables
created as ``migrate`` does), a private Redis broker and N real ``celery worker`` processes
already up; the timed part is ``smolqwery_extract --enqueue --wait`` from the first unit planned
to the last one committed. The ledgers are checked afterwards (every day of every table once).
Figures go to bench/RESULTS.md by hand.

``--profile`` starts the emulator under ``bench/emulator_profile.py``, which logs every HTTP
request and job with its duration; each figure then carries, per unit, the requests and jobs
the emulator served and how long they took (``profile``). ``--emulator-threads N`` gives the
emulator's DuckDB N threads instead of one per core (a query on one thread, jobs side by side).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.crashapp.fanout_extractors import EIGHT
from tests.fixtures import emulator as emulator_fixture
from tests.fixtures.brokers import RedisBroker, Workers, temporary_root
from tests.fixtures.crash import ScenarioFactory


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class SchedSampler:
    """Every thread's time on a CPU and time *waiting for one* (runnable, not running: the
    kernel's ``/proc/<pid>/task/<tid>/schedstat``) of some processes, sampled twice a second
    so threads that end meanwhile still count (up to their last sample). The wait is what the
    machine's other load costs these processes, whatever our own code does."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.first: dict[tuple[str, int], tuple[int, int]] = {}
        self.last: dict[tuple[str, int], tuple[int, int]] = {}
        self.stop = threading.Event()
        self.sample(initial=True)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def sample(self, initial: bool = False) -> None:
        for name, pids in self.pids.items():
            for pid in pids:
                for task in Path(f"/proc/{pid}/task").glob("*"):
                    try:
                        cpu, wait, _ = (int(x) for x in (task / "schedstat").read_text().split())
                    except (OSError, ValueError):
                        continue
                    key = (name, int(task.name))
                    if initial:
                        self.first[key] = (cpu, wait)
                    self.first.setdefault(key, (0, 0))
                    self.last[key] = (cpu, wait)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    def finish(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join()
        self.sample()
        out: dict[str, float] = {}
        for (name, _), (cpu, wait) in self.last.items():
            cpu0, wait0 = self.first[(name, _)]
            out[f"{name}_oncpu_s"] = out.get(f"{name}_oncpu_s", 0.0) + (cpu - cpu0) / 1e9
            out[f"{name}_runqueue_wait_s"] = (
                out.get(f"{name}_runqueue_wait_s", 0.0) + (wait - wait0) / 1e9
            )
        return {k: round(v, 1) for k, v in out.items()}


def measure(
    factory: ScenarioFactory, emu: Any, broker: RedisBroker, root: Path, workers: int, args: Any
) -> dict[str, Any]:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    scenario = factory.new(
        "bigquery",
        emu,
        days=args.days,
        settings={
            "SMOLQWERY_EXTRACTORS": list(EIGHT),
            "SMOLQWERY_BATCH_DAYS": args.unit_days,
            "SMOLQWERY_LOCK_TIMEOUT": 120,
            "SMOLQWERY_CELERY_APP": "tests.celeryapp.app",
        },
        create_tables=False,
    )
    scenario.create_tables(EIGHT)
    scenario.extra_env.update(
        {
            "SMOLQWERY_TEST_BROKER_URL": broker.url,
            "SMOLQWERY_TEST_QUEUE": queue,
            "DJANGO_SETTINGS_MODULE": "tests.crash_settings",
        }
    )
    pool = Workers(root)
    started = pool.start(scenario.env(), queue, count=workers)
    try:
        deadline = time.monotonic() + 120
        while not all(" ready." in w.output() for w in started):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start: " + started[0].output()[-2000:])
            time.sleep(0.2)
        emulator_cpu = cpu_seconds(emu.process.pid)
        workers_cpu = sum(cpu_seconds(w.proc.pid) for w in started)
        command_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler = SchedSampler(
            {"emulator": [emu.process.pid], "workers": [w.proc.pid for w in started]}
        )
        wall = time.monotonic()
        began = wall
        result = scenario.run("--enqueue", "--wait", "--wait-timeout=300", "--no-progress")
        wall = time.monotonic() - wall
        sched = sampler.finish()
        emulator_cpu = cpu_seconds(emu.process.pid) - emulator_cpu
        workers_cpu = sum(cpu_seconds(w.proc.pid) for w in started) - workers_cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        command = after.ru_utime + after.ru_stime - command_cpu.ru_utime - command_cpu.ru_stime
        if result.returncode != 0:
            raise RuntimeError(result.describe())
        with scenario.warehouse() as wh:
            expected = set(scenario.expected)
            for path in EIGHT:
                table = path.rsplit(".", 1)[1]
                name = {"Events": "fan_event_", "Daily": "fan_daily_"}[table.rstrip("1234")]
                done = set(wh.exported_days(name + table[-1]))
                if done != expected:
                    raise RuntimeError(f"{name}{table[-1]}: {len(done)} days, not {len(expected)}")
        units = args.days // args.unit_days * len(EIGHT)
    finally:
        pool.stop_all()
    timeline = unit_timeline(scenario.db, wall)
    figure: dict[str, Any] = {
        "workers": workers,
        "units": units,
        "wall_s": round(wall, 2),
        "emulator_cpu_s": round(emulator_cpu, 1),
        "workers_cpu_s": round(workers_cpu, 1),
        "command_cpu_s": round(command, 1),
        "emulator_cpu_per_unit_s": round(emulator_cpu / units, 3),
        **timeline,
        **sched,
    }
    if args.profile:
        figure["profile"] = profile_summary(args.profile_log, began, began + wall, units)
    return figure


def unit_timeline(db: str, wall: float) -> dict[str, Any]:
    """Where the wall time went, from the units' rows: outside the units (planning before the
    first unit starts, the ``--wait`` poll's lag after the last one), each worker's time
    inside units, the mean unit."""
    sql = "SELECT worker, started_at, finished_at FROM smolqwery_exportunit"
    if os.environ.get("SMOLQWERY_TEST_DB", "sqlite") == "postgres":
        import psycopg

        with psycopg.connect(
            host=os.environ.get("SMOLQWERY_TEST_PG_HOST", "127.0.0.1"),
            port=os.environ.get("SMOLQWERY_TEST_PG_PORT", "5432"),
            user=os.environ.get("SMOLQWERY_TEST_PG_USER", "postgres"),
            dbname=db,
        ) as con:
            rows: list[tuple[Any, ...]] = [tuple(r) for r in con.execute(sql)]
    else:
        import sqlite3

        with sqlite3.connect(db) as con:
            rows = list(con.execute(sql))

    def at(value: Any) -> float:
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        return float(value.timestamp())

    span = max(at(r[2]) for r in rows) - min(at(r[1]) for r in rows)
    busy: dict[str, float] = {}
    for worker, started, finished in rows:
        pid = worker.split(":")[1] if ":" in worker else worker
        busy[pid] = busy.get(pid, 0.0) + at(finished) - at(started)
    return {
        "units_span_s": round(span, 2),
        "outside_units_s": round(wall - span, 2),
        "unit_mean_s": round(sum(busy.values()) / len(rows), 3),
        "worker_busy_s": sorted(round(b, 1) for b in busy.values()),
    }


def profile_summary(log: Path, start: float, end: float, units: int) -> dict[str, Any]:
    """Per unit: the emulator's requests (by method and route) and jobs (by type and first
    SQL words), how many and their seconds, from the timing log between ``start`` and ``end``
    (both processes read the same monotonic clock)."""
    requests: dict[str, list[float]] = {}
    jobs: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if not start <= record["t"] <= end:
            continue
        if record["kind"] == "request":
            key = f"{record['method']} {record['route']} {record['status']}"
            entry = requests.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += record["wall"]
        else:
            words = " ".join(record["sql"].split()[:2]) if record["sql"] else ""
            key = f"{record['type']} {words}".strip()
            entry = jobs.setdefault(key, [0, 0.0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += record["wall"]
            entry[2] += record["cpu"]
            entry[3] += record["queued"]
    return {
        "requests_per_unit": round(sum(v[0] for v in requests.values()) / units, 2),
        "requests": {
            k: {"per_unit": round(v[0] / units, 2), "mean_s": round(v[1] / v[0], 3)}
            for k, v in sorted(requests.items(), key=lambda kv: -kv[1][1])
        },
        "jobs": {
            k: {
                "per_unit": round(v[0] / units, 2),
                "mean_wall_s": round(v[1] / v[0], 3),
                "mean_thread_cpu_s": round(v[2] / v[0], 3),
                "mean_queued_s": round(v[3] / v[0], 3),
            }
            for k, v in sorted(jobs.items(), key=lambda kv: -kv[1][1])
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--unit-days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workers", default="1,2", help="worker counts, in order (1,2)")
    parser.add_argument("--profile", action="store_true", help="log the emulator's timings")
    parser.add_argument(
        "--emulator-threads", type=int, help="DuckDB threads of the emulator (default: cores)"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    root = temporary_root()
    inst = emulator_fixture.install()
    launcher: list[str] = []
    args.profile_log = root / "emulator-profile.jsonl"
    if args.profile or args.emulator_threads:
        script = Path(__file__).with_name("emulator_profile.py")
        log = str(args.profile_log) if args.profile else "-"
        launcher = [str(inst.venv / "bin" / "python"), str(script), log]
    if args.emulator_threads:
        os.environ["SMOLQWERY_BENCH_EMULATOR_THREADS"] = str(args.emulator_threads)
    emu = emulator_fixture.start(inst, root / "emulator", launcher=launcher)
    broker = RedisBroker(root / "redis")
    broker.start()
    factory = ScenarioFactory(root / "scenarios")
    figures: list[dict[str, Any]] = []
    try:
        for _ in range(args.repeat):
            for workers in counts:
                load = os.getloadavg()[0]
                figure = measure(factory, emu, broker, root, workers, args)
                figure["load_before"] = round(load, 1)
                figure["load_after"] = round(os.getloadavg()[0], 1)
                figures.append(figure)
                print(json.dumps(figure), flush=True)
    finally:
        broker.close()
        emu.stop()
        factory.databases.drop_all()
    best = {w: min(f["wall_s"] for f in figures if f["workers"] == w) for w in counts}
    if 1 in best and 2 in best:
        print(
            f"best of {args.repeat}: 1 worker {best[1]} s, 2 workers {best[2]} s, "
            f"speed-up {best[1] / best[2]:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "best": best}, indent=2))


if __name__ == "__main__":
    main()
