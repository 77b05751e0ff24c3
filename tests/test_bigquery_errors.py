"""BigQuery errors users meet, each one line saying what to do.

Refusals the emulator cannot produce (billing, IAM) come from a loopback HTTP server answering
the real client with BigQuery's own JSON error bodies, or from the client's real exception
objects (``from_http_status``); expirations are read from the emulator, through ``migrate``.
"""

from __future__ import annotations

import datetime
import http.server
import json
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from smolqwery.errors import UnsafeDatasetError, WarehouseAccessError, WarehouseError
from smolqwery.warehouses.bigquery import BigQueryWarehouse
from smolqwery.warehouses.bigquery_errors import Target, classify

from .fixtures.emulator import Emulator
from .fixtures.warehouses import make_batch
from .migapp.harness import Project
from .test_warehouse_contract import DAILY, EVENTS

PROJECT = "test-project"
#: BigQuery's answer to DML in the sandbox (reason from its error table, text as users quote it).
SANDBOX_DML = (
    "Billing has not been enabled for this project. Enable billing at "
    "https://console.cloud.google.com/billing. DML queries are not allowed in the free tier. "
    "Set up a billing account to remove this restriction."
)


def _body(code: int, message: str, reason: str) -> dict[str, Any]:
    status = {403: "PERMISSION_DENIED", 400: "INVALID_ARGUMENT"}.get(code, "UNKNOWN")
    errors = [{"message": message, "domain": "global", "reason": reason}]
    return {"error": {"code": code, "message": message, "errors": errors, "status": status}}


