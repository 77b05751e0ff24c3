"""``manage.py migrate`` (real processes) applying generated migrations to DuckDB and BigQuery.

BigQuery runs against the local emulator. Each test has its own run directory (SQLite
databases, DuckDB file, generated migrations) and, on the emulator, its own dataset.
"""

from __future__ import annotations

import dataclasses
import datetime
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smolqwery.extractor import ExtractorType
from smolqwery.schema import Column, TableSchema
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows

from .fixtures.warehouses import make_batch
from .migapp.harness import Project

pytestmark = pytest.mark.source_db

EXPECTED = ["email", "smolqwery_ledger", "user", "user_delta"]


@dataclasses.dataclass
class Target:
    """Where the project's warehouse lives, and how the test looks at it."""

    name: str
    env: dict[str, str]
    open: Callable[[Project], Warehouse]
    emulator: Any = None


@pytest.fixture(params=["duckdb", "bigquery"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "duckdb":
        return Target("duckdb", {}, Project.duckdb)
    emulator = request.getfixturevalue("bigquery_emulator")
    env = {
        "SQ_WAREHOUSE": "bigquery",
        "SQ_BQ_ENDPOINT": emulator.endpoint,
        "SQ_BQ_PROJECT": emulator.project,
    }
    return Target("bigquery", env, lambda p: emulator.warehouse(p.dataset), emulator)


@pytest.fixture
def project(tmp_path: Path, target: Target) -> Project:
    proj = Project(tmp_path / "run", dataset=f"mig_{uuid.uuid4().hex[:10]}", env=dict(target.env))
    proj.make_migrations()
    return proj


def _tables(target: Target, project: Project) -> list[str]:
    """The dataset's tables; per-table ledgers (BigQuery) shown as the one ``smolqwery_ledger``
    a shared ledger is, and checked to belong to a table that is there."""
    with target.open(project) as wh:
        return _as_shared_ledger(wh, wh.list_tables())


def _as_shared_ledger(wh: Warehouse, names: list[str]) -> list[str]:
    if not wh.ops.capabilities.ledger_per_table:
        return names
    prefix = "smolqwery_ledger_"
    tables = [n for n in names if not n.startswith(prefix)]
    assert all(n[len(prefix) :] in tables for n in names if n.startswith(prefix)), names
    return sorted({*tables, "smolqwery_ledger"})


def test_migrate_creates_dataset_partitioned_tables_and_views(
    project: Project, target: Target
) -> None:
    proc = project.manage("migrate")
    assert "Applying migapp.0001_smolqwery_email_user... OK" in proc.stdout
    with target.open(project) as wh:
        assert _as_shared_ledger(wh, wh.list_tables()) == EXPECTED
        columns = wh.get_table_columns("user")
        assert columns is not None
        assert [(c.name, c.type, c.mode) for c in columns] == [
            ("date", "DATE", "REQUIRED"),
            ("users", "INT64", "REQUIRED"),
            ("prospects", "INT64", "REQUIRED"),
            ("clients", "INT64", "REQUIRED"),
        ]
        email = wh.get_table_columns("email")
        assert email is not None and [(c.name, c.type) for c in email] == [
            ("timestamp", "TIMESTAMP"),
            ("type", "STRING"),
        ]
        # The view works on the warehouse it was rendered for.
        user = TableSchema.from_dict(
            {
                "name": "user",
                "kind": "date_aggregated",
                "date_column": "date",
                "columns": [c.to_dict() for c in columns],
            }
        )
        day = datetime.date(2022, 1, 1)
        rows = [
            {"date": day + datetime.timedelta(days=i), "users": n, "prospects": 0, "clients": 0}
            for i, n in enumerate([10, 20, 35])
        ]
        wh.replace_days(make_batch(user, day, day + datetime.timedelta(days=2), rows))
        assert [r["users"] for r in fetch_rows(wh, "user_delta", order_by=["date"])] == [10, 10, 15]
    if target.emulator is not None:
        client = target.emulator.client()
        for name, field in (("user", "date"), ("email", "timestamp")):
            table = client.get_table(f"{target.emulator.project}.{project.dataset}.{name}")
            assert table.time_partitioning is not None
            assert table.time_partitioning.field == field
        view = client.get_table(f"{target.emulator.project}.{project.dataset}.user_delta")
        assert view.table_type == "VIEW" and "LAG(" in view.view_query
        dataset = client.get_dataset(f"{target.emulator.project}.{project.dataset}")
        assert dataset.labels == {"env": "test"}


def test_d10_migrate_again_against_identical_tables_does_nothing(
    project: Project, target: Target
) -> None:
    project.manage("migrate")
    # The migration is forgotten by Django (a failure after the tables were made, a new
    # database...): applying it again meets the existing tables and succeeds.
    project.manage("migrate", "migapp", "zero", "--fake")
    proc = project.manage("migrate")
    assert "exists already, unchanged" in proc.stderr
    assert _tables(target, project) == EXPECTED


def test_d10_existing_table_with_another_layout_is_an_error(
    project: Project, target: Target
) -> None:
    other = TableSchema(
        "email",
        (Column("timestamp", "TIMESTAMP"), Column("kind", "STRING")),
        ExtractorType.individual_rows,
        "timestamp",
    )
    with target.open(project) as wh:
        wh.ensure_dataset()
        wh.create_table(other)
    proc = project.manage("migrate", ok=False)
    assert proc.returncode != 0
    # The message alone, naming the operation, not a traceback through Django's executor.
    assert "WarehouseMigrationError: Create warehouse table email" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "'type'" in proc.stderr and "'kind'" in proc.stderr
    # Not recorded as applied: fixing the table and migrating again works.
    shown = project.manage("showmigrations", "migapp").stdout
    assert "[ ] 0001_smolqwery_email_user" in shown


def test_migrate_says_who_holds_the_duckdb_file_then_fails_without_a_traceback(
    tmp_path: Path,
) -> None:
    """Another process (a notebook, a BI tool) holds the file: migrate says so after 2 s, waits
    SMOLQWERY_RETRY_DEADLINE, then fails with the message alone."""
    import subprocess
    import sys

    project = Project(tmp_path / "run", env={"SQ_RETRY_DEADLINE": "3"})
    project.make_migrations()
    path = project.run_dir / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        proc = project.manage("migrate", ok=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    assert f"is held by another process (PID {holder.pid}: " in proc.stderr, proc.stderr
    assert "WarehouseMigrationError: Ensure the smolqwery warehouse dataset: " in proc.stderr
    assert "gave up after 3 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Nothing recorded as applied: migrating again once the file is free works.
    project.manage("migrate")
    assert "[X] 0001_smolqwery" in project.manage("showmigrations", "migapp").stdout


def test_d12_reversing_keeps_tables_unless_allowed(project: Project, target: Target) -> None:
    project.manage("migrate")
    proc = project.manage("migrate", "migapp", "zero")
    assert "left in place with its exported data" in proc.stderr
    assert "SMOLQWERY_ALLOW_DROP" in proc.stderr
    # The tables (and their data) stay; only the view, which holds no data, is dropped.
    assert _tables(target, project) == ["email", "smolqwery_ledger", "user"]
    project.manage("migrate")
    assert _tables(target, project) == EXPECTED
    project.manage("migrate", "migapp", "zero", env={"SQ_ALLOW_DROP": "1"})
    assert _tables(target, project) == ["smolqwery_ledger"]


def test_applied_once_on_the_configured_alias(project: Project, target: Target) -> None:
    """``migrate --database other`` records the migration there without touching the warehouse."""
    proc = project.manage("migrate", "--database", "other", "-v", "2")
    assert "Applying migapp.0001_smolqwery_email_user... OK" in proc.stdout
    if target.name == "duckdb":
        assert not (project.run_dir / "warehouse.duckdb").exists()
    else:
        assert project.dataset not in [
            d.dataset_id for d in target.emulator.client().list_datasets()
        ]
    project.manage("migrate")
    assert _tables(target, project) == EXPECTED


def test_d11_every_migrate_reconciles_the_dataset(project: Project, target: Target) -> None:
    proc = project.manage("migrate")
    assert "reconciled" not in proc.stderr  # the migration's EnsureDataset just did it
    proc = project.manage(
        "migrate",
        env={"SQ_LABELS": '{"env": "prod", "team": "data"}', "SQ_ACL_GROUPS": "bi@example.com"},
    )
    assert "No migrations to apply" in proc.stdout
    assert "reconciled with the settings" in proc.stderr
    if target.emulator is not None:
        client = target.emulator.client()
        dataset = client.get_dataset(f"{target.emulator.project}.{project.dataset}")
        assert dataset.labels == {"env": "prod", "team": "data"}
        groups = [e.entity_id for e in dataset.access_entries if e.entity_type == "groupByEmail"]
        assert groups == ["bi@example.com"]
    # Not on another database alias.
    proc = project.manage("migrate", "--database", "other")
    assert "reconciled" not in proc.stderr


def test_migrate_with_nothing_to_apply_leaves_the_warehouse_alone(
    project: Project, target: Target
) -> None:
    """Same settings, nothing to apply: the warehouse is not opened (issue 13), so a deploy's
    migrate neither needs it nor waits for it. Here it could not: on DuckDB the file is gone
    (opening would create it), on BigQuery the endpoint accepts connections and never answers
    (opening would hang)."""
    import socket

    project.manage("migrate")
    if target.name == "duckdb":
        (project.run_dir / "warehouse.duckdb").unlink()
        proc = project.manage("migrate", "-v", "2")
        assert not (project.run_dir / "warehouse.duckdb").exists()
    else:
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
            proc = project.manage("migrate", "-v", "2", env={"SQ_BQ_ENDPOINT": endpoint})
    assert "No migrations to apply" in proc.stdout
    assert "reconciled" not in proc.stderr
    # Changed dataset settings still reach the warehouse, once.
    labels = {"SQ_LABELS": '{"env": "prod"}'}
    assert "reconciled with the settings" in project.manage("migrate", env=labels).stderr
    assert "reconciled" not in project.manage("migrate", env=labels).stderr


def test_no_warehouse_migrations_no_reconciliation(tmp_path: Path, target: Target) -> None:
    """A project with smolqwery installed but no warehouse migration: migrate touches nothing."""
    project = Project(tmp_path / "bare", extractors=(), env=dict(target.env))
    (project.migrations_dir / "0001_initial.py").write_text(
        "import smolqwery.operations\nfrom django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n    operations = []\n"
    )
    proc = project.manage("migrate")
    assert "reconciled" not in proc.stderr
    if target.name == "duckdb":
        assert not (project.run_dir / "warehouse.duckdb").exists()
    else:
        datasets = [d.dataset_id for d in target.emulator.client().list_datasets()]
        assert project.dataset not in datasets


def test_d13_locmem_mail_outbox_does_not_skip_migrations(project: Project, target: Target) -> None:
    """0.1.3 skipped the warehouse whenever ``mail.outbox`` existed, as in production here."""
    project.manage("migrate", env={"SQ_LOCMEM_OUTBOX": "1"})
    assert _tables(target, project) == EXPECTED


DJANGO_SUITE = textwrap.dedent(
    """\
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder
    from django.test import TestCase


    class MigratedTest(TestCase):
        def test_migrations_were_applied_to_the_test_database(self):
            applied = MigrationRecorder(connection).applied_migrations()
            self.assertIn(("migapp", "0001_smolqwery_email_user"), applied)
    """
)

PYTEST_SUITE = textwrap.dedent(
    """\
    import pytest
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder


    @pytest.mark.django_db
    def test_migrations_were_applied_to_the_test_database():
        applied = MigrationRecorder(connection).applied_migrations()
        assert ("migapp", "0001_smolqwery_email_user") in applied
    """
)


def test_d13_test_runs_never_touch_the_warehouse(project: Project, target: Target) -> None:
    """``manage.py test`` and pytest-django apply migrations to test databases only."""
    (project.run_dir / "suite_django.py").write_text(DJANGO_SUITE)
    proc = project.manage("test", "suite_django", "-v", "2")
    assert "Ran 1 test" in proc.stderr and "OK" in proc.stderr
    assert "skipped in a test run" in proc.stderr

    (project.run_dir / "test_suite_pytest.py").write_text(PYTEST_SUITE)
    (project.run_dir / "pytest.ini").write_text("[pytest]\n")
    proc = project.manage(
        "-p",
        "pytest_django",
        "-p",
        "no:cacheprovider",
        "--ds",
        "tests.migapp.settings",
        "--create-db",
        "-q",
        "test_suite_pytest.py",
        module=("-m", "pytest"),
    )
    assert "1 passed" in proc.stdout

    if target.name == "duckdb":
        assert not (project.run_dir / "warehouse.duckdb").exists()
    else:
        datasets = [d.dataset_id for d in target.emulator.client().list_datasets()]
        assert project.dataset not in datasets
    # The switch our own suite uses: the same test run does apply them.
    proc = project.manage("test", "suite_django", env={"SQ_MIGRATE_IN_TESTS": "1"})
    assert _tables(target, project) == EXPECTED
