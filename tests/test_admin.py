"""The read-only admin: export runs and the export tables overview, through Django's test client.

The warehouse is a real DuckDB file filled through the warehouse contract; runs are real
``ExportRun`` rows. Time is frozen on a day whose chart window crosses the end of summer time.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import path, reverse

from smolqwery import BaseExtractor, ExtractorType, sq_field
from smolqwery.admin import ExportRunAdmin
from smolqwery.charts import BAR_COLOUR, MISSING_COLOUR, bar_chart
from smolqwery.locking import EXPORT_LOCK, acquire, owner_id
from smolqwery.models import ExportRun
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.fixtures.warehouses import PARIS, make_batch

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 5, 9, 30, tzinfo=PARIS)
YESTERDAY = datetime.date(2026, 11, 4)
FIRST_DATE = YESTERDAY - datetime.timedelta(days=40)
DATASET = "admin_tests"
OVERVIEW = "/admin/smolqwery/exportrun/overview/"


@dataclasses.dataclass
class Signups:
    signups: int = sq_field(differentiate=True)


@dataclasses.dataclass
class Click:
    timestamp: datetime.datetime
    button: str


@dataclasses.dataclass
class Refund:
    amount: int


class SignupsExtractor(BaseExtractor[Signups]):
    def get_dataclass(self) -> type[Signups]:
        return Signups

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        yield from ()


class ClickExtractor(SignupsExtractor):
    def get_dataclass(self) -> type[Any]:
        return Click

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows


class RefundExtractor(SignupsExtractor):
    def get_dataclass(self) -> type[Any]:
        return Refund


class LeakyExtractor(SignupsExtractor):
    """Raises a third-party exception whose message must not reach the page."""

    def get_table_name(self) -> str:
        raise RuntimeError("token=hunter2")


EXTRACTORS = [
    f"{__name__}.{name}" for name in ("SignupsExtractor", "ClickExtractor", "RefundExtractor")
]


def days_back(first: int, last: int) -> tuple[datetime.date, datetime.date]:
    return YESTERDAY - datetime.timedelta(days=first), YESTERDAY - datetime.timedelta(days=last)


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(scope="module")
def filled_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse from ``FIRST_DATE`` (40 days ago) where ``signups`` is exported to
    yesterday but for a 2-day hole 10 days ago, ``click`` is 3 days behind and ``refund`` was
    never exported. Built once: the page only reads it."""
    path = tmp_path_factory.mktemp("admin") / "warehouse.duckdb"
    wh = DuckDBWarehouse(path, DATASET, busy_timeout=10)
    wh.ensure_dataset()
    signups = SignupsExtractor().get_schema()
    clicks = ClickExtractor().get_schema()
    for table in (signups, clicks, RefundExtractor().get_schema()):
        wh.create_table(table)

    # signups: 40 days ago → 12 days ago, then 9 days ago → yesterday (10 and 11 missing).
    for first, last in (days_back(40, 12), days_back(9, 0)):
        n = (last - first).days + 1
        rows = [{"date": first + datetime.timedelta(days=i), "signups": 100 + i} for i in range(n)]
        wh.replace_days(make_batch(signups, first, last, rows, run_id="r1"))
    # click: 5 rows 4 days ago, 2 rows 3 days ago, none on the other days; nothing since.
    first, last = days_back(40, 3)
    rows = [
        {"timestamp": datetime.datetime.combine(day, datetime.time(12), PARIS), "button": "buy"}
        for day, count in ((last - datetime.timedelta(days=1), 5), (last, 2))
        for _ in range(count)
    ]
    wh.replace_days(make_batch(clicks, first, last, rows, run_id="r1"))
    wh.close()
    return path


@pytest.fixture
def warehouse_path(filled_warehouse: Path, settings: Any, frozen: None) -> Path:
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = filled_warehouse
    settings.SMOLQWERY_DATASET = DATASET
    settings.SMOLQWERY_EXTRACTORS = EXTRACTORS
    settings.SMOLQWERY_FIRST_DATE = FIRST_DATE
    return filled_warehouse


@pytest.fixture
def staff_client(django_user_model: type[User]) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_exportrun"))
    client = Client()
    client.force_login(user)
    return client


def run(run_id: str, table: str, status: str, minutes: int, error: str = "") -> ExportRun:
    started = NOW - datetime.timedelta(minutes=minutes)
    return ExportRun.objects.create(
        run_id=run_id,
        extractor=f"{__name__}.{table}",
        table_name=table,
        started_at=started,
        finished_at=started + datetime.timedelta(seconds=30),
        status=status,
        days=1,
        rows=3,
        first_day=YESTERDAY,
        last_day=YESTERDAY,
        error=error,
    )


