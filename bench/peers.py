"""The peers, measured in a virtualenv of their own (``bench/run --peers``; issue 16).

``python -m bench.peers BACKEND``: dlt's ``sql_table`` (``sqlalchemy``, ``pyarrow`` or
``connectorx`` backend) reading the whole ``bench_event`` table (exactly the rows of the days
measured) into a DuckDB file, as dlt's documentation shows. Runs without Django and without
smolqwery: only dlt and its backends, installed by ``bench/peers-venv`` into
``~/.cache/smolqwery/bench-peers``, never into the product's dependencies.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

RESULT_PREFIX = "BENCH_RESULT "


def credentials() -> str:
    if os.environ.get("BENCH_DB") == "postgres":
        host = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
        port = os.environ.get("BENCH_PG_PORT", "5432")
        user = os.environ.get("BENCH_PG_USER", "postgres")
        return f"postgresql://{user}@{host}:{port}/{os.environ['BENCH_PG_NAME']}"
    return f"sqlite:///{os.environ['BENCH_SQLITE_PATH']}"


def main(backend: str) -> None:
    import json

    import dlt
    import duckdb
    from dlt.sources.sql_database import sql_table

    out = os.environ["BENCH_DUCKDB_PATH"]
    with tempfile.TemporaryDirectory() as pipelines:
        started = time.perf_counter(), time.process_time()
        table = sql_table(credentials=credentials(), table="bench_event", backend=backend)
        pipeline = dlt.pipeline(
            pipeline_name=f"bench_{backend}",
            destination=dlt.destinations.duckdb(out),
            dataset_name="bench",
            pipelines_dir=pipelines,
            progress=None,
        )
        pipeline.run(table)
        seconds = time.perf_counter() - started[0]
        cpu = time.process_time() - started[1]
    con = duckdb.connect(out, read_only=True)
    row = con.execute("SELECT count(*) FROM bench.bench_event").fetchone()
    con.close()
    result = {"rows": int(row[0]) if row else 0, "seconds": seconds, "cpu": cpu}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
