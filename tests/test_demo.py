"""The demo command (``scripts/demo``), run as a newcomer would, in a clean temporary directory.

A copy of ``example_project/`` and ``scripts/demo`` runs in real subprocesses with this test's
interpreter (``SMOLQWERY_DEMO_PYTHON``; setting up .venv is ``scripts/setup-dev``'s business).
The exported warehouse is then checked against the demo's own database, computed
independently here with plain SQL: the running totals, the delta view, the emails, the
contract figures and their digest. In the PostgreSQL pass of the suite the demo runs on a
PostgreSQL database of its own (``SMOLQWERY_DEMO_POSTGRES``), so the example extractors are
checked on both databases.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.source_db]

REPO = Path(__file__).resolve().parent.parent
PARIS = ZoneInfo("Europe/Paris")
DAYS = 12
TABLES = {
    "active_customers",
    "contract_stats",
    "email",
    "signups",
    "signups_delta",
    "signups_month",
    "signups_week",
    "smolqwery_ledger",
    "user",
    "user_delta",
}
METRICS_URL = "http://127.0.0.1:8000/admin/smolqwery/exportrun/metrics/"


ON_POSTGRES = os.environ.get("SMOLQWERY_TEST_DB") == "postgres"
PG_ENV = {
    "PGHOST": os.environ.get("SMOLQWERY_TEST_PG_HOST", "127.0.0.1"),
    "PGPORT": os.environ.get("SMOLQWERY_TEST_PG_PORT", "5432"),
    "PGUSER": os.environ.get("SMOLQWERY_TEST_PG_USER", "postgres"),
}


def _env(pg_name: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMOLQWERY_"))}
    env.update(
        SMOLQWERY_DEMO_PYTHON=sys.executable,
        SMOLQWERY_DEMO_DAYS=str(DAYS),
        PYTHONPATH=str(REPO),  # smolqwery itself, as `pip install -e .` would provide it
    )
    if pg_name:
        env.update(PG_ENV, SMOLQWERY_DEMO_POSTGRES=pg_name)
    return env


def _utc_text(moment: datetime.datetime) -> str:
    """How Django stores an aware datetime in SQLite (UTC, naive text), for comparisons."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class SourceDB:
    """The demo's own database, read with plain SQL (``?`` placeholders, aware datetimes)."""

    def __init__(self, sqlite_path: Path, pg_name: str | None) -> None:
        self.pg_name = pg_name
        if pg_name:
            import psycopg

            self.con: Any = psycopg.connect(dbname=pg_name, autocommit=True, **_pg_kwargs())
        else:
            self.con = sqlite3.connect(sqlite_path)

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.pg_name:
            return list(self.con.execute(sql.replace("?", "%s"), params).fetchall())
        values = [_utc_text(p) if isinstance(p, datetime.datetime) else p for p in params]
        return list(self.con.execute(sql, values).fetchall())

    def one(self, sql: str, *params: Any) -> Any:
        return self.all(sql, *params)[0][0]


def _pg_kwargs() -> dict[str, str]:
    return {"host": PG_ENV["PGHOST"], "port": PG_ENV["PGPORT"], "user": PG_ENV["PGUSER"]}


@pytest.fixture(scope="module")
def pg_name() -> Iterator[str | None]:
    """A fresh PostgreSQL database for the demo in the PostgreSQL pass, else None (SQLite)."""
    if not ON_POSTGRES:
        yield None
        return
    import psycopg

    name = f"smolqwery_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **_pg_kwargs()) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **_pg_kwargs()) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pg_name: str | None) -> Iterator[dict[str, Any]]:
    clone = tmp_path_factory.mktemp("clone")
    shutil.copytree(
        REPO / "example_project",
        clone / "example_project",
        ignore=shutil.ignore_patterns("smolqwery_demo", "__pycache__", "*.sqlite3", "*.duckdb*"),
    )
    (clone / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "demo", clone / "scripts" / "demo")
    today = datetime.datetime.now(PARIS).date()
    result = subprocess.run(
        ["bash", str(clone / "scripts" / "demo")],
        cwd=clone,
        env=_env(pg_name),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    if datetime.datetime.now(PARIS).date() != today:
        pytest.fail("the demo ran across midnight (Europe/Paris); run the test again")
    state = clone / "example_project" / "smolqwery_demo"
    assert (state / "db.sqlite3").exists() is (pg_name is None), "the demo used another database"
    source = SourceDB(state / "db.sqlite3", pg_name)
    try:
        yield {
            "clone": clone,
            "out": result.stdout,
            "err": result.stderr,
            "db": source,
            "pg_name": pg_name,
            "warehouse": state / "warehouse.duckdb",
            "today": today,
            "days": [today - datetime.timedelta(days=DAYS - i) for i in range(DAYS)],
        }
    finally:
        source.con.close()


def _warehouse_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _local_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(day, datetime.time(), PARIS)
    end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), PARIS)
    return start, end