class FakeBigQuery:
    """Answers (method, path pattern) with (status, JSON) like BigQuery's REST API; anything
    else is a 404 in BigQuery's shape. Records the requests it saw."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], int, dict[str, Any]]] = []
        self.seen: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, pattern: str, status: int, body: dict[str, Any]) -> None:
        self.routes.append((method, re.compile(pattern), status, body))

    def client(self) -> bigquery.Client:
        return bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                path = self.path.split("?", 1)[0]
                fake.seen.append(f"{self.command} {path}")
                status, body = 404, _body(404, f"Not found: {path}", "notFound")
                for method, pattern, code, answer in fake.routes:
                    if method == self.command and pattern.search(path):
                        status, body = code, answer
                        break
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def fake_bigquery() -> Iterator[FakeBigQuery]:
    fake = FakeBigQuery()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def _dataset_resource(name: str) -> dict[str, Any]:
    return {
        "kind": "bigquery#dataset",
        "id": f"{PROJECT}:{name}",
        "datasetReference": {"projectId": PROJECT, "datasetId": name},
        "location": "US",
        "etag": "etag-1",
        "labels": {},
        "access": [{"role": "OWNER", "specialGroup": "projectOwners"}],
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


# -- billing (the sandbox) -------------------------------------------------------------------


def test_dml_refused_in_the_sandbox_says_enable_billing(fake_bigquery: FakeBigQuery) -> None:
    fake_bigquery.route(
        "POST", r"/projects/test-project/jobs$", 403, _body(403, SANDBOX_DML, "billingNotEnabled")
    )
    wh = BigQueryWarehouse(fake_bigquery.client(), "ds", location="US", retry_deadline=5)
    with pytest.raises(WarehouseAccessError) as info:
        wh.replace_days(make_batch(DAILY, datetime.date(2024, 1, 1), rows=[]))
    text = _one_line(info.value)
    assert text.startswith("replace days 2024-01-01..2024-01-01 of daily_totals: billing is not")
    assert "enabled on Google Cloud project test-project" in text
    assert (
        "enable billing at https://console.cloud.google.com/billing/linkedaccount?project=test-project"
        in text
    )
    assert (
        fake_bigquery.seen.count("POST /bigquery/v2/projects/test-project/jobs") == 1
    )  # not retried


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (SANDBOX_DML, "billingNotEnabled"),
        ("Billing has not been enabled for this project.", "billingNotEnabled"),
        (
            "Access Denied: BigQuery BigQuery: Streaming insert is not allowed in the free tier",
            "accessDenied",
        ),
    ],
)
def test_billing_refusals_from_the_clients_error_objects(message: str, reason: str) -> None:
    exc = gexc.from_http_status(403, message, errors=[{"reason": reason, "message": message}])
    error = classify(exc, "export", Target(PROJECT, "ds"))
    assert isinstance(error, WarehouseAccessError)
    assert "billing is not enabled on Google Cloud project test-project" in _one_line(error)


# -- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        # What BigQuery says today, and what it said before (no permission named at all).
        "Access Denied: Dataset test-project:ds: Permission bigquery.datasets.update denied on "
        "dataset test-project:ds (or it may not exist).",
        "Access Denied: Dataset test-project:ds",
    ],
)
def test_403_on_dataset_access_entries_names_the_role(
    fake_bigquery: FakeBigQuery, message: str
) -> None:
    fake_bigquery.route("GET", r"/datasets/ds$", 200, _dataset_resource("ds"))
    fake_bigquery.route("PATCH", r"/datasets/ds$", 403, _body(403, message, "accessDenied"))
    wh = BigQueryWarehouse(
        fake_bigquery.client(), "ds", acl_groups=("analysts@example.com",), retry_deadline=5
    )
    with pytest.raises(WarehouseAccessError) as info:
        wh.ensure_dataset()
    text = _one_line(info.value)
    assert text.startswith(
        "ensure dataset test-project.ds: permission bigquery.datasets.update denied"
    )
    assert "BigQuery Data Owner (roles/bigquery.dataOwner) on dataset test-project:ds" in text
    assert "SMOLQWERY_ACL_GROUPS" in text


@pytest.mark.parametrize(
    ("message", "role"),
    [
        (
            "Access Denied: Project test-project: User does not have bigquery.jobs.create "
            "permission in project test-project.",
            "BigQuery Job User (roles/bigquery.jobUser) on project test-project",
        ),
        (
            "Access Denied: Table test-project:ds.events: Permission bigquery.tables.updateData "
            "denied on table test-project:ds.events (or it may not exist).",
            "BigQuery Data Editor (roles/bigquery.dataEditor) on dataset test-project:ds",
        ),
        (
            "Access Denied: Project test-project: Permission bigquery.datasets.create denied.",
            "BigQuery Data Editor (roles/bigquery.dataEditor) on project test-project",
        ),
    ],
)
def test_other_permissions_name_their_role(message: str, role: str) -> None:
    exc = gexc.from_http_status(
        403, message, errors=[{"reason": "accessDenied", "message": message}]
    )
    error = classify(exc, "export", Target(PROJECT, "ds"))
    assert isinstance(error, WarehouseAccessError)
    assert role in _one_line(error)


def test_quota_refusals_are_not_called_permissions() -> None:
    exc = gexc.from_http_status(403, "Quota exceeded", errors=[{"reason": "quotaExceeded"}])
    error = classify(exc, "export", Target(PROJECT, "ds"))
    assert type(error) is WarehouseError
    assert _one_line(error) == "export: 403 Forbidden: Quota exceeded"


# -- limits, before any call -----------------------------------------------------------------


def test_clustering_limit_is_refused_before_any_call(fake_bigquery: FakeBigQuery) -> None:
    import dataclasses

    wide = dataclasses.replace(EVENTS, clustering=("user_id",) * 5)
    wh = BigQueryWarehouse(fake_bigquery.client(), "ds", location="US", retry_deadline=5)
    with pytest.raises(WarehouseError, match="BigQuery allows at most 4"):
        wh.create_table(wide)
    assert fake_bigquery.seen == []


# -- expirations, refused at migrate ---------------------------------------------------------


@pytest.mark.emulator
def test_migrate_refuses_a_dataset_whose_tables_expire(
    bigquery_emulator: Emulator, tmp_path: Any
) -> None:
    """The sandbox gives datasets a 60-day default: exported days and the ledger would vanish."""
    project = Project(
        tmp_path / "run",
        dataset=f"exp_{uuid.uuid4().hex[:10]}",
        env={
            "SQ_WAREHOUSE": "bigquery",
            "SQ_BQ_ENDPOINT": bigquery_emulator.endpoint,
            "SQ_BQ_PROJECT": bigquery_emulator.project,
        },
    )
    project.make_migrations()
    client = bigquery_emulator.client()
    dataset = bigquery.Dataset(f"{PROJECT}.{project.dataset}")
    dataset.default_table_expiration_ms = 60 * 86_400_000
    dataset.default_partition_expiration_ms = 30 * 86_400_000
    client.create_dataset(dataset)

    proc = project.manage("migrate", ok=False)
    assert proc.returncode != 0
    assert (
        f"dataset {PROJECT}:{project.dataset} has a default table "
        "expiration of 60 days and a default partition expiration of 30 days: BigQuery would "
        "delete exported days and smolqwery's ledger; remove it with `bq update "
        "--default_table_expiration 0 --default_partition_expiration 0 "
        f"{PROJECT}:{project.dataset}`"
    ) in proc.stderr
    assert [t.table_id for t in client.list_tables(project.dataset)] == []

    found = client.get_dataset(project.dataset)
    found.default_table_expiration_ms = None
    found.default_partition_expiration_ms = None
    client.update_dataset(found, ["default_table_expiration_ms", "default_partition_expiration_ms"])
    project.manage("migrate")
    assert "smolqwery_ledger_email" in [t.table_id for t in client.list_tables(project.dataset)]


@pytest.mark.emulator
def test_an_existing_table_that_expires_is_refused(bigquery_warehouse: BigQueryWarehouse) -> None:
    """A dataset default reaches new tables only: tables made meanwhile keep expiring."""
    client = bigquery_warehouse.client
    table = bigquery.Table(
        bigquery_warehouse._ref("events"),
        schema=[bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in EVENTS.columns],
    )
    table.time_partitioning = bigquery.TimePartitioning(field="timestamp", expiration_ms=86_400_000)
    table.expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=60)
    client.create_table(table)
    with pytest.raises(UnsafeDatasetError) as info:
        bigquery_warehouse.create_table(EVENTS)
    assert _one_line(info.value) == (
        f"table {PROJECT}:{bigquery_warehouse.dataset}.events has an expiration time and a "
        "partition expiration of 1 day: BigQuery would delete exported days; remove it with "
        f"`bq update --expiration 0 --time_partitioning_expiration 0 "
        f"{PROJECT}:{bigquery_warehouse.dataset}.events` and run again"
    )
