"""Validation and quoting of warehouse identifiers.

Values never go into SQL text; identifiers must, so every dataset, table, view and column name
is validated against BigQuery's rules (kept stricter than needed) before it is quoted.
"""

from __future__ import annotations

import re

_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
# Stricter than BigQuery (which also allows spaces, dashes and Unicode letters): these names are
# also DuckDB identifiers and Python-ish names users type, and stay safe in any SQL dialect.
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,1000}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")
_PROJECT = re.compile(r"[a-z][a-z0-9\-.:]{0,127}")
_RESERVED_COLUMN_PREFIXES = (
    "_table_",
    "_file_",
    "_partition",
    "_row_timestamp",
    "__root__",
    "_colidentifier",
)
#: Tables and views whose names start with this are smolqwery's own (ledger, staging tables).
RESERVED_TABLE_PREFIX = "smolqwery_"


def validate_dataset_name(name: object) -> str:
    if not isinstance(name, str) or not _DATASET.fullmatch(name):
        raise ValueError(
            f"dataset name {name!r} is invalid: use 1 to 1024 letters, digits or underscores"
        )
    return name


def validate_table_name(name: object) -> str:
    if not isinstance(name, str) or not _TABLE.fullmatch(name):
        raise ValueError(
            f"table name {name!r} is invalid: start with a letter or underscore, then letters, "
            "digits or underscores"
        )
    return name


def validate_column_name(name: object) -> str:
    if not isinstance(name, str) or not _COLUMN.fullmatch(name):
        raise ValueError(
            f"column name {name!r} is invalid: start with a letter or underscore, then up to 299 "
            "letters, digits or underscores"
        )
    if name.lower().startswith(_RESERVED_COLUMN_PREFIXES):
        raise ValueError(f"column name {name!r} uses a prefix BigQuery reserves")
    return name


def validate_project_id(name: object) -> str:
    if not isinstance(name, str) or not _PROJECT.fullmatch(name):
        raise ValueError(f"project id {name!r} is invalid")
    return name


def quote_bigquery(*parts: str) -> str:
    """Backtick-quote a validated dotted path (``project.dataset.table``)."""
    for part in parts:
        if "`" in part or "\\" in part or not part:
            raise ValueError(f"identifier {part!r} cannot be quoted")
    return "`" + ".".join(parts) + "`"


def quote_duckdb(name: str) -> str:
    """Double-quote one validated identifier for DuckDB."""
    if '"' in name or not name:
        raise ValueError(f"identifier {name!r} cannot be quoted")
    return f'"{name}"'
