"""Exactly once when BigQuery's answers are lost: a loopback proxy between the real client and
the emulator forwards every request, then drops the answer of chosen job submissions (the job
exists, the client sees a broken connection). The retry submits the same job id, gets a 409
and picks the job up: rows are loaded once, the transaction committed once."""

from __future__ import annotations

import datetime
import http.server
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smolqwery.warehouses.bigquery import BigQueryWarehouse
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.emulator import Emulator
from .fixtures.http_proxy import ForwardingProxy, serving
from .fixtures.warehouses import make_batch
from .test_warehouse_contract import EVENTS, event, paris

#: Job submissions: a query's jobs.insert, and the request that completes a load's upload
#: (a multipart upload's only request, or a resumable upload's last one).
SUBMISSION = re.compile(
    r"^(POST /bigquery/v2/projects/[^/]+/jobs(\?|$)|PUT /upload/bigquery/v2/"
    r"|POST /upload/bigquery/v2/projects/[^/]+/jobs\?(.*&)?uploadType=multipart)"
)


class LossyProxy(ForwardingProxy):
    """The answers of submissions whose rank is in ``lose`` are dropped after the upstream
    handled them."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.lose: set[int] = set()
        self.submissions = 0
        self.lost = 0
        self.conflicts = 0

    def reset(self, lose: set[int]) -> None:
        self.lose, self.submissions, self.lost, self.conflicts = set(lose), 0, 0, 0

    def deliver(self, request: http.server.BaseHTTPRequestHandler, answer: Any) -> bool:
        if not SUBMISSION.match(f"{request.command} {request.path}") or answer.status_code >= 500:
            return True
        rank = self.submissions
        self.submissions += 1
        self.conflicts += answer.status_code == 409
        if rank in self.lose and answer.status_code != 409:
            self.lost += 1
            return False  # the job exists; the client never hears of it
        return True


@pytest.fixture(scope="module")
def lossy(bigquery_emulator: Emulator) -> Iterator[LossyProxy]:
    with serving(LossyProxy(bigquery_emulator.endpoint)) as proxy:
        assert isinstance(proxy, LossyProxy)
        yield proxy


@pytest.fixture(scope="module")
def lossy_warehouse(lossy: LossyProxy, bigquery_emulator: Emulator) -> Iterator[BigQueryWarehouse]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    client = bigquery.Client(
        project=bigquery_emulator.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": lossy.endpoint},
    )
    wh = BigQueryWarehouse(client, name, retry_deadline=60)
    wh.ensure_dataset()
    wh.create_table(EVENTS)
    try:
        yield wh
    finally:
        wh.close()


def expected_lost(lose: set[int], jobs: int) -> int:
    """Reference model: submissions are ranked in order; a job whose first submission loses
    its answer is submitted once more (that 409 is always answered)."""
    rank = lost = 0
    for _ in range(jobs):
        if rank in lose:
            lost += 1
            rank += 2
        else:
            rank += 1
    return lost


@pytest.mark.emulator
@example(lose={0, 2}, hours=3, day=2)  # both the load's and the transaction's answers lost
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lose=st.sets(st.integers(0, 3), max_size=3),
    hours=st.integers(1, 5),
    day=st.integers(1, 28),
)
def test_lost_answers_never_load_or_commit_twice(
    lossy: LossyProxy, lossy_warehouse: BigQueryWarehouse, lose: set[int], hours: int, day: int
) -> None:
    """Whichever submissions lose their answer, the day holds exactly the batch's rows once."""
    wh = lossy_warehouse
    rows = [event(paris(2024, 3, day, h), h) for h in range(hours)]
    batch = make_batch(EVENTS, datetime.date(2024, 3, day), rows=rows, run_id=uuid.uuid4().hex)
    lossy.reset(lose)
    wh.replace_days(batch)
    # Each lost answer was followed by one resubmission of the same id, met by a 409.
    lost = expected_lost(lose, jobs=2)
    assert (lossy.lost, lossy.conflicts, lossy.submissions) == (lost, lost, 2 + lost)
    stored = [
        r["user_id"]
        for r in fetch_rows(wh, "events", order_by=["user_id"])
        if r["timestamp"].astimezone(paris(2024, 3, day).tzinfo).date() == batch.first_day
    ]
    assert stored == list(range(hours))
    ledger = wh.exported_days("events")[batch.first_day]
    assert ledger.rows == hours and ledger.run_id == batch.run_id
    assert not [t for t in wh.list_tables() if t.startswith("smolqwery_staging")]