def row_of(html: str, table: str) -> str:
    match = re.search(rf'<tr class="export-table" data-table="{table}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {table}"
    return match.group(1)


def bar_titles(row_html: str) -> list[str]:
    return re.findall(r"<rect [^>]*><title>([^<]*)</title></rect>", row_html)


# -- access --------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={OVERVIEW}"


def test_non_staff_is_sent_to_login(client: Client, django_user_model: type[User]) -> None:
    client.force_login(django_user_model.objects.create_user("customer", password="pw"))
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_view_permission_is_refused(
    client: Client, django_user_model: type[User], warehouse_path: Path
) -> None:
    client.force_login(django_user_model.objects.create_user("intern", is_staff=True))
    assert client.get(OVERVIEW).status_code == 403


def test_overview_url_is_named_and_linked_from_the_run_list(
    staff_client: Client, warehouse_path: Path
) -> None:
    assert reverse("admin:smolqwery_exportrun_overview") == OVERVIEW
    changelist = staff_client.get(reverse("admin:smolqwery_exportrun_changelist"))
    assert changelist.status_code == 200
    assert f'href="{OVERVIEW}"' in changelist.content.decode()


# -- content -------------------------------------------------------------------------------


def test_overview_lists_each_table_with_last_day_and_lag(
    staff_client: Client, warehouse_path: Path
) -> None:
    response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="warehouse-error"' not in html
    assert f"DuckDB file {warehouse_path}, schema {DATASET}" in html
    assert '<strong id="yesterday">2026-11-04</strong>' in html
    assert "Europe/Paris" in html

    assert '<strong id="first-date">2026-09-25</strong>' in html

    # Lag and missing days as smolqwery_status counts them: from the oldest missing day.
    signups = row_of(html, "signups")
    assert '<td class="last-day">2026-11-04</td>' in signups
    assert "12 days behind" in signups
    assert "2 days missing since 2026-10-24" in signups
    assert "39 days exported in all" in signups  # 29 + 10 days

    clicks = row_of(html, "click")
    assert '<td class="last-day">2026-11-01</td>' in clicks
    assert "3 days behind" in clicks
    assert "missing since" not in clicks
    assert "7 rows; 38 days exported in all" in clicks

    refunds = row_of(html, "refund")
    assert "never exported" in refunds
    assert "41 days behind" in refunds
    assert 'class="smolqwery-chart"' in refunds  # an empty chart: every day marked as not exported
    assert set(bar_titles(refunds)) == {
        f"{YESTERDAY - datetime.timedelta(days=i)}: not exported" for i in range(30)
    }


def test_chart_has_one_bar_per_day_of_the_last_30(
    staff_client: Client, warehouse_path: Path
) -> None:
    html = staff_client.get(OVERVIEW).content.decode()
    titles = bar_titles(row_of(html, "signups"))
    assert len(titles) == 30
    first_day = YESTERDAY - datetime.timedelta(days=29)
    # The ledger counts rows: one per day in a date-aggregated table.
    assert titles[0] == f"{first_day}: 1 row"
    assert titles[-1] == f"{YESTERDAY}: 1 row"
    # The hole of 10 and 11 days ago (the window crosses the end of summer time on Oct 25).
    assert f"{YESTERDAY - datetime.timedelta(days=10)}: not exported" in titles
    assert f"{YESTERDAY - datetime.timedelta(days=11)}: not exported" in titles
    assert sum(t.endswith("not exported") for t in titles) == 2

    clicks = bar_titles(row_of(html, "click"))
    assert clicks[-6:] == [
        "2026-10-30: 0 rows",
        "2026-10-31: 5 rows",
        "2026-11-01: 2 rows",
        "2026-11-02: not exported",
        "2026-11-03: not exported",
        "2026-11-04: not exported",
    ]


def test_last_run_failures_are_listed(staff_client: Client, warehouse_path: Path) -> None:
    run("old", "refund", ExportRun.Status.FAILED, 120, "an older failure")
    run("new", "signups", ExportRun.Status.SUCCESS, 10)
    run("new", "click", ExportRun.Status.FAILED, 9, "WarehouseError: load of click <failed>")
    run("new", "refund", ExportRun.Status.FAILED, 8, "RowError: refund.amount is None")

    html = staff_client.get(OVERVIEW).content.decode()
    assert "Run <code>new</code>, started 2026-11-05 09:20:00" in html
    assert "2 failures" in html
    failures = re.findall(r'<tr class="failure">(.*?)</tr>', html, re.S)
    assert len(failures) == 2
    assert "load of click &lt;failed&gt;" in html  # escaped
    assert "refund.amount is None" in html
    assert "an older failure" not in html
    assert "success, 2026-11-05 09:20" in row_of(html, "signups")
    assert "failed, 2026-11-05 09:21" in row_of(html, "click")


def test_no_run_yet(staff_client: Client, warehouse_path: Path) -> None:
    html = staff_client.get(OVERVIEW).content.decode()
    assert "No export has run yet" in html
    assert "none" in row_of(html, "signups")


def test_successful_last_run_says_no_failure(staff_client: Client, warehouse_path: Path) -> None:
    run("only", "signups", ExportRun.Status.SUCCESS, 5)
    html = staff_client.get(OVERVIEW).content.decode()
    assert "no failure" in html
    assert 'id="failures"' not in html


# -- a warehouse or settings that do not work ----------------------------------------------------


def test_unreadable_warehouse_is_a_message_not_a_500(
    staff_client: Client, warehouse_path: Path, settings: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "not-a-database.duckdb"
    broken.write_bytes(b"this is not a DuckDB file" * 100)
    settings.SMOLQWERY_DUCKDB_PATH = broken
    run("r", "signups", ExportRun.Status.SUCCESS, 5)

    response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    message = re.search(r'<li class="error" id="warehouse-error">(.*?)</li>', html, re.S)
    assert message
    assert "read ledger of signups: cannot open DuckDB file" in message.group(1)
    # Tables are still listed with their last run; no chart is invented.
    assert "success" in row_of(html, "signups")
    assert 'class="smolqwery-chart"' not in html


def test_unimportable_extractor_is_a_message_on_its_row(
    staff_client: Client, warehouse_path: Path, settings: Any
) -> None:
    settings.SMOLQWERY_EXTRACTORS = ["shop.nowhere.MissingExtractor", *EXTRACTORS]
    response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    broken = row_of(html, "shop.nowhere.MissingExtractor")
    expected = "extractor &#x27;shop.nowhere.MissingExtractor&#x27; cannot be imported"
    assert expected in broken
    assert 'id="warehouse-error"' not in html
    assert "up to date" not in html  # nothing is up to date here, but every table is shown
    assert "3 days behind" in row_of(html, "click")


def test_settings_error_is_a_message(
    staff_client: Client, warehouse_path: Path, settings: Any
) -> None:
    settings.SMOLQWERY_EXTRACTORS = "tests.test_admin.SignupsExtractor"  # a string, not a list
    response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    message = re.search(
        r'<li class="error" id="warehouse-error">(.*?)</li>', response.content.decode(), re.S
    )
    assert message
    assert "SMOLQWERY_EXTRACTORS must be a list of strings" in message.group(1)


def test_without_first_date_the_lag_counts_from_the_first_exported_day(
    staff_client: Client, warehouse_path: Path, settings: Any
) -> None:
    del settings.SMOLQWERY_FIRST_DATE
    html = staff_client.get(OVERVIEW).content.decode()
    assert 'id="first-date"' not in html
    assert "3 days behind" in row_of(html, "click")
    assert "12 days behind" in row_of(html, "signups")
    refunds = row_of(html, "refund")
    assert "never exported" in refunds
    assert "behind" not in refunds


def test_third_party_error_text_stays_in_the_log(
    staff_client: Client,
    warehouse_path: Path,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.LeakyExtractor"]
    html = staff_client.get(OVERVIEW).content.decode()
    assert (
        "loading tests.test_admin.LeakyExtractor: RuntimeError (details in the server log)" in html
    )
    assert "hunter2" not in html
    assert any(r.name == "smolqwery.admin" and r.exc_info for r in caplog.records)


def test_no_extractor_configured(staff_client: Client, warehouse_path: Path, settings: Any) -> None:
    settings.SMOLQWERY_EXTRACTORS = []
    html = staff_client.get(OVERVIEW).content.decode()
    assert "No extractor is configured" in html


# -- export runs are read-only ------------------------------------------------------------------


def test_export_runs_are_read_only(admin_client: Client, warehouse_path: Path) -> None:
    export_run = run("r", "signups", ExportRun.Status.FAILED, 5, "boom")
    changelist = admin_client.get(reverse("admin:smolqwery_exportrun_changelist"))
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert "signups" in html
    assert reverse("admin:smolqwery_exportrun_add") not in html
    assert 'name="action"' not in html  # no bulk delete

    assert admin_client.get(reverse("admin:smolqwery_exportrun_add")).status_code == 403
    change_url = reverse("admin:smolqwery_exportrun_change", args=[export_run.pk])
    detail = admin_client.get(change_url)
    assert detail.status_code == 200
    assert "boom" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.post(change_url, {"status": "success"}).status_code == 403
    delete_url = reverse("admin:smolqwery_exportrun_delete", args=[export_run.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    export_run.refresh_from_db()
    assert export_run.status == ExportRun.Status.FAILED


# -- the chart on its own -----------------------------------------------------------------------


def test_bar_chart_heights_are_relative_to_the_peak() -> None:
    day = datetime.date(2026, 1, 1)
    svg = bar_chart(
        [
            (day, 10),
            (day + datetime.timedelta(days=1), 5),
            (day + datetime.timedelta(days=2), None),
        ],
        label="t",
        width=30,
        height=50,
    )
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert heights == [40.0, 20.0, 2.0]  # 50 px minus 10 px for the peak label
    fills = re.findall(r'fill="(#[0-9a-f]+)" data-day', svg)
    assert fills == [BAR_COLOUR, BAR_COLOUR, MISSING_COLOUR]
    assert "max 10 rows" in svg


def test_bar_chart_escapes_text() -> None:
    svg = bar_chart([(datetime.date(2026, 1, 1), 1)], label='<script>alert("x")</script>')
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in svg


def test_bar_chart_without_values() -> None:
    svg = bar_chart([], label="empty")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "no rows" in svg


def test_unique_run_ids_do_not_mix(staff_client: Client, warehouse_path: Path) -> None:
    """Failures shown are those of the latest run only, even when runs interleave tables."""
    latest = uuid.uuid4().hex
    run("earlier", "click", ExportRun.Status.FAILED, 30, "earlier failure")
    run(latest, "click", ExportRun.Status.SUCCESS, 3)
    html = staff_client.get(OVERVIEW).content.decode()
    assert "no failure" in html
    assert "earlier failure" not in html


def test_last_run_still_running(staff_client: Client, warehouse_path: Path) -> None:
    """Running while its process holds the lock (here: this process)."""
    run("live", "signups", ExportRun.Status.SUCCESS, 4)
    run("live", "click", ExportRun.Status.RUNNING, 2)
    lease = acquire(EXPORT_LOCK, owner_id("live"), 600)
    html = staff_client.get(OVERVIEW).content.decode()
    lease.release()
    assert "still running" in html and "interrupted" not in html
    assert "no failure" not in html


def test_last_run_interrupted_when_its_process_is_gone(
    staff_client: Client, warehouse_path: Path
) -> None:
    """Marked running, but no live process holds the lock: killed (a real kill is in
    tests/test_dead_holder.py)."""
    run("dead", "click", ExportRun.Status.RUNNING, 2)
    html = staff_client.get(OVERVIEW).content.decode()
    assert "still running" not in html
    assert re.search(r"<strong[^>]*>interrupted</strong>", html)
    assert re.search(r'class="last-run">\s*interrupted, ', html)
    changelist = staff_client.get(reverse("admin:smolqwery_exportrun_changelist"))
    assert re.search(r'<td class="field-state">interrupted</td>', changelist.content.decode())


def test_unreachable_bigquery_is_a_message_not_a_500(
    staff_client: Client,
    warehouse_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A BigQuery endpoint that refuses connections: retried for the page's short deadline,
    then reported on the page; the tables are still listed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    settings.SMOLQWERY_WAREHOUSE = "bigquery"
    settings.SMOLQWERY_BIGQUERY_ANONYMOUS = True
    settings.SMOLQWERY_BIGQUERY_PROJECT = "admin-test-project"
    settings.SMOLQWERY_BIGQUERY_API_ENDPOINT = f"http://127.0.0.1:{port}"
    settings.SMOLQWERY_STATUS_DEADLINE = 1

    response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"BigQuery dataset admin-test-project.{DATASET}" in html
    message = re.search(r'<li class="error" id="warehouse-error">(.*?)</li>', html, re.S)
    assert message
    assert "read ledger of signups" in message.group(1)
    assert "Connection refused" in message.group(1)
    for table in ("signups", "click", "refund"):
        assert 'class="smolqwery-chart"' not in row_of(html, table)


backoffice = admin.AdminSite(name="backoffice")
backoffice.register(ExportRun, ExportRunAdmin)
urlpatterns = [path("admin/", admin.site.urls), path("backoffice/", backoffice.urls)]


def test_custom_admin_site(staff_client: Client, warehouse_path: Path, settings: Any) -> None:
    """A project's own AdminSite serves the page too, with its links staying in that site."""
    settings.ROOT_URLCONF = __name__
    response = staff_client.get("/backoffice/smolqwery/exportrun/overview/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/backoffice/smolqwery/exportrun/"' in html  # breadcrumbs
    assert "3 days behind" in row_of(html, "click")
