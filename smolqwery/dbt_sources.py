"""A dbt ``sources.yml`` describing the export tables, for ``manage.py smolqwery_dbt_sources``.

One dbt source (the dataset, or the DuckDB file's schema) with every export table, its views
and the ledger: names, column types and descriptions as the extractors declare them, and
freshness read from the ledger. dbt's ``loaded_at_query`` (dbt 1.10 and later) asks the ledger
when an export last wrote each table, so ``dbt source freshness`` measures the exports, not the
data's own dates; ``--loaded-at-field`` writes the older ``loaded_at_field`` form instead (the
table's date column). The file is YAML written here without a YAML library: every string is a
JSON string, which YAML reads as the same string.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .identifiers import validate_table_name
from .sql_views import views_of
from .vocabulary import ExtractorType
from .warehouses.base import LEDGER_COLUMNS, LEDGER_TABLE, ledger_table_name

if TYPE_CHECKING:
    from .schema import TableSchema
    from .warehouses.base import LedgerEntry
    from .warehouses.ops import BaseOperations


@dataclasses.dataclass(frozen=True)
class Freshness:
    """``dbt source freshness`` thresholds, in hours since the table's last export."""

    warn_hours: int = 36
    error_hours: int = 72
    #: Write ``loaded_at_field`` (the date column) instead of the ledger's ``loaded_at_query``.
    loaded_at_field: bool = False


def data_type(ops: BaseOperations, column_type: str) -> str:
    """The column's type as dbt's ``data_type`` names it: the warehouse's own, in lower case
    (``int64`` on BigQuery, ``bigint`` on DuckDB)."""
    return ops.db_type(column_type).lower()


def table_entry(
    table: TableSchema,
    ops: BaseOperations,
    ledger: dict[datetime.date, LedgerEntry],
    ledger_ref: str,
    freshness: Freshness,
) -> dict[str, Any]:
    """The source table of one export table."""
    name = validate_table_name(table.name)
    entry: dict[str, Any] = {"name": name}
    if table.description:
        entry["description"] = table.description
    days = sorted(ledger)
    entry["meta"] = {
        "smolqwery": {
            "kind": table.kind.value,
            "date_column": table.date_column,
            "first_day": days[0].isoformat() if days else None,
            "last_day": days[-1].isoformat() if days else None,
            "exported_days": len(days),
            "last_export": max((e.exported_at for e in ledger.values()), default=None),
        }
    }
    if freshness.loaded_at_field:
        date = ops.column(table.date_column)
        entry["config"] = {
            "loaded_at_field": (
                date
                if table.kind is ExtractorType.individual_rows and table.date_column_type != "DATE"
                else f"CAST({date} AS TIMESTAMP)"
            )
        }
    else:
        # The name is validated ([A-Za-z0-9_]): quoting it as a string literal is safe, and
        # dbt runs this text itself (no parameters there).
        entry["config"] = {
            "loaded_at_query": (
                f"SELECT MAX({ops.column('exported_at')}) FROM {ledger_ref} "
                f"WHERE {ops.column('table_name')} = '{name}'"
            )
        }
    entry["columns"] = [
        {
            "name": c.name,
            **({"description": c.description} if c.description else {}),
            "data_type": data_type(ops, c.type),
            **({"data_tests": ["not_null"]} if c.mode == "REQUIRED" else {}),
        }
        for c in table.columns
    ]
    return entry


def view_entries(table: TableSchema) -> list[dict[str, Any]]:
    """The table's views (``_delta``, ``_week``…): sources too, without freshness."""
    return [
        {
            "name": view,
            "description": f"{kind} view of {table.name} (smolqwery, derived, never stored)",
            "config": {"freshness": None},
        }
        for view, kind in views_of(table)
    ]


def build_sources(
    ops: BaseOperations,
    label: str,
    dataset: str,
    tables: Iterable[TableSchema],
    ledgers: dict[str, dict[datetime.date, LedgerEntry]],
    *,
    database: str | None,
    source_name: str,
    freshness: Freshness,
) -> dict[str, Any]:
    """The whole ``sources.yml`` document as plain data."""
    entries: list[dict[str, Any]] = []
    ledger_names: list[str] = []
    for table in tables:
        # A ledger per table on backends keeping one (BigQuery), else the shared one.
        ledger = (
            ledger_table_name(table.name) if ops.capabilities.ledger_per_table else LEDGER_TABLE
        )
        if ledger not in ledger_names:
            ledger_names.append(ledger)
        qualified = [database, dataset, ledger] if database else [dataset, ledger]
        ledger_ref = ".".join(ops.quote_name(part) for part in qualified)
        entries.append(table_entry(table, ops, ledgers.get(table.name, {}), ledger_ref, freshness))
        entries.extend(view_entries(table))
    for ledger in ledger_names or [LEDGER_TABLE]:
        entries.append(
            {
                "name": ledger,
                "description": (
                    "smolqwery's ledger: one row per exported day of "
                    + ("each table" if ledger == LEDGER_TABLE else "the table")
                ),
                "config": {"loaded_at_field": "exported_at"},
                "columns": [
                    {
                        "name": c.name,
                        "description": c.description,
                        "data_type": data_type(ops, c.type),
                    }
                    for c in LEDGER_COLUMNS
                ],
            }
        )
    source: dict[str, Any] = {
        "name": source_name,
        "description": (
            f"Daily exports of the Django project by smolqwery ({label}); days end at "
            "midnight in the project's TIME_ZONE. Written by manage.py smolqwery_dbt_sources."
        ),
    }
    if database:
        source["database"] = database
    source["schema"] = dataset
    source["quoting"] = {"identifier": True}
    source["config"] = {
        "freshness": {
            "warn_after": {"count": freshness.warn_hours, "period": "hour"},
            "error_after": {"count": freshness.error_hours, "period": "hour"},
        }
    }
    source["tables"] = entries
    return {"version": 2, "sources": [source]}


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML of plain data (dicts, lists, strings, numbers, None): block style, JSON scalars."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for name, item in value.items():
            key = name if _PLAIN_KEY.fullmatch(name) and name not in _YAML_WORDS else to_yaml(name)
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {to_yaml(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        lines = []
        for item in value:
            text = to_yaml(item, indent + 1)
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}- {text.lstrip()}")
            else:
                lines.append(f"{pad}- {text}")
        return "\n".join(lines)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return json.dumps(value.isoformat())
    return _NOT_YAML_PRINTABLE.sub(_escape, json.dumps(str(value), ensure_ascii=False))


#: Keys written bare; others (and words YAML 1.1 reads as booleans or null) are quoted.
_PLAIN_KEY = re.compile("[a-z_][a-z0-9_]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
#: Characters YAML forbids raw or reads as line breaks (JSON leaves them unescaped).
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"
