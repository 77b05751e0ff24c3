"""What BigQuery refuses, in one place: its API errors turned into errors a user can act on, and
the limits and dataset settings smolqwery checks before it makes any call.

:func:`classify` is the only place that reads a ``google.api_core`` exception's status, reasons
and message (the way dlt's ``sql_client`` maps its drivers' errors): every warehouse operation
goes through :func:`smolqwery.warehouses.retry.call`, which hands it the permanent failures.
Each message is one line that says what to do; it never carries credentials.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from ..errors import UnsafeDatasetError, WarehouseAccessError, WarehouseError

if TYPE_CHECKING:
    from google.api_core.exceptions import GoogleAPICallError

    from ..schema import TableSchema

#: BigQuery's limits (https://cloud.google.com/bigquery/docs/creating-clustered-tables,
#: .../schemas#column_descriptions, .../quotas#table_limits). The emulator accepts more.
MAX_CLUSTERING_COLUMNS = 4
MAX_TABLE_DESCRIPTION = 16_384
MAX_COLUMN_DESCRIPTION = 1_024

BILLING_URL = "https://console.cloud.google.com/billing/linkedaccount?project={project}"

#: The role that holds a permission smolqwery needs, and where to grant it.
_ROLES = {
    "bigquery.datasets.update": ("BigQuery Data Owner (roles/bigquery.dataOwner)", "dataset"),
    "bigquery.datasets.setIamPolicy": (
        "BigQuery Data Owner (roles/bigquery.dataOwner)",
        "dataset",
    ),
    "bigquery.datasets.create": ("BigQuery Data Editor (roles/bigquery.dataEditor)", "project"),
    "bigquery.jobs.create": ("BigQuery Job User (roles/bigquery.jobUser)", "project"),
}
_DEFAULT_ROLE = ("BigQuery Data Editor (roles/bigquery.dataEditor)", "dataset")
_PERMISSION = re.compile(
    r"(?:Permission (bigquery\.[\w.]+) denied|does not have (?:the )?(bigquery\.[\w.]+) permission)"
)
_BILLING_MESSAGES = ("billing has not been enabled", "billing is not enabled", "free tier")


@dataclasses.dataclass(frozen=True)
class Target:
    """Where an operation runs, named in the errors."""

    project: str
    dataset: str

    @property
    def dataset_ref(self) -> str:
        """``project:dataset``, the form ``bq`` and BigQuery's own messages use."""
        return f"{self.project}:{self.dataset}"


def one_line(text: str) -> str:
    """The client appends ``Location:``/``Job ID:`` lines to job errors: keep one line."""
    return " ".join(text.split())


def reasons(exc: GoogleAPICallError) -> set[str]:
    """The ``errors[].reason`` values of a BigQuery error (``accessDenied``, ``invalid``...)."""
    return {str(e.get("reason")) for e in (exc.errors or []) if isinstance(e, dict)}


def _messages(exc: GoogleAPICallError) -> str:
    parts = [exc.message or ""]
    parts += [str(e.get("message", "")) for e in (exc.errors or []) if isinstance(e, dict)]
    return " ".join(parts)


def _request(exc: GoogleAPICallError) -> tuple[str, str]:
    """Method and URL of the HTTP request that failed ("" when the error was built offline)."""
    request = getattr(getattr(exc, "response", None), "request", None)
    return str(getattr(request, "method", "") or ""), str(getattr(request, "url", "") or "")


def denied_permission(exc: GoogleAPICallError) -> str | None:
    """The permission a 403 names, or the one its request needs when the message names none."""
    match = _PERMISSION.search(_messages(exc))
    if match:
        return match.group(1) or match.group(2)
    method, url = _request(exc)
    path = url.split("?", 1)[0]
    if method in {"PATCH", "PUT"} and re.search(r"/datasets/[^/]+$", path):
        return "bigquery.datasets.update"  # the dataset's labels and access entries
    return None


def classify(exc: GoogleAPICallError, operation: str, target: Target | None) -> WarehouseError:
    """The error to raise for a permanent BigQuery failure of ``operation``."""
    from google.api_core import exceptions as gexc

    text = _messages(exc).lower()
    found = reasons(exc)
    project = target.project if target else "the project"
    if "billingNotEnabled" in found or any(m in text for m in _BILLING_MESSAGES):
        return WarehouseAccessError(
            f"{operation}: billing is not enabled on Google Cloud project {project} (the "
            "BigQuery sandbox refuses DML, which every export runs): enable billing at "
            + BILLING_URL.format(project=project)
            + " and run again"
        )
    if isinstance(exc, gexc.Forbidden) and not found & {"quotaExceeded", "rateLimitExceeded"}:
        permission = denied_permission(exc)
        role, scope = _ROLES.get(permission or "", _DEFAULT_ROLE)
        where = f"project {project}"
        if scope == "dataset" and target:
            where = f"dataset {target.dataset_ref}"
        what = f"permission {permission} denied" if permission else "access denied"
        hint = ""
        if permission in {"bigquery.datasets.update", "bigquery.datasets.setIamPolicy"}:
            hint = (
                " (needed to add SMOLQWERY_ACL_GROUPS to the dataset's access entries and set "
                "its labels; or add them yourself and remove those settings)"
            )
        return WarehouseAccessError(
            f"{operation}: {what}: grant the account smolqwery uses {role} on {where}{hint}"
        )
    return WarehouseError(one_line(f"{operation}: {describe(exc)}"))


