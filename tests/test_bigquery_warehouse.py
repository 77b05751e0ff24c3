"""What only the BigQuery warehouse does: dataset ACLs, partitioning, the load path, retries,
settings and credentials. All through the real client, over HTTP, to the local emulator."""

from __future__ import annotations

import datetime
import http.server
import json
import logging
import os
import socket
import threading
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from smolqwery.errors import ConfigurationError, WarehouseError
from smolqwery.rows import arrow_schema
from smolqwery.settings import get_settings
from smolqwery.warehouses import get_warehouse
from smolqwery.warehouses.base import DayBatch, relaxed_schema
from smolqwery.warehouses.bigquery import (
    BigQueryWarehouse,
    load_job_id,
    staging_name,
    write_parquet,
)
from smolqwery.warehouses.bigquery_upload import load_from_file
from smolqwery.warehouses.retry import is_transient
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.emulator import Emulator
from .fixtures.http_proxy import ForwardingProxy, serving
from .fixtures.warehouses import make_batch, record_batches
from .test_warehouse_contract import DAILY, EVENTS, daily, event, paris

D = datetime.date


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _groups(dataset: bigquery.Dataset) -> set[tuple[str, str]]:
    return {
        (e.role, str(e.entity_id))
        for e in dataset.access_entries
        if e.entity_type == "groupByEmail"
    }


def _dataset() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


# -- dataset ---------------------------------------------------------------------------------


def test_acl_groups_are_added_and_foreign_entries_kept(bigquery_emulator: Emulator) -> None:
    name = _dataset()
    wh = bigquery_emulator.warehouse(
        name, acl_groups=("analysts@example.com",), labels={"team": "data"}
    )
    wh.ensure_dataset()
    client = bigquery_emulator.client()
    dataset = client.get_dataset(name)
    groups = {
        (e.role, e.entity_id) for e in dataset.access_entries if e.entity_type == "groupByEmail"
    }
    assert groups == {("WRITER", "analysts@example.com")}
    assert dataset.labels == {"team": "data"}

    # Someone adds an entry and a label of their own; smolqwery's config gains a group.
    dataset.access_entries = [
        *dataset.access_entries,
        bigquery.AccessEntry("READER", "groupByEmail", "auditors@example.com"),
    ]
    dataset.labels = {**dataset.labels, "owner": "ops"}
    client.update_dataset(dataset, ["access_entries", "labels"])
    wh = bigquery_emulator.warehouse(
        name,
        acl_groups=("analysts@example.com", "bi@example.com"),
        labels={"team": "analytics"},
    )
    wh.ensure_dataset()
    dataset = client.get_dataset(name)
    groups = {
        (e.role, e.entity_id) for e in dataset.access_entries if e.entity_type == "groupByEmail"
    }
    assert groups == {
        ("WRITER", "analysts@example.com"),
        ("WRITER", "bi@example.com"),
        ("READER", "auditors@example.com"),
    }
    assert dataset.labels == {"team": "analytics", "owner": "ops"}
    # BigQuery's default entries of a new dataset are still there.
    assert any(e.role == "OWNER" for e in dataset.access_entries)


def test_location_of_an_existing_dataset_is_checked(bigquery_emulator: Emulator) -> None:
    name = _dataset()
    client = bigquery_emulator.client()
    dataset = bigquery.Dataset(f"{bigquery_emulator.project}.{name}")
    dataset.location = "EU"
    client.create_dataset(dataset)
    if (client.get_dataset(name).location or "").upper() != "EU":
        pytest.fail("the emulator does not keep dataset locations; this test needs it")
    with pytest.raises(WarehouseError, match="is in EU, but SMOLQWERY_DATASET_LOCATION is US"):
        bigquery_emulator.warehouse(name, location="US").ensure_dataset()
    bigquery_emulator.warehouse(name, location="eu").ensure_dataset()


# -- tables ----------------------------------------------------------------------------------