def test_demo_prints_each_step(demo: dict[str, Any]) -> None:
    out = demo["out"]
    steps = [line for line in out.splitlines() if line.startswith("==> python manage.py")]
    assert [s.split()[3] for s in steps] == [
        "migrate",
        "generate_demo_data",
        "smolqwery_make_migrations",
        "migrate",
        "smolqwery_extract",
        "smolqwery_status",
        "show_warehouse",
        "show_warehouse",
    ]
    first, last = demo["days"][0], demo["days"][-1]
    assert f"Demo data from {first} to {last}:" in out
    # The committed smolqwery migration creates the tables; nothing is left to generate.
    assert "Applying shop.0002_smolqwery_contract_stats_email_user... OK" in out
    assert "Applying shop.0003_smolqwery_active_customers_signups... OK" in out
    assert "No smolqwery changes detected" in out
    listing = out.split("==> python manage.py show_warehouse")[1]
    for table in TABLES:
        assert table in listing, table
    assert f"user_delta: {DAYS} rows, last 7" in out
    assert "Traceback" not in out + demo["err"]
    assert out.rstrip().splitlines()[-1] == METRICS_URL, "the demo ends with the Metrics page"


def test_tables_and_views_exist(demo: dict[str, Any]) -> None:
    rows = _warehouse_rows(
        demo["warehouse"],
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop_analytics'",
    )
    assert {r[0] for r in rows} == TABLES


def test_every_day_exported_once(demo: dict[str, Any]) -> None:
    ledger = _warehouse_rows(
        demo["warehouse"],
        "SELECT table_name, day FROM shop_analytics.smolqwery_ledger ORDER BY table_name, day",
    )
    for table in ("active_customers", "contract_stats", "email", "signups", "user"):
        assert [day for name, day in ledger if name == table] == demo["days"], table
    dates = _warehouse_rows(demo["warehouse"], 'SELECT date FROM shop_analytics."user" ORDER BY 1')
    assert [d for (d,) in dates] == demo["days"]


def test_user_totals_and_delta_match_the_database(demo: dict[str, Any]) -> None:
    db = demo["db"]
    exported = dict(
        (d, (users, prospects, clients))
        for d, users, prospects, clients in _warehouse_rows(
            demo["warehouse"], 'SELECT date, users, prospects, clients FROM shop_analytics."user"'
        )
    )
    delta = {
        d: (users, prospects, clients)
        for d, users, prospects, clients in _warehouse_rows(
            demo["warehouse"],
            "SELECT date, users, prospects, clients FROM shop_analytics.user_delta",
        )
    }
    previous = (0, 0, 0)
    for day in demo["days"]:
        start, end = _local_bounds(day)
        users = db.one("SELECT count(*) FROM shop_customer WHERE signed_up_at < ?", end)
        clients = db.one(
            "SELECT count(DISTINCT customer_id) FROM shop_contract WHERE validated_at < ?", end
        )
        with_contract = db.one(
            "SELECT count(DISTINCT customer_id) FROM shop_contract WHERE created_at < ?", end
        )
        signups = db.one(
            "SELECT count(*) FROM shop_customer WHERE signed_up_at >= ? AND signed_up_at < ?",
            start,
            end,
        )
        assert exported[day] == (users, with_contract - clients, clients), day
        expected_delta = tuple(a - b for a, b in zip(exported[day], previous, strict=True))
        assert delta[day] == expected_delta, day
        assert delta[day][0] == signups, day
        previous = exported[day]
    assert previous[0] > DAYS  # a shop with some activity, not an empty export


def test_emails_are_exported_one_row_each(demo: dict[str, Any]) -> None:
    expected = demo["db"].all(
        "SELECT type, count(*) FROM shop_emailmessage GROUP BY type ORDER BY type"
    )
    exported = _warehouse_rows(
        demo["warehouse"], "SELECT type, count(*) FROM shop_analytics.email GROUP BY 1 ORDER BY 1"
    )
    assert exported == expected
    assert {t for t, _ in exported} >= {"welcome", "contract_validated", "newsletter"}
    first_start, _ = _local_bounds(demo["days"][0])
    earliest = _warehouse_rows(demo["warehouse"], "SELECT min(timestamp) FROM shop_analytics.email")
    assert earliest[0][0] >= first_start