def describe(exc: BaseException, endpoint: str | None = None) -> str:
    """A short description of a failure, free of credentials; names the endpoint it could
    not reach (an emulator address mistyped in the settings shows at once)."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if endpoint and isinstance(exc, (requests.ConnectionError, requests.Timeout, OSError)):
        return f"cannot reach the BigQuery API at {endpoint} ({type(exc).__name__}: {exc})"

    if isinstance(exc, auth_exc.GoogleAuthError) and not isinstance(exc, auth_exc.TransportError):
        # Token endpoint answers may quote parts of the key: report the type only.
        return (
            f"authentication failed ({type(exc).__name__}): check the SMOLQWERY_GOOGLE_* or "
            "SMOLQWERY_GOOGLE_CREDENTIALS_FILE settings"
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        return f"{exc.code} {type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


# -- refused before any call -----------------------------------------------------------------


def limit_problems(table: TableSchema) -> list[str]:
    """What BigQuery would refuse in a table's layout (the emulator would accept it)."""
    problems = []
    if len(table.clustering) > MAX_CLUSTERING_COLUMNS:
        problems.append(
            f"table {table.name!r} clusters on {len(table.clustering)} columns "
            f"({', '.join(table.clustering)}); BigQuery allows at most {MAX_CLUSTERING_COLUMNS}: "
            "return fewer from get_clustering_fields()"
        )
    if len(table.description) > MAX_TABLE_DESCRIPTION:
        problems.append(
            f"table {table.name!r} has a description of {len(table.description):,} characters; "
            f"BigQuery allows at most {MAX_TABLE_DESCRIPTION:,}: shorten the dataclass docstring "
            "or get_table_description()"
        )
    for column in table.columns:
        if len(column.description) > MAX_COLUMN_DESCRIPTION:
            problems.append(
                f"column {column.name!r} of table {table.name!r} has a description of "
                f"{len(column.description):,} characters; BigQuery allows at most "
                f"{MAX_COLUMN_DESCRIPTION:,}: shorten its description"
            )
    return problems


def check_limits(table: TableSchema) -> None:
    """Raise before creating a table BigQuery would refuse (``manage.py check`` says it first)."""
    problems = limit_problems(table)
    if problems:
        raise WarehouseError(f"create table {table.name}: " + "; ".join(problems))


def _days(ms: int | None) -> str:
    days = (ms or 0) / 86_400_000
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def dataset_expiration_error(
    target: Target, table_ms: int | None, partition_ms: int | None
) -> UnsafeDatasetError | None:
    """A dataset whose new tables or partitions expire would delete exported days and the
    ledger (the BigQuery sandbox sets 60 days): refused, with the command that removes it."""
    found = []
    if table_ms:
        found.append(f"a default table expiration of {_days(table_ms)}")
    if partition_ms:
        found.append(f"a default partition expiration of {_days(partition_ms)}")
    if not found:
        return None
    return UnsafeDatasetError(
        f"dataset {target.dataset_ref} has {' and '.join(found)}: BigQuery would delete "
        "exported days and smolqwery's ledger; remove it with `bq update "
        "--default_table_expiration 0 --default_partition_expiration 0 "
        f"{target.dataset_ref}` (the sandbox needs billing enabled first) and run migrate again"
    )


def table_expiration_error(
    target: Target, table: str, expires: bool, partition_ms: int | None
) -> UnsafeDatasetError | None:
    """The same for a table that already carries an expiration (a dataset default applies to
    new tables only, so removing it leaves tables made meanwhile expiring)."""
    flags, found = [], []
    if expires:
        found.append("an expiration time")
        flags.append("--expiration 0")
    if partition_ms:
        found.append(f"a partition expiration of {_days(partition_ms)}")
        flags.append("--time_partitioning_expiration 0")
    if not found:
        return None
    return UnsafeDatasetError(
        f"table {target.dataset_ref}.{table} has {' and '.join(found)}: BigQuery would delete "
        f"exported days; remove it with `bq update {' '.join(flags)} "
        f"{target.dataset_ref}.{table}` and run again"
    )
