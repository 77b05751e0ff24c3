"""smolqwery's migration operations, the 0.1.3 ``Coconut``, and the migration-state diff.

Operations run in this process against the ``warehouse`` fixtures (DuckDB and the emulator),
with the settings pointed at the same warehouse and ``SMOLQWERY_MIGRATE_IN_TESTS = True``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState
from django.db.migrations.writer import MigrationWriter
from django.test import utils as test_utils

import smolqwery.operations
from smolqwery.compat import Coconut, legacy_table_schema
from smolqwery.errors import (
    ConfigurationError,
    SchemaError,
    SchemaMismatchError,
    TableChangedError,
    WarehouseMigrationError,
)
from smolqwery.extractor import ExtractorType
from smolqwery.migration_diff import plan_changes
from smolqwery.migration_state import LEGACY_VIEW_KIND, state_from_migrations
from smolqwery.operations import (
    CreateWarehouseTable,
    CreateWarehouseView,
    EnsureDataset,
    RebuildWarehouseTable,
    WarehouseOperation,
    in_test_environment,
)
from smolqwery.schema import Column, TableSchema
from smolqwery.warehouses.base import Warehouse

USER = TableSchema(
    name="user",
    columns=(
        Column("date", "DATE", "REQUIRED", "Day the row describes"),
        Column("users", "INT64", "REQUIRED", differentiate=True),
        Column("name", "STRING", "NULLABLE"),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
)
EMAIL = TableSchema(
    name="email",
    columns=(Column("timestamp", "TIMESTAMP"), Column("type", "STRING")),
    kind=ExtractorType.individual_rows,
    date_column="timestamp",
)
LEGACY_USER: dict[str, Any] = {
    "regular_fields": [
        {"name": "date", "type": "DATE", "nullable": False},
        {"name": "users", "type": "INT64", "nullable": False},
        {"name": "name", "type": "STRING", "nullable": True},
    ],
    "delta_fields": {"users"},
    "table_name": "user",
}


# Warehouse operations read smolqwery's record of the warehouse settings (issue 14).
pytestmark = pytest.mark.django_db


@pytest.fixture
def wh(warehouse: Warehouse, settings: Any, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """The ``warehouse`` fixture, with Django settings pointing at it."""
    settings.SMOLQWERY_MIGRATE_IN_TESTS = True
    settings.SMOLQWERY_DATASET = warehouse.dataset
    if warehouse.vendor == "duckdb":
        settings.SMOLQWERY_WAREHOUSE = "duckdb"
        settings.SMOLQWERY_DUCKDB_PATH = str(warehouse.path)  # type: ignore[attr-defined]
    else:
        emulator = request.getfixturevalue("bigquery_emulator")
        for key, value in emulator.settings(warehouse.dataset).items():
            setattr(settings, key, value)
    yield warehouse


def forwards(op: Any, alias: str = "default") -> None:
    from django.db import connections

    op.database_forwards(
        "migapp", connections[alias].schema_editor(), ProjectState(), ProjectState()
    )


def backwards(op: Any) -> None:
    op.database_backwards("migapp", connection.schema_editor(), ProjectState(), ProjectState())


# -- serialisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        EnsureDataset(),
        CreateWarehouseTable(table=USER.to_dict()),
        CreateWarehouseView(name="user_delta", kind="delta", table=USER.to_dict()),
        RebuildWarehouseTable(table=USER.to_dict(), previous=legacy_table_schema(LEGACY_USER)),
    ],
)
def test_operations_serialise_to_plain_literals_and_back(op: WarehouseOperation) -> None:
    text, imports = MigrationWriter.serialize(op)
    assert imports == {"import smolqwery.operations"}
    assert "TableSchema" not in text and "Column(" not in text
    rebuilt = eval(text, {"smolqwery": smolqwery})
    assert type(rebuilt) is type(op)
    assert rebuilt.deconstruct() == op.deconstruct()
    assert op.reversible and not op.reduces_to_sql


def test_operations_accept_a_table_schema_and_keep_its_literal() -> None:
    op = CreateWarehouseTable(table=USER)
    assert op.table == USER.to_dict()
    assert op.schema == USER
    assert op.describe() == "Create warehouse table user"
    assert op.migration_name_fragment == "smolqwery_user"
    view = CreateWarehouseView(name="user_delta", kind="delta", table=USER)
    assert view.describe() == "Create warehouse delta view user_delta"
    with pytest.raises(ValueError, match="unknown view kind"):
        CreateWarehouseView(name="user_year", kind="year", table=USER)


def test_operations_leave_the_django_model_state_alone() -> None:
    state = ProjectState()
    before = dict(state.models)
    for op in (EnsureDataset(), CreateWarehouseTable(table=USER)):
        op.state_forwards("migapp", state)
    assert state.models == before


# -- where they apply ------------------------------------------------------------------------


def test_d13_test_environment_is_detected_without_mail_outbox() -> None:
    assert in_test_environment()  # pytest-django called setup_test_environment()
    saved = mail.outbox
    del mail.outbox
    try:
        assert in_test_environment()
    finally:
        mail.outbox = saved
    test_utils.teardown_test_environment()
    try:
        mail.outbox = []  # a production locmem backend leaves this behind
        assert not in_test_environment()
    finally:
        test_utils.setup_test_environment()


def test_d13_skipped_in_a_test_run_unless_asked(
    settings: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "w.duckdb")
    settings.SMOLQWERY_MIGRATE_IN_TESTS = False
    with caplog.at_level(logging.INFO, logger="smolqwery.migrations"):
        forwards(CreateWarehouseTable(table=EMAIL))
    assert not (tmp_path / "w.duckdb").exists()
    assert "skipped in a test run" in caplog.text and "SMOLQWERY_MIGRATE_IN_TESTS" in caplog.text
    settings.SMOLQWERY_MIGRATE_IN_TESTS = True
    forwards(EnsureDataset())
    forwards(CreateWarehouseTable(table=EMAIL))
    assert (tmp_path / "w.duckdb").exists()


def test_d13_test_databases_are_created_even_with_invalid_warehouse_settings(
    settings: Any,
) -> None:
    settings.SMOLQWERY_WAREHOUSE = "nonsense"
    settings.SMOLQWERY_MIGRATE_IN_TESTS = False
    forwards(CreateWarehouseTable(table=EMAIL))  # skipped before the settings are read
    settings.SMOLQWERY_MIGRATE_IN_TESTS = True
    with pytest.raises(ConfigurationError, match="SMOLQWERY_WAREHOUSE"):
        forwards(CreateWarehouseTable(table=EMAIL))


def test_only_the_configured_alias_touches_the_warehouse(settings: Any, tmp_path: Any) -> None:
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = str(tmp_path / "w.duckdb")
    settings.SMOLQWERY_MIGRATE_IN_TESTS = True
    settings.SMOLQWERY_DATABASE_ALIAS = "analytics"
    forwards(EnsureDataset(), alias="default")
    assert not (tmp_path / "w.duckdb").exists()


# -- against each warehouse ------------------------------------------------------------------


def test_d10_forwards_are_idempotent(wh: Warehouse) -> None:
    ops = [
        EnsureDataset(),
        CreateWarehouseTable(table=USER),
        CreateWarehouseView(name="user_delta", kind="delta", table=USER),
    ]
    for _ in range(2):
        for op in ops:
            forwards(op)
    assert {"user", "user_delta"} <= set(wh.list_tables())
    columns = wh.get_table_columns("user")
    assert columns is not None and [c.name for c in columns] == ["date", "users", "name"]


def test_d10_a_different_existing_table_is_an_error_listing_differences(wh: Warehouse) -> None:
    forwards(EnsureDataset())
    forwards(CreateWarehouseTable(table=EMAIL))
    changed = TableSchema(
        "email",
        (Column("timestamp", "TIMESTAMP"), Column("type", "INT64"), Column("to", "STRING")),
        ExtractorType.individual_rows,
        "timestamp",
    )
    with pytest.raises(WarehouseMigrationError) as info:
        forwards(CreateWarehouseTable(table=changed))
    # What migrate prints: the operation, then the cause's message; the cause stays chained.
    assert str(info.value).startswith("Create warehouse table email: table ")
    assert "'type'" in str(info.value) and "'to'" in str(info.value)
    assert isinstance(info.value.__cause__, SchemaMismatchError)


def test_d12_backwards_keeps_tables_unless_allowed(
    wh: Warehouse, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    table = CreateWarehouseTable(table=USER)
    view = CreateWarehouseView(name="user_delta", kind="delta", table=USER)
    for op in (EnsureDataset(), table, view):
        forwards(op)
    with caplog.at_level(logging.WARNING, logger="smolqwery.migrations"):
        backwards(view)
        backwards(table)
        backwards(EnsureDataset())
    assert "left in place" in caplog.text
    assert "user" in wh.list_tables() and "user_delta" not in wh.list_tables()
    settings.SMOLQWERY_ALLOW_DROP = True
    backwards(table)
    assert "user" not in wh.list_tables()


def test_d11_ensure_dataset_reconciles_an_existing_dataset(
    bigquery_warehouse: Warehouse, settings: Any, request: pytest.FixtureRequest
) -> None:
    emulator = request.getfixturevalue("bigquery_emulator")
    for key, value in emulator.settings(bigquery_warehouse.dataset).items():
        setattr(settings, key, value)
    settings.SMOLQWERY_MIGRATE_IN_TESTS = True
    settings.SMOLQWERY_DATASET_LABELS = {"team": "data"}
    settings.SMOLQWERY_ACL_GROUPS = ["analysts@example.com"]
    client = emulator.client()
    ref = f"{emulator.project}.{bigquery_warehouse.dataset}"
    before = client.get_dataset(ref)
    default_entries = [e for e in before.access_entries if e.entity_type != "groupByEmail"]
    # The dataset exists already (the fixture ensured it): its settings are applied anyway.
    forwards(EnsureDataset())
    after = client.get_dataset(ref)
    assert after.labels.get("team") == "data"
    groups = [e.entity_id for e in after.access_entries if e.entity_type == "groupByEmail"]
    assert groups == ["analysts@example.com"]
    # BigQuery's default access is kept (0.1.3 replaced it).
    for entry in default_entries:
        assert entry in after.access_entries


# -- 0.1.3 Coconut -------------------------------------------------------------------------


def test_legacy_schema_inference() -> None:
    user = legacy_table_schema(LEGACY_USER)
    assert user.kind is ExtractorType.date_aggregated and user.date_column == "date"
    assert [c.name for c in user.differentiated] == ["users"]
    assert user.column("name").mode == "NULLABLE"
    email = legacy_table_schema(
        {
            "regular_fields": [
                {"name": "type", "type": "STRING", "nullable": False},
                {"name": "timestamp", "type": "DATE", "nullable": False},
            ],
            "delta_fields": set(),
            "table_name": "email",
        }
    )
    assert email.kind is ExtractorType.individual_rows and email.date_column == "timestamp"
    sent = legacy_table_schema(
        {
            "regular_fields": [{"name": "sent_at", "type": "TIMESTAMP", "nullable": False}],
            "delta_fields": set(),
            "table_name": "sent",
        }
    )
    assert sent.date_column == "sent_at"
    with pytest.raises(SchemaError, match="no DATE or TIMESTAMP"):
        legacy_table_schema({"regular_fields": [{"name": "n", "type": "INT64"}], "table_name": "t"})


def test_coconut_forward_is_idempotent_and_backward_keeps_tables(wh: Warehouse) -> None:
    coconut = Coconut([LEGACY_USER], settings=object())
    editor = connection.schema_editor()
    coconut.forward(None, editor)  # type: ignore[arg-type]
    coconut.forward(None, editor)  # type: ignore[arg-type]
    assert {"user", "user_delta"} <= set(wh.list_tables())
    coconut.backward(None, editor)  # type: ignore[arg-type]
    assert "user" in wh.list_tables() and "user_delta" not in wh.list_tables()


# -- state and diff ----------------------------------------------------------------------


def _migration(name: str, operations: list[Any], coconut: Coconut | None = None) -> Migration:
    attrs: dict[str, Any] = {"operations": operations}
    if coconut is not None:
        attrs["coconut"] = coconut
    cls = type("Migration", (Migration,), attrs)
    return cls(name, "migapp")


def test_state_is_rebuilt_from_operations_and_coconuts() -> None:
    state = state_from_migrations(
        [
            _migration("0001_legacy", [], Coconut([LEGACY_USER])),
            _migration("0002_email", [EnsureDataset(), CreateWarehouseTable(table=EMAIL)]),
        ]
    )
    assert sorted(state.tables) == ["email", "user"]
    assert state.tables["user"].legacy and not state.tables["email"].legacy
    assert state.views["user_delta"].kind == LEGACY_VIEW_KIND
    assert state.origins == [("migapp", "0001_legacy"), ("migapp", "0002_email")]
    # The legacy delta view is replaced once; then the state is up to date.
    plan = plan_changes(state, [EMAIL, USER])
    assert [type(op).__name__ for op in plan.operations] == [
        "EnsureDataset",
        "CreateWarehouseView",
    ]
    state = state_from_migrations(
        [
            _migration("0001_legacy", [], Coconut([LEGACY_USER])),
            _migration("0002_email", [CreateWarehouseTable(table=EMAIL)]),
            _migration("0003_view", plan.operations),
        ]
    )
    assert plan_changes(state, [EMAIL, USER]).empty


def test_descriptions_alone_do_not_make_a_migration() -> None:
    state = state_from_migrations(
        [
            _migration(
                "0001",
                [
                    CreateWarehouseTable(table=USER),
                    CreateWarehouseView(name="user_delta", kind="delta", table=USER),
                ],
            )
        ]
    )
    described = TableSchema(
        USER.name,
        tuple(Column(c.name, c.type, c.mode, "new words", c.differentiate) for c in USER.columns),
        USER.kind,
        USER.date_column,
        description="A new description",
    )
    assert plan_changes(state, [described]).empty


def test_changed_kind_date_column_and_differentiation_are_refused() -> None:
    state = state_from_migrations([_migration("0001", [CreateWarehouseTable(table=USER)])])
    changed = TableSchema(
        "user",
        (Column("date", "DATE"), Column("users", "INT64"), Column("name", "STRING", "NULLABLE")),
        ExtractorType.individual_rows,
        "date",
        clustering=("name",),
    )
    with pytest.raises(TableChangedError) as info:
        plan_changes(state, [changed])
    message = str(info.value)
    assert "column 'users' is no longer differentiated" in message
    assert "kind changed from date_aggregated to individual_rows" in message
    assert "clustering changed from [] to ['name']" in message
    assert "'user2'" in message