def test_contract_stats_match_the_database(demo: dict[str, Any]) -> None:
    db = demo["db"]
    rows = _warehouse_rows(
        demo["warehouse"],
        "SELECT date, validated, revenue, average_value, top_plan, digest "
        "FROM shop_analytics.contract_stats ORDER BY date",
    )
    assert [r[0] for r in rows] == demo["days"]
    for day, validated, revenue, average, top_plan, digest in rows:
        start, end = _local_bounds(day)
        contracts = db.all(
            "SELECT reference, plan, value FROM shop_contract "
            "WHERE validated_at >= ? AND validated_at < ?",
            start,
            end,
        )
        assert validated == len(contracts), day
        values = [Decimal(str(v)) for _, _, v in contracts]
        assert revenue == sum(values, Decimal(0)), day
        if contracts:
            assert average == (sum(values) / len(values)).quantize(Decimal("0.01")), day
            assert top_plan in {p for _, p, _ in contracts}
        else:
            assert (average, top_plan) == (None, None), day  # Optional columns: NULL
        references = "\n".join(sorted(r for r, _, _ in contracts))
        assert bytes(digest) == hashlib.sha256(references.encode()).digest(), day
    assert sum(r[1] for r in rows) > 0


def test_second_extract_exports_nothing(demo: dict[str, Any]) -> None:
    before = _warehouse_rows(
        demo["warehouse"],
        "SELECT table_name, count(*), sum(rows) FROM shop_analytics.smolqwery_ledger GROUP BY 1",
    )
    env = _env(demo["pg_name"])
    env["SMOLQWERY_DEMO_DIR"] = str(demo["warehouse"].parent)
    result = subprocess.run(
        [sys.executable, "manage.py", "smolqwery_extract"],
        cwd=demo["clone"] / "example_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    after = _warehouse_rows(
        demo["warehouse"],
        "SELECT table_name, count(*), sum(rows) FROM shop_analytics.smolqwery_ledger GROUP BY 1",
    )
    assert sorted(after) == sorted(before)
    emails = _warehouse_rows(demo["warehouse"], "SELECT count(*) FROM shop_analytics.email")
    assert emails[0][0] == dict((t, r) for t, _, r in before)["email"]


METRICS_SCRIPT = """
import json
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
client = Client()
client.force_login(User.objects.create_superuser("demo-admin", "a@example.com", None))
out = {}
for period in ("day", "week", "month"):
    response = client.get("/admin/smolqwery/exportrun/metrics/", {"period": period})
    assert response.status_code == 200, response.status_code
    page = response.context["page"]
    assert not page.error, page.error
    out[period] = {
        c.spec.key: [[d.isoformat() for d in c.data.labels], c.data.values] for c in page.charts
    }
print("METRICS" + json.dumps(out))
"""


def test_metrics_page_shows_signups_and_active_customers(demo: dict[str, Any]) -> None:
    """The page the demo's last line names: sign-ups per day, ISO week and month, and active
    customers, as the demo's database counts them."""
    env = _env(demo["pg_name"])
    env["SMOLQWERY_DEMO_DIR"] = str(demo["warehouse"].parent)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", METRICS_SCRIPT],
        cwd=demo["clone"] / "example_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shown = json.loads(result.stdout.split("METRICS", 1)[1])
    db, days = demo["db"], demo["days"]

    def signups(first: datetime.date, last: datetime.date) -> int:
        start, _ = _local_bounds(max(first, days[0]))
        _, end = _local_bounds(min(last, days[-1]))
        return int(
            db.one(
                "SELECT count(*) FROM shop_customer WHERE signed_up_at >= ? AND signed_up_at < ?",
                start,
                end,
            )
        )

    labels, (per_day,) = shown["day"]["signups"]
    assert labels == [d.isoformat() for d in days]
    assert per_day == [signups(d, d) for d in days]
    for period, step in (("week", 7), ("month", None)):
        labels, (counts,) = shown[period]["signups"]
        starts = [datetime.date.fromisoformat(label) for label in labels]
        ends = [b - datetime.timedelta(days=1) for b in starts[1:]] + [days[-1]]
        assert counts == [signups(a, b) for a, b in zip(starts, ends, strict=True)], period
        assert sum(counts) == sum(per_day)
        if step:
            assert all(s.weekday() == 0 for s in starts)
        else:
            assert all(s.day == 1 for s in starts)
    labels, (dau, wau, mau) = shown["day"]["active_customers"]
    for day, value in zip(days, dau, strict=True):
        start, end = _local_bounds(day)
        expected = db.one(
            "SELECT count(DISTINCT customer_id) FROM shop_contract "
            "WHERE created_at >= ? AND created_at < ?",
            start,
            end,
        )
        assert value == expected, day
    assert max(mau) >= max(wau) >= max(dau) > 0