def test_tables_are_partitioned_by_day_and_clustered(bigquery_warehouse: BigQueryWarehouse) -> None:
    bigquery_warehouse.create_table(EVENTS)
    bigquery_warehouse.create_table(DAILY)
    events = bigquery_warehouse.get_table("events")
    assert events is not None
    assert events.time_partitioning.type_ == "DAY"
    assert events.time_partitioning.field == "timestamp"
    assert events.clustering_fields == ["user_id"]
    assert events.description == "One row per event"
    assert [f.description for f in events.schema] == [c.description for c in EVENTS.columns]
    totals = bigquery_warehouse.get_table("daily_totals")
    assert totals is not None
    assert totals.time_partitioning.field == "date"
    assert not totals.clustering_fields


def test_an_unpartitioned_table_of_0_1_3_is_accepted_with_a_warning(
    bigquery_warehouse: BigQueryWarehouse, caplog: pytest.LogCaptureFixture
) -> None:
    client = bigquery_warehouse.client
    table = bigquery.Table(
        f"{bigquery_warehouse.project}.{bigquery_warehouse.dataset}.events",
        schema=[bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in EVENTS.columns],
    )
    client.create_table(table)
    with caplog.at_level(logging.WARNING, logger="smolqwery"):
        assert bigquery_warehouse.create_table(EVENTS) is False
    assert "not partitioned by day on timestamp" in caplog.text


# -- the write path --------------------------------------------------------------------------


def test_staging_table_is_nullable_expiring_and_dropped(
    bigquery_warehouse: BigQueryWarehouse,
) -> None:
    bigquery_warehouse.create_table(EVENTS)
    batch = make_batch(EVENTS, D(2024, 5, 1), rows=[event(paris(2024, 5, 1), 1)])
    name, _ = bigquery_warehouse._create_staging(EVENTS, batch)
    assert name.startswith("smolqwery_staging_events_")
    staging = bigquery_warehouse.get_table(name)
    assert staging is not None
    assert staging.expires is not None
    remaining = staging.expires - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=23) < remaining <= datetime.timedelta(days=1)
    assert {f.mode for f in staging.schema} == {"NULLABLE"}
    assert [f.name for f in staging.schema] == list(EVENTS.column_names)
    bigquery_warehouse._drop_staging(name)
    bigquery_warehouse.replace_days(batch)
    assert [t for t in bigquery_warehouse.list_tables() if t.startswith("smolqwery_staging")] == []


def _staged_file(wh: BigQueryWarehouse, tmp_path: Path, rows: int) -> tuple[DayBatch, str, str]:
    """A batch of ``rows`` events written to Parquet, and an empty staging table for it."""
    wh.create_table(EVENTS)
    batch = make_batch(
        EVENTS, D(2024, 5, 1), rows=[event(paris(2024, 5, 1, h), h) for h in range(rows)]
    )
    path = str(tmp_path / "rows.parquet")
    assert write_parquet(batch.chunks, relaxed_schema(arrow_schema(EVENTS)), path) == rows
    name, _ = wh._create_staging(EVENTS, batch)
    return batch, path, name


def _loader(wh: BigQueryWarehouse, staging: str, path: str) -> Callable[[str], Any]:
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)

    def submit(job_id: str) -> Any:
        with open(path, "rb") as fh:
            return wh.client.load_table_from_file(
                fh, wh._ref(staging), job_id=job_id, job_config=config, num_retries=0
            )

    return submit


@pytest.mark.emulator
def test_a_409_on_a_load_that_succeeded_is_picked_up_not_loaded_twice(
    bigquery_warehouse: BigQueryWarehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry after a lost answer submits the same id: the job is found, not run again."""
    _, path, staging = _staged_file(bigquery_warehouse, tmp_path, 5)
    base = f"test_load_{uuid.uuid4().hex}"
    submit = _loader(bigquery_warehouse, staging, path)
    first = bigquery_warehouse._run_job("load", submit, lambda n: f"{base}_g{n}")
    with caplog.at_level(logging.INFO, logger="smolqwery"):
        again = bigquery_warehouse._run_job("load", submit, lambda n: f"{base}_g{n}")
    assert first.job_id == again.job_id == f"{base}_g0"
    assert "exists already (DONE): polling it" in caplog.text
    assert len(fetch_rows(bigquery_warehouse, staging)) == 5


@pytest.mark.emulator
def test_a_failed_load_job_is_run_again_under_a_new_id(
    bigquery_warehouse: BigQueryWarehouse, tmp_path: Path
) -> None:
    """A 409 on a job that ended in error moves to the next generation instead of waiting on
    the dead job until the deadline (the old behaviour)."""
    _, path, staging = _staged_file(bigquery_warehouse, tmp_path, 5)
    bad = str(tmp_path / "bad.parquet")  # a schema mismatch: user_id as text
    pq.write_table(pa.table({"user_id": ["x", "y"]}), bad)
    base = f"test_load_{uuid.uuid4().hex}"
    dead = _loader(bigquery_warehouse, staging, bad)(f"{base}_g0")
    with pytest.raises(gexc.BadRequest):
        dead.result()
    job = bigquery_warehouse._run_job(
        "load", _loader(bigquery_warehouse, staging, path), lambda n: f"{base}_g{n}"
    )
    assert job.job_id == f"{base}_g1"
    assert job.error_result is None
    assert bigquery_warehouse.client.get_job(f"{base}_g0").error_result["reason"] == "invalid"
    assert len(fetch_rows(bigquery_warehouse, staging)) == 5


@pytest.mark.emulator
def test_a_load_that_fails_by_itself_is_reported_at_once(
    bigquery_warehouse: BigQueryWarehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, staging = _staged_file(bigquery_warehouse, tmp_path, 1)
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"user_id": ["x"]}), bad)
    base = f"test_load_{uuid.uuid4().hex}"
    with (
        caplog.at_level(logging.WARNING, logger="smolqwery"),
        pytest.raises(WarehouseError) as info,
    ):
        bigquery_warehouse._run_job(
            "replace days: load",
            _loader(bigquery_warehouse, staging, bad),
            lambda n: f"{base}_g{n}",
        )
    message = str(info.value)
    assert message.startswith("replace days: load: 400 BadRequest")
    assert "\n" not in message
    assert "retrying" not in caplog.text
    assert fetch_rows(bigquery_warehouse, staging) == []


@pytest.mark.emulator
def test_a_query_job_found_by_a_409_is_polled_never_resubmitted(
    bigquery_warehouse: BigQueryWarehouse,
) -> None:
    """A DML job already submitted (its answer lost, or still running) is waited for: its
    INSERT runs once."""
    wh = bigquery_warehouse
    wh.create_table(DAILY)
    sql = f"INSERT INTO {wh.qualified_name('daily_totals')} (date, users) VALUES (@d, 7)"
    params = [bigquery.ScalarQueryParameter("d", "DATE", D(2024, 1, 1))]
    base = f"test_query_{uuid.uuid4().hex}"

    def submit(job_id: str) -> Any:
        return wh.client.query(
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=params),
            job_id=job_id,
            job_retry=None,
        )

    for _ in range(2):
        job = wh._run_job("insert", submit, lambda n: f"{base}_g{n}")
        assert job.job_id == f"{base}_g0"
    assert [r["users"] for r in fetch_rows(wh, "daily_totals")] == [7]


@pytest.mark.emulator
def test_each_load_generation_has_its_own_staging_table_all_dropped(
    bigquery_warehouse: BigQueryWarehouse,
) -> None:
    batch = make_batch(EVENTS, D(2024, 5, 1), rows=[event(paris(2024, 5, 1), 1)])
    names = {staging_name(batch, n) for n in range(3)}
    assert len(names) == 3
    assert all(n.startswith("smolqwery_staging_events_") for n in names)
    created = "2024-05-01T00:00:00+00:00"
    assert load_job_id(batch, created, 0) != load_job_id(batch, created, 1)
    assert load_job_id(batch, created, 1).endswith("_g1")
    bigquery_warehouse.create_table(EVENTS)
    bigquery_warehouse.replace_days(batch)
    assert [t for t in bigquery_warehouse.list_tables() if t.startswith("smolqwery_staging")] == []
    assert [r["user_id"] for r in fetch_rows(bigquery_warehouse, "events")] == [1]


def test_replace_days_in_a_dataset_elsewhere_without_ensure(bigquery_emulator: Emulator) -> None:
    """A process that did not run ensure_dataset finds the dataset's location for its jobs."""
    name = _dataset()
    dataset = bigquery.Dataset(f"{bigquery_emulator.project}.{name}")
    dataset.location = "EU"
    bigquery_emulator.client().create_dataset(dataset)
    bigquery_emulator.warehouse(name, location="EU").ensure_dataset()
    wh = bigquery_emulator.warehouse(name)
    wh.create_table(EVENTS)
    wh.replace_days(make_batch(EVENTS, D(2024, 5, 1), rows=[event(paris(2024, 5, 1), 1)]))
    assert wh._location() == "EU"
    assert [r["user_id"] for r in fetch_rows(wh, "events")] == [1]


def test_write_parquet_streams_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are written as they come, in row groups, so memory stays bounded."""
    import smolqwery.warehouses.bigquery as bq

    monkeypatch.setattr(bq, "ROW_GROUP_ROWS", 1000)
    start = paris(2024, 1, 1, 0)
    rows = [event(start + datetime.timedelta(seconds=i), i) for i in range(3500)]
    path = str(tmp_path / "x.parquet")
    assert write_parquet(record_batches(EVENTS, rows, 500), arrow_schema(EVENTS), path) == 3500
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 4
    assert meta.num_rows == 3500
    back = pq.read_table(path).to_pylist()
    assert back[3499]["user_id"] == 3499
    assert back[0]["timestamp"] == start


class _UploadProxy(ForwardingProxy):
    """Notes each upload chunk (a ``PUT`` to the upload URL) by its ``Content-Range``. With
    ``cut_from`` set, every chunk starting at that byte or later is not forwarded and its
    connection is broken, as a network failure in the middle of an upload would."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.chunks: list[str] = []
        self.cut_from: int | None = None

    def forward(self, request: http.server.BaseHTTPRequestHandler) -> bool:
        if request.command != "PUT" or not request.path.startswith("/upload/"):
            return True
        span = request.headers.get("Content-Range", "")
        self.chunks.append(span)
        start = int(span.removeprefix("bytes ").split("-")[0])
        return self.cut_from is None or start < self.cut_from


@pytest.fixture
def upload_proxy(bigquery_emulator: Emulator) -> Iterator[_UploadProxy]:
    with serving(_UploadProxy(bigquery_emulator.endpoint)) as proxy:
        assert isinstance(proxy, _UploadProxy)
        yield proxy


#: The smallest chunk a resumable upload accepts: a test file of a few hundred KiB is then
#: uploaded in several chunks, as a large batch is in chunks of ``UPLOAD_CHUNK_SIZE``.
SMALL_CHUNK = 256 * 1024
#: A chunk large enough for a memory measure (Python's own allocations are small beside it).
CHUNK = 1024 * 1024


def _proxied_warehouse(
    proxy: _UploadProxy, emulator: Emulator, retry_deadline: float = 30.0
) -> BigQueryWarehouse:
    from google.auth.credentials import AnonymousCredentials

    client = bigquery.Client(
        project=emulator.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": proxy.endpoint},
    )
    wh = BigQueryWarehouse(client, _dataset(), retry_deadline=retry_deadline)
    wh.upload_chunk_size = SMALL_CHUNK
    wh.ensure_dataset()
    wh.create_table(EVENTS)
    return wh


def _incompressible_events(day: datetime.date, count: int) -> list[dict[str, Any]]:
    """``count`` events of one day whose Parquet file takes ~60 bytes a row (random kinds)."""
    start = paris(day.year, day.month, day.day, 0)
    return [event(start + datetime.timedelta(seconds=i), i, uuid.uuid4().hex) for i in range(count)]


@pytest.mark.emulator
def test_a_large_file_is_uploaded_in_chunks_and_loaded_exactly(
    upload_proxy: _UploadProxy, bigquery_emulator: Emulator
) -> None:
    """The upload holds one chunk at a time, never the file: several chunks, one load job."""
    wh = _proxied_warehouse(upload_proxy, bigquery_emulator)
    day = D(2024, 6, 3)
    rows = _incompressible_events(day, 12_000)
    wh.replace_days(make_batch(EVENTS, day, rows=rows))
    total = int(upload_proxy.chunks[-1].rsplit("/", 1)[1])
    assert total > 2 * SMALL_CHUNK
    starts = [int(c.removeprefix("bytes ").split("-")[0]) for c in upload_proxy.chunks]
    assert starts == list(range(0, total, SMALL_CHUNK))  # one upload, in order, no resend
    assert fetch_rows(wh, "events", order_by=["user_id"]) == rows
    assert wh.exported_days("events")[day].rows == len(rows)
    assert not [t for t in wh.list_tables() if t.startswith("smolqwery_staging")]


@pytest.mark.emulator
def test_an_upload_broken_midway_writes_nothing(
    upload_proxy: _UploadProxy, bigquery_emulator: Emulator
) -> None:
    """Every attempt breaks after its first chunk: no load job is ever created, the day keeps
    its earlier rows and ledger entry, and the staging tables are dropped."""
    wh = _proxied_warehouse(upload_proxy, bigquery_emulator, retry_deadline=1.0)
    day = D(2024, 6, 4)
    before = [event(paris(2024, 6, 4, 9), 1)]
    wh.replace_days(make_batch(EVENTS, day, rows=before, run_id="before"))
    upload_proxy.cut_from = SMALL_CHUNK
    with pytest.raises(WarehouseError, match="still failing after"):
        wh.replace_days(make_batch(EVENTS, day, rows=_incompressible_events(day, 12_000)))
    attempts = [c for c in upload_proxy.chunks if c.startswith("bytes 0-")]
    assert len(attempts) >= 2  # each retry starts a new upload from the first byte
    assert fetch_rows(wh, "events") == before
    assert wh.exported_days("events")[day].run_id == "before"
    loads = [
        job
        for job in wh.client.list_jobs(all_users=True)
        if job.job_type == "load" and job.destination.dataset_id == wh.dataset
    ]
    assert len(loads) == 1  # the first replacement's, a multipart upload
    assert not [t for t in wh.list_tables() if t.startswith("smolqwery_staging")]
    wh.close()


@pytest.mark.emulator
def test_the_upload_holds_one_chunk_in_memory(
    bigquery_warehouse: BigQueryWarehouse, tmp_path: Path
) -> None:
    """Python's peak during the upload of a 4 MiB file in 1 MiB chunks stays under two chunks
    (a response keeps its request's body: kept across the next read, two were held)."""
    wh = bigquery_warehouse
    path = str(tmp_path / "random.parquet")
    values = pa.Array.from_buffers(pa.int64(), 1 << 19, [None, pa.py_buffer(os.urandom(1 << 22))])
    pq.write_table(pa.table({"v": values}), path, compression="none")
    assert os.path.getsize(path) > 4 * CHUNK
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
    tracemalloc.start()
    try:
        job = load_from_file(
            wh.client, path, wh._ref("random"), f"test_{uuid.uuid4().hex}", config, None, CHUNK
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    job.result()
    assert CHUNK <= peak < 1.5 * CHUNK
    assert job.output_rows == 1 << 19


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (gexc.TooManyRequests("slow down"), True),
        (gexc.InternalServerError("oops"), True),
        (gexc.BadGateway("oops"), True),
        (gexc.ServiceUnavailable("later"), True),
        (gexc.GatewayTimeout("later"), True),
        (gexc.Forbidden("quota", errors=[{"reason": "rateLimitExceeded"}]), True),
        (gexc.BadRequest("x", errors=[{"reason": "backendError"}]), True),
        (gexc.BadRequest("Transaction is aborted due to concurrent update against table"), True),
        (requests.ConnectionError("reset"), True),
        (requests.Timeout("slow"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (gexc.BadRequest("Syntax error"), False),
        (gexc.Forbidden("Access Denied", errors=[{"reason": "accessDenied"}]), False),
        (gexc.NotFound("Not found: Table"), False),
        (gexc.Forbidden("quota", errors=[{"reason": "quotaExceeded"}]), False),
        (ValueError("bad"), False),
    ],
)
def test_which_failures_are_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_permanent_failures_are_reported_at_once(
    bigquery_warehouse: BigQueryWarehouse, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="smolqwery"),
        pytest.raises(WarehouseError) as info,
    ):
        fetch_rows(bigquery_warehouse, "no_such_table")
    assert "read rows of no_such_table" in str(info.value)
    assert "404" in str(info.value)
    assert "retrying" not in caplog.text


def test_transient_failures_are_retried_until_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from google.auth.credentials import AnonymousCredentials

    client = bigquery.Client(
        project="test-project",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": f"http://127.0.0.1:{_closed_port()}"},
    )
    wh = BigQueryWarehouse(client, "ds", retry_deadline=1.5)
    with (
        caplog.at_level(logging.WARNING, logger="smolqwery"),
        pytest.raises(WarehouseError) as info,
    ):
        wh.list_tables()
    message = str(info.value)
    assert message.startswith("list tables of test-project.ds: still failing after 1.5 s")
    assert "ConnectionError" in message
    assert f"cannot reach the BigQuery API at {client._connection.API_BASE_URL}" in message
    assert caplog.text.count("transient failure, retrying") >= 1


# -- settings and credentials ----------------------------------------------------------------


def test_d16_from_settings_uses_the_configured_project_and_endpoint(
    bigquery_emulator: Emulator, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project is passed explicitly: GOOGLE_CLOUD_PROJECT cannot redirect the data."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "someone-elses-project")
    name = _dataset()
    for key, value in bigquery_emulator.settings(name).items():
        setattr(settings, key, value)
    settings.SMOLQWERY_ACL_GROUPS = ["team@example.com"]
    with get_warehouse() as wh:
        assert isinstance(wh, BigQueryWarehouse)
        assert wh.project == "test-project"
        wh.ensure_dataset()
        wh.create_table(DAILY)
        wh.replace_days(make_batch(DAILY, D(2024, 1, 1), rows=[daily(D(2024, 1, 1), 7)]))
    client = bigquery_emulator.client()
    assert [
        r["users"] for r in client.query(f"SELECT users FROM `{name}.daily_totals`").result()
    ] == [7]
    entries = client.get_dataset(name).access_entries
    assert any(e.entity_id == "team@example.com" for e in entries)


def test_anonymous_without_a_project_is_a_configuration_error(settings: Any) -> None:
    settings.SMOLQWERY_WAREHOUSE = "bigquery"
    settings.SMOLQWERY_BIGQUERY_ANONYMOUS = True
    settings.SMOLQWERY_BIGQUERY_PROJECT = None
    with pytest.raises(ConfigurationError, match="SMOLQWERY_BIGQUERY_PROJECT"):
        BigQueryWarehouse.from_settings(get_settings())


class _TokenEndpoint(http.server.BaseHTTPRequestHandler):
    """A token endpoint that refuses every key, like Google's does for a revoked one."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT"})
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def token_endpoint() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_never_appear_in_errors(
    bigquery_emulator: Emulator, settings: Any, token_endpoint: str
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings.SMOLQWERY_WAREHOUSE = "bigquery"
    settings.SMOLQWERY_GOOGLE_PRIVATE_KEY = pem
    settings.SMOLQWERY_GOOGLE_PRIVATE_KEY_ID = "abcdef0123456789secretkeyid"
    settings.SMOLQWERY_GOOGLE_CLIENT_EMAIL = "exporter@test-project.iam.gserviceaccount.com"
    settings.SMOLQWERY_GOOGLE_PROJECT_ID = "test-project"
    settings.SMOLQWERY_GOOGLE_TOKEN_URI = token_endpoint
    settings.SMOLQWERY_BIGQUERY_API_ENDPOINT = bigquery_emulator.endpoint
    settings.SMOLQWERY_RETRY_DEADLINE = 5
    wh = BigQueryWarehouse.from_settings(get_settings())
    with pytest.raises(WarehouseError) as info:
        wh.list_tables()
    text = str(info.value) + repr(info.value.__cause__) + repr(info.value.__context__)
    assert "authentication failed (RefreshError)" in str(info.value)
    body = "".join(pem.splitlines()[1:-1])
    for secret in (body[:40], body[100:140], "secretkeyid", "BEGIN PRIVATE KEY"):
        assert secret not in text
