"""BigQuery through the official client — load jobs and one transaction, never streaming.

Replacing days (``replace_days``):

1. the batch's record batches are written to a temporary Parquet file (streamed, bounded
   memory);
2. a staging table ``smolqwery_staging_<table>_<hash>_g<n>`` is created with the table's schema
   and an expiration (a safety net if the process dies);
3. the file is uploaded (in chunks of bounded size, ``bigquery_upload.py``) and loaded into it
   by a load job — free, unlike streaming inserts — under a
   deterministic id (see :meth:`BigQueryWarehouse._run_job`): a retried request gets a 409 and
   polls the job it already started instead of loading twice; a job that ended in error is run
   again as generation ``n + 1``, under a new id, into a fresh staging table;
4. one multi-statement transaction, a query job under the same rules, deletes the batch's days
   from the table, inserts the staged rows and rewrites the ledger rows of those days — all or
   nothing;
5. the staging table is dropped.

Many days share one load job, which keeps backfills far below BigQuery's 1,500 table
modifications per table per day (DML does not count towards it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, WarehouseError
from ..identifiers import (
    quote_bigquery,
    validate_dataset_name,
    validate_project_id,
    validate_table_name,
)
from ..schema import Column, TableSchema, arrow_schema
from . import bigquery_errors, retry
from .base import (
    LEDGER_TABLE,
    NOT_A_BOOL,
    RESERVED_PREFIX,
    DayBatch,
    ReadSession,
    Warehouse,
    conform_chunks,
    ledger_schema,
    ledger_table_name,
    rebuild_casts,
    rebuild_name,
    relaxed_schema,
    validate_table_identifiers,
)
from .bigquery_upload import UPLOAD_CHUNK_SIZE, load_from_file
from .ops import IDENTITY_TYPES, BaseOperations, Capabilities, Params, plain_message

if TYPE_CHECKING:
    import pyarrow as pa
    from django.core.checks import CheckMessage
    from google.cloud import bigquery

    from ..settings import SmolqwerySettings

logger = logging.getLogger("smolqwery.warehouses.bigquery")

#: Legacy names the API returns for standard SQL types.
_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
#: The role smolqwery grants to ``SMOLQWERY_ACL_GROUPS``.
ACL_ROLE = "WRITER"
#: Staging tables expire on their own if a process dies before dropping them.
STAGING_EXPIRATION = datetime.timedelta(days=1)
#: Rows per Parquet row group: large enough for fast loads, small enough to bound memory.
ROW_GROUP_ROWS = 100_000
#: Client calls make one attempt: each operation is retried as a whole by :func:`retry.call`.
_ONCE: Any = None
#: How long to wait for one job before treating it as a timeout (then retried).
JOB_TIMEOUT = 600.0
#: Seconds a one-request read waits for its query before the client polls it instead.
READ_WAIT = 10.0
#: Locations of datasets read by this process, by (endpoint, project, dataset).
_DATASET_LOCATIONS: dict[tuple[str | None, str, str], str | None] = {}


def column_from_field(field: bigquery.SchemaField) -> Column:
    """A :class:`Column` from a field read back from BigQuery, with standard SQL type names."""
    field_type = (field.field_type or "").upper()
    mode = (field.mode or "NULLABLE").upper()
    return Column(
        name=field.name,
        type=_LEGACY_TYPES.get(field_type, field_type),
        mode=mode,  # type: ignore[arg-type]
        description=field.description or "",
    )


def schema_fields(columns: Iterable[Column]) -> list[bigquery.SchemaField]:
    from google.cloud import bigquery

    return [
        bigquery.SchemaField(c.name, c.type, mode=c.mode, description=c.description)
        for c in columns
    ]


#: ASSERT and ERROR take a string literal; only constant texts of smolqwery go through here.
_assert_message = plain_message


def _require_client() -> None:
    """The BigQuery backend's packages are an extra: say which one is missing."""
    try:
        import google.auth
        import google.cloud.bigquery  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "the BigQuery warehouse needs google-cloud-bigquery and google-auth "
            f"({exc.name or 'a Google package'} is missing): pip install 'smolqwery[bigquery]'"
        ) from None


class BigQueryOperations(BaseOperations):
    """BigQuery's SQL: backticks, typed ``@name`` parameters, ``DATE(ts, tz)``,
    ``DATE_TRUNC``, ``ERROR()``, arrays by ``OFFSET``."""

    capabilities = Capabilities(type_mapper=IDENTITY_TYPES, ledger_per_table=True)

    def quote_name(self, name: str) -> str:
        return quote_bigquery(name)

    def placeholder(self, name: str, type_: str) -> str:
        return f"@{name}"

    def bind(self, values: Mapping[str, tuple[str, Any]], sql: str | None) -> list[Any]:
        from google.cloud import bigquery

        out: list[Any] = []
        for name, (type_, value) in values.items():
            if type_.startswith("ARRAY<") and type_.endswith(">"):
                out.append(bigquery.ArrayQueryParameter(name, type_[6:-1], value))
            else:
                out.append(bigquery.ScalarQueryParameter(name, type_, value))
        return out

    def timestamp_local_date_sql(self, column: str, tz: str) -> str:
        return f"DATE({column}, {tz})"

    def day_gap_sql(self, day: str, previous: str) -> str:
        return f"DATE_DIFF({day}, {previous}, DAY)"

    def period_start_sql(self, period: str, day: str) -> str:
        part = {"week": "ISOWEEK", "month": "MONTH"}[period]
        return f"DATE_TRUNC({day}, {part})"

    def raise_sql(self, message: str) -> str:
        return f"ERROR({plain_message(message)})"

    def rebuild_cast_sql(self, name: str, old: str, new: str, not_a_bool: str) -> str:
        """DATE → TIMESTAMP is midnight UTC, TIMESTAMP → DATE the UTC day (BigQuery's default
        time zone), INT64 → BOOL takes 0, 1 and NULL only."""
        col = self.column(name)
        if (old, new) == ("INT64", "BOOL"):
            return (
                f"IF({col} IS NULL OR {col} IN (0, 1), CAST({col} AS BOOL), "
                f"{self.raise_sql(not_a_bool)})"
            )
        return self.cast_sql(col, new)

    def day_counts_sql(
        self, params: Params, days: Sequence[datetime.date], counts: Sequence[int]
    ) -> str:
        d = params(list(days), "ARRAY<DATE>")
        n = params(list(counts), "ARRAY<INT64>")
        return (
            f"SELECT {d}[OFFSET(i)] AS {self.quote_name('day')}, "
            f"{n}[OFFSET(i)] AS {self.quote_name('rows')} "
            f"FROM UNNEST(GENERATE_ARRAY(0, ARRAY_LENGTH({d}) - 1)) AS i"
        )


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def staging_name(batch: DayBatch, generation: int) -> str:
    """The staging table of one generation of a batch's load (one table per job)."""
    table = batch.table.name
    digest = _digest(table, batch.first_day, batch.last_day, batch.run_id)[:10]
    return validate_table_name(f"{RESERVED_PREFIX}staging_{table[:900]}_{digest}_g{generation}")


def load_job_id(batch: DayBatch, created: str, generation: int) -> str:
    """Deterministic per (table, days, run, staging table's creation), with the generation as
    suffix: a retried request for the same staging table finds its job (409) and never loads
    twice; a recreated staging table, or the next generation, gets a new id."""
    table = batch.table.name
    digest = _digest(table, batch.first_day, batch.last_day, batch.run_id, created)[:16]
    return (
        f"smolqwery_load_{table[:200]}_{batch.first_day:%Y%m%d}_{batch.last_day:%Y%m%d}_"
        f"{digest}_g{generation}"
    )


def _wait(job: Any, timeout: float = JOB_TIMEOUT) -> None:
    """Poll a job until it is done (raising its error); a query job is never resubmitted.

    A job whose insert already answered DONE without error is not polled again (the client
    would ask ``getQueryResults`` once more for a query job): one request less per job on a
    server that finishes short jobs before answering, as the emulator does.
    """
    from google.cloud import bigquery

    if job.state == "DONE" and not job.error_result:
        return
    if isinstance(job, bigquery.QueryJob):
        job.result(retry=_ONCE, job_retry=None, timeout=timeout)
    else:
        job.result(retry=_ONCE, timeout=timeout)


def _session(credentials: Any, limit: float) -> Any:
    """An authorized HTTP session whose requests all give up after ``limit`` seconds."""
    from google.auth.transport.requests import AuthorizedSession

    class BoundedSession(AuthorizedSession):  # type: ignore[misc]
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            timeout = kwargs.get("timeout")
            if timeout is None or isinstance(timeout, (int, float)):
                kwargs["timeout"] = limit if timeout is None else min(float(timeout), limit)
            kwargs["max_allowed_time"] = kwargs.get("max_allowed_time") or limit
            return super().request(method, url, *args, **kwargs)  # type: ignore[no-untyped-call]

    return BoundedSession(credentials, refresh_timeout=limit)  # type: ignore[no-untyped-call]


class BigQueryWarehouse(Warehouse):
    """Export tables in a BigQuery dataset."""

    vendor = "bigquery"
    display_name = "BigQuery"
    ops_class = BigQueryOperations

    def __init__(
        self,
        client: bigquery.Client,
        dataset: str,
        *,
        location: str | None = None,
        labels: Mapping[str, str] | None = None,
        acl_groups: Sequence[str] = (),
        retry_deadline: float = 600.0,
    ) -> None:
        self.client = client
        self.project = validate_project_id(client.project)
        self.dataset = validate_dataset_name(dataset)
        self.location = location
        self._job_location: str | None = location
        self.labels = dict(labels or {})
        self.acl_groups = tuple(acl_groups)
        self.retry_deadline = retry_deadline
        #: Per-table ledgers known to exist (ensure_ledger asks BigQuery once per table).
        self._ledgers: set[str] = set()
        #: Inside reading(): reads run as jobs, for their bytes billed.
        self._billing = 0
        #: A job is waited for at most this long per attempt (shorter for status readers).
        self.job_timeout = JOB_TIMEOUT
        #: The load's upload holds at most this many bytes of the file in memory at a time.
        self.upload_chunk_size = UPLOAD_CHUNK_SIZE
        #: The setting ``retry_deadline`` comes from, named when it runs out.
        self.deadline_setting = "SMOLQWERY_RETRY_DEADLINE"
        #: The API address, named in errors when it cannot be reached.
        self.endpoint: str | None = getattr(
            getattr(client, "_connection", None), "API_BASE_URL", None
        )

    @classmethod
    def from_settings(
        cls,
        config: SmolqwerySettings,
        *,
        deadline: float | None = None,
        read_only: bool = False,
        request_timeout: float | None = None,
    ) -> BigQueryWarehouse:
        """A client with the configured credentials, always with an explicit project.

        ``deadline`` replaces ``SMOLQWERY_RETRY_DEADLINE`` and bounds every HTTP request
        (connect and each read): without it a request to an endpoint that accepts and never
        answers waits forever. ``request_timeout`` is its former name; ``read_only`` changes
        nothing (readers only read).
        """
        _require_client()
        from google.cloud import bigquery

        from .bigquery_auth import bigquery_credentials

        if deadline is not None:
            config = dataclasses.replace(config, retry_deadline=deadline)
            request_timeout = deadline
        credentials, project = bigquery_credentials(config)
        if not project:
            raise ConfigurationError(
                "no Google Cloud project is known for BigQuery: set SMOLQWERY_BIGQUERY_PROJECT "
                "(or SMOLQWERY_GOOGLE_PROJECT_ID)"
            )
        try:
            validate_project_id(project)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        options = (
            {"api_endpoint": config.bigquery_api_endpoint} if config.bigquery_api_endpoint else None
        )
        client = bigquery.Client(
            project=project,
            credentials=credentials,
            client_options=options,
            location=config.dataset_location,
            _http=None if request_timeout is None else _session(credentials, request_timeout),
        )
        warehouse = cls(
            client,
            config.dataset,
            location=config.dataset_location,
            labels=config.dataset_labels,
            acl_groups=config.acl_groups,
            retry_deadline=config.retry_deadline,
        )
        if request_timeout is not None:  # a reader that must answer fast: status, admin
            warehouse.job_timeout = min(JOB_TIMEOUT, request_timeout)
            warehouse.deadline_setting = "SMOLQWERY_STATUS_DEADLINE"
        return warehouse

    @classmethod
    def check_settings(cls, config: SmolqwerySettings) -> list[CheckMessage]:
        """E012 without the client packages; E009 without usable credentials."""
        from django.core.checks import Error

        try:
            _require_client()
        except ConfigurationError as exc:
            return [
                Error(
                    # Said once: the exception's own "pip install" advice is the hint's.
                    "The BigQuery warehouse is chosen (SMOLQWERY_WAREHOUSE or Google "
                    "credentials settings) but its packages are not installed: "
                    + str(exc).split(": pip")[0].replace("the BigQuery warehouse ", "it ")
                    + ".",
                    hint="pip install 'smolqwery[bigquery]', or set SMOLQWERY_WAREHOUSE = "
                    "'duckdb'.",
                    id="smolqwery.E012",
                )
            ]
        from .bigquery_auth import credentials_messages

        return credentials_messages(config)

    @classmethod
    def table_problems(cls, table: TableSchema) -> list[str]:
        """BigQuery's limits (clustering columns, description lengths): E030."""
        return bigquery_errors.limit_problems(table)

    @classmethod
    def location_of(cls, config: SmolqwerySettings) -> str:
        """The project (the dataset is in it), as far as the settings say it."""
        key_project = (config.google_key_info or {}).get("project_id")
        return config.bigquery_project or key_project or ""

    def __repr__(self) -> str:
        return f"BigQueryWarehouse(project={self.project!r}, dataset={self.dataset!r})"

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]

    # -- helpers -------------------------------------------------------------------------

    def _call(self, operation: str, fn: Any) -> Any:
        return retry.call(
            operation, fn, self.retry_deadline, self.endpoint, self._target, self.deadline_setting
        )

    @property
    def _target(self) -> bigquery_errors.Target:
        return bigquery_errors.Target(self.project, self.dataset)

    def _run_job(
        self,
        operation: str,
        submit: Callable[[str], Any],
        job_id: Callable[[int], str],
    ) -> Any:
        """Run one job exactly once under retries; return it, done.

        ``job_id(n)`` names generation ``n`` of the job (it may prepare what the job needs, a
        fresh staging table) and is called once per generation. A retry after a lost answer or a
        poll that timed out submits the same id again: the 409 means the job exists, and it is
        polled, never submitted twice — a load that succeeded is not loaded again, a query still
        running is waited for. Only a job that *ended in error* moves on to generation ``n + 1``:
        at once if it was found by a 409 (a dead job of an earlier attempt), through the normal
        retry rules if it was this attempt's own job (transient reasons are retried, others
        raised).
        """
        from google.api_core.exceptions import Conflict, GoogleAPICallError, NotFound

        generation = 0
        ids: dict[int, str] = {}

        def once() -> Any:
            nonlocal generation
            current = generation
            if current not in ids:
                ids[current] = job_id(current)
            attached = False
            try:
                job = submit(ids[current])
            except Conflict:
                attached = True
                try:
                    job = self.client.get_job(ids[current], location=self._location(), retry=_ONCE)
                except NotFound as exc:  # BigQuery may answer 404 just after the 409
                    raise retry.TryAgain(f"job {ids[current]} not visible yet") from exc
                logger.info(
                    "%s: job %s exists already (%s): polling it", operation, job.job_id, job.state
                )
            try:
                _wait(job, self.job_timeout)
            except GoogleAPICallError as exc:
                if job.state != "DONE" or not job.error_result:
                    raise  # the poll failed, not the job: poll it again
                generation = current + 1
                if attached:
                    raise retry.TryAgain(
                        f"job {job.job_id} had failed: running it again as generation {generation}"
                    ) from exc
                raise
            return job

        return self._call(operation, once)

    def _ref(self, name: str) -> str:
        """``project.dataset.table`` for the client's API calls."""
        return f"{self.project}.{self.dataset}.{validate_table_name(name)}"

    def qualified_name(self, name: str) -> str:
        return quote_bigquery(self.project, self.dataset, validate_table_name(name))

    def _query(
        self, sql: str, params: Sequence[Any] = ()
    ) -> list[bigquery.Row]:  # one attempt; callers wrap it in _call
        from google.cloud import bigquery

        job = self.client.query(
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=list(params)),
            location=self._job_location,
            retry=_ONCE,
            job_retry=_ONCE,
        )
        rows = list(job.result(retry=_ONCE, timeout=self.job_timeout))
        self.last_bytes_billed = job.total_bytes_billed  # shown by the admin's Metrics page
        return rows

    def _read(self, sql: str, params: Sequence[Any]) -> list[bigquery.Row]:
        """A read in one request (``jobs.query``: the rows come with the answer when the query
        ends within the request's wait) instead of a job's insert, poll and rows: for reads
        whose bytes billed nobody shows (the ledger, the status). One attempt; callers wrap it
        in _call."""
        from google.cloud import bigquery

        rows = self.client.query_and_wait(
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=list(params)),
            location=self._job_location,
            api_timeout=min(self.job_timeout, READ_WAIT),
            wait_timeout=self.job_timeout,
            retry=_ONCE,
            job_retry=_ONCE,
        )
        return list(rows)

    @contextlib.contextmanager
    def reading(self, operation: str) -> Iterator[ReadSession]:
        """Reads of a session (the Metrics page) run as jobs, whose bytes billed it shows."""
        self._billing += 1
        try:
            with super().reading(operation) as session:
                yield session
        finally:
            self._billing -= 1

    def _location(self) -> str | None:
        """The dataset's location, where its jobs run: read once per process and dataset if
        not configured (a dataset never moves; a worker makes a warehouse per unit)."""
        if self._job_location is None:
            key = (self.endpoint, self.project, self.dataset)
            if key not in _DATASET_LOCATIONS:
                ref = f"{self.project}.{self.dataset}"
                _DATASET_LOCATIONS[key] = self.client.get_dataset(ref, retry=_ONCE).location
            self._job_location = _DATASET_LOCATIONS[key]
        return self._job_location

    def _get_table(self, name: str) -> bigquery.Table | None:
        from google.api_core.exceptions import NotFound

        try:
            return self.client.get_table(self._ref(name), retry=_ONCE)
        except NotFound:
            return None

    # -- dataset -------------------------------------------------------------------------

    def ensure_dataset(self) -> None:
        operation = f"ensure dataset {self.project}.{self.dataset}"
        self._call(operation, self._ensure_dataset_once)
        # Ledgers are per table (created with their table): no shared one for new datasets.

    def ensure_ledger(self, table: str) -> None:
        """The table's own ledger, created if missing (once per instance)."""
        name = ledger_table_name(table)
        if name not in self._ledgers:
            self._ensure_table(ledger_schema(name=name), partition=False)
            self._ledgers.add(name)

    def _transaction(self, operation: str, statements: Sequence[str], params: Params) -> None:
        script = "\n".join(
            ["BEGIN TRANSACTION;", *(f"{sql};" for sql in statements), "COMMIT TRANSACTION;"]
        )
        self._run_query(operation, script, params.bind(), "ledger")

    def _ensure_dataset_once(self) -> None:
        from google.api_core.exceptions import Conflict, NotFound, PreconditionFailed
        from google.cloud import bigquery

        ref = f"{self.project}.{self.dataset}"
        try:
            dataset = self.client.get_dataset(ref, retry=_ONCE)
        except NotFound:
            dataset = bigquery.Dataset(ref)
            dataset.location = self.location
            dataset.labels = dict(self.labels)
            try:
                # Created with BigQuery's default access list; ours is merged in below.
                dataset = self.client.create_dataset(dataset, retry=_ONCE)
                logger.info("created dataset %s", ref)
            except Conflict:
                dataset = self.client.get_dataset(ref, retry=_ONCE)
        self._refuse_expiring(dataset)
        # Jobs run where the dataset is; jobs.get needs that location outside the US/EU.
        self._job_location = dataset.location or self.location
        if self.location and dataset.location and dataset.location.lower() != self.location.lower():
            raise WarehouseError(
                f"dataset {ref} is in {dataset.location}, but SMOLQWERY_DATASET_LOCATION is "
                f"{self.location}: a dataset cannot move; fix the setting or use another dataset"
            )
        fields: list[str] = []
        labels = dict(dataset.labels or {})
        if any(labels.get(k) != v for k, v in self.labels.items()):
            labels.update(self.labels)  # ours set, others left alone
            dataset.labels = labels
            fields.append("labels")
        entries = list(dataset.access_entries)
        present = {(e.role, e.entity_type, e.entity_id) for e in entries}
        missing = [
            bigquery.AccessEntry(ACL_ROLE, "groupByEmail", group)
            for group in self.acl_groups
            if (ACL_ROLE, "groupByEmail", group) not in present
        ]
        if missing:
            # The access list is replaced as a whole: read, merge, write back (with the
            # dataset's etag, so a concurrent change makes this fail and retry).
            dataset.access_entries = entries + missing
            fields.append("access_entries")
        if fields:
            try:
                self.client.update_dataset(dataset, fields, retry=_ONCE)
            except PreconditionFailed as exc:
                raise retry.TryAgain("dataset changed meanwhile; reconciling again") from exc
            logger.info("updated %s of dataset %s", " and ".join(fields), ref)

    def _refuse_expiring(self, dataset: bigquery.Dataset) -> None:
        """Default expirations would delete exported days and the ledger: refuse (at migrate)."""
        error = bigquery_errors.dataset_expiration_error(
            self._target,
            dataset.default_table_expiration_ms,
            dataset.default_partition_expiration_ms,
        )
        if error is not None:
            raise error

    # -- tables and views ----------------------------------------------------------------

    def create_table(self, table: TableSchema) -> bool:
        validate_table_identifiers(table)
        bigquery_errors.check_limits(table)
        created = self._ensure_table(table, partition=True)
        self.ensure_ledger(table.name)
        return created

    def _ensure_table(self, table: TableSchema, *, partition: bool) -> bool:
        from google.api_core.exceptions import Conflict
        from google.cloud import bigquery

        def once() -> bool:
            existing = self._get_table(table.name)
            if existing is None:
                # A new table would inherit the dataset's default expirations.
                self._refuse_expiring(
                    self.client.get_dataset(f"{self.project}.{self.dataset}", retry=_ONCE)
                )
                new = bigquery.Table(self._ref(table.name), schema=schema_fields(table.columns))
                new.description = table.description or None
                if partition:
                    new.time_partitioning = bigquery.TimePartitioning(
                        type_=bigquery.TimePartitioningType.DAY, field=table.date_column
                    )
                if table.clustering:
                    new.clustering_fields = list(table.clustering)
                try:
                    self.client.create_table(new, retry=_ONCE)
                except Conflict:
                    existing = self._get_table(table.name)
                    if existing is None:
                        raise
                else:
                    logger.info("created table %s", self.qualified_name(table.name))
                    return True
            self._check_existing(table, existing, partition=partition)
            return False

        return bool(self._call(f"create table {table.name}", once))

    def _check_existing(
        self, table: TableSchema, existing: bigquery.Table, *, partition: bool
    ) -> None:
        mismatch = self.existing_layout_error(
            table, tuple(column_from_field(f) for f in existing.schema)
        )
        if mismatch is not None:
            raise mismatch
        partitioning = existing.time_partitioning
        expiring = bigquery_errors.table_expiration_error(
            self._target,
            table.name,
            existing.expires is not None,
            partitioning.expiration_ms if partitioning is not None else None,
        )
        if expiring is not None:
            raise expiring
        if partition and (partitioning is None or partitioning.field != table.date_column):
            logger.warning(
                "table %s is not partitioned by day on %s (made by an older smolqwery?): "
                "it works, but costs more to query",
                self.qualified_name(table.name),
                table.date_column,
            )
        wanted = {c.name: c.description for c in table.columns}
        if (existing.description or "") != table.description or any(
            (f.description or "") != wanted[f.name] for f in existing.schema
        ):
            existing.description = table.description or None
            existing.schema = schema_fields(table.columns)
            self.client.update_table(existing, ["description", "schema"], retry=_ONCE)

    def rebuild_table(self, old: TableSchema, new: TableSchema) -> bool:
        """See :meth:`Warehouse.rebuild_table`. The rows are first copied to a working table,
        then one ``CREATE OR REPLACE TABLE … AS SELECT`` (casts) from that copy replaces the
        table: a single DDL job, so readers see the old table or the new one, never a mix."""
        casts = rebuild_casts(old, new)
        work = rebuild_name(new.name)
        operation = f"rebuild table {new.name}"
        existing = self._call(operation, lambda: self._get_table(new.name))
        columns = None if existing is None else tuple(column_from_field(f) for f in existing.schema)
        if not self.rebuild_needed(old, new, columns):
            return False
        target, copy = self.qualified_name(new.name), self.qualified_name(work)
        defs = ", ".join(self.ops.column_definition(c) for c in new.columns)
        select = self.rebuild_select(new, casts)
        day = quote_bigquery(new.date_column)
        clauses = f"PARTITION BY {f'DATE({day})' if new.date_column_type == 'TIMESTAMP' else day}"
        if new.clustering:
            clauses += " CLUSTER BY " + ", ".join(quote_bigquery(c) for c in new.clustering)
        try:
            snapshot = f"CREATE OR REPLACE TABLE {copy} AS SELECT * FROM {target}"
            self._call(operation, lambda: self._query(snapshot))
            bools = [quote_bigquery(n) for n, pair in casts.items() if pair == ("INT64", "BOOL")]
            if bools:
                # Checked on the copy the swap reads, before it: the table is never touched.
                where = " OR ".join(f"NOT ({c} IS NULL OR {c} IN (0, 1))" for c in bools)
                check = f"SELECT COUNT(*) FROM {copy} WHERE {where}"
                if self._call(operation, lambda: self._query(check))[0][0]:
                    raise WarehouseError(f"{operation}: {NOT_A_BOOL}")
            self._call(
                operation,
                lambda: self._query(
                    f"CREATE OR REPLACE TABLE {target} ({defs}) {clauses} AS "
                    f"SELECT {select} FROM {copy}"
                ),
            )
        except WarehouseError as exc:
            if NOT_A_BOOL in str(exc):
                raise WarehouseError(f"{operation}: {NOT_A_BOOL}") from exc
            raise
        finally:
            self._drop_staging(work)

        def describe() -> None:
            table = self.client.get_table(self._ref(new.name), retry=_ONCE)
            table.description = new.description or None
            table.schema = schema_fields(new.columns)
            self.client.update_table(table, ["description", "schema"], retry=_ONCE)

        self._call(operation, describe)
        logger.info(
            "rebuilt table %s (%s)",
            target,
            ", ".join(f"{n} {a} -> {b}" for n, (a, b) in casts.items()),
        )
        return True

    def get_table_columns(self, name: str) -> tuple[Column, ...] | None:
        validate_table_name(name)
        found = self._call(f"read schema of {name}", lambda: self._get_table(name))
        if found is None:
            return None
        return tuple(column_from_field(f) for f in found.schema)

    def get_table(self, name: str) -> bigquery.Table | None:
        """The client's table object (partitioning, clustering, descriptions), None if absent."""
        validate_table_name(name)
        return self._call(f"read table {name}", lambda: self._get_table(name))  # type: ignore[no-any-return]

    def list_tables(self) -> list[str]:
        ref = f"{self.project}.{self.dataset}"
        return sorted(
            self._call(
                f"list tables of {ref}",
                lambda: [t.table_id for t in self.client.list_tables(ref, retry=_ONCE)],
            )
        )

    def drop_table(self, name: str) -> None:
        from google.cloud import bigquery

        validate_table_name(name)

        def once() -> None:
            self.client.delete_table(self._ref(name), not_found_ok=True, retry=_ONCE)
            if not name.startswith(RESERVED_PREFIX):
                own = ledger_table_name(name)
                self.client.delete_table(self._ref(own), not_found_ok=True, retry=_ONCE)
                self._ledgers.discard(own)
            if name != LEDGER_TABLE and self._get_table(LEDGER_TABLE) is not None:
                self._query(
                    f"DELETE FROM {self.qualified_name(LEDGER_TABLE)} WHERE table_name = @t",
                    [bigquery.ScalarQueryParameter("t", "STRING", name)],
                )

        self._call(f"drop table {name}", once)
        logger.info("dropped table %s", self.qualified_name(name))

    def create_or_replace_view(self, name: str, sql: str, description: str = "") -> None:
        """DDL for the view, then its description through the API (no SQL literal needed)."""
        validate_table_name(name)

        def once() -> None:
            existing = self._get_table(name)
            if existing is not None and existing.table_type != "VIEW":
                raise WarehouseError(f"create view {name}: a table of that name exists")
            self._query(f"CREATE OR REPLACE VIEW {self.qualified_name(name)} AS\n{sql}")
            view = self.client.get_table(self._ref(name), retry=_ONCE)
            if (view.description or "") != description:
                view.description = description or None
                self.client.update_table(view, ["description"], retry=_ONCE)

        self._call(f"create view {name}", once)

    def drop_view(self, name: str) -> None:
        validate_table_name(name)

        def once() -> None:
            existing = self._get_table(name)
            if existing is None:
                return
            if existing.table_type != "VIEW":
                raise WarehouseError(f"drop view {name}: {name} is a table, not a view")
            self.client.delete_table(self._ref(name), not_found_ok=True, retry=_ONCE)

        self._call(f"drop view {name}", once)

    # -- exports -------------------------------------------------------------------------

    # -- the vendor steps of the shared algorithms --------------------------------------

    @contextlib.contextmanager
    def _replacement(self, operation: str, batch: DayBatch) -> Iterator[_Replacement]:
        """The replacement's script, run as one query job when the unit ends normally; its
        temporary Parquet file and staging tables, removed at the end whatever happens
        (staging tables also expire on their own)."""
        fd, path = tempfile.mkstemp(prefix="smolqwery-", suffix=".parquet")
        os.close(fd)
        unit = _Replacement(operation, path)
        try:
            yield unit
            self._run_script(unit)
        finally:
            os.unlink(path)
            for name in unit.staged:
                self._drop_staging(name)

    def _stage(self, unit: _Replacement, batch: DayBatch) -> str | None:
        """Stream the rows into the Parquet file, then load it into a staging table."""
        total = write_parquet(batch.chunks, relaxed_schema(arrow_schema(batch.table)), unit.path)
        if not total:
            return None
        return self.qualified_name(self._load(unit.operation, batch, unit.path, unit.staged))

    def _apply(
        self,
        unit: _Replacement,
        params: Params,
        checks: Sequence[tuple[str, str]],
        changes: Sequence[str],
    ) -> None:
        """Collected into the unit's script (run by :meth:`_run_script`)."""
        unit.params = params
        unit.checks += checks
        unit.changes += changes

    def _run_script(self, unit: _Replacement) -> None:
        """One script, one query job: the checks as ASSERTs before the transaction (if one
        fails, the script stops there and nothing was changed), then the changes in one
        transaction."""
        if unit.params is None:
            return
        statements = [
            f"ASSERT NOT EXISTS ({query}) AS {_assert_message(message)};"
            for query, message in unit.checks
        ]
        statements.append("BEGIN TRANSACTION;")
        statements += [f"{sql};" for sql in unit.changes]
        statements.append("COMMIT TRANSACTION;")
        self._run_query(unit.operation, "\n".join(statements), unit.params.bind(), "replace")

    def _fetch(
        self, operation: str, sql: str, params: Params, *, missing_ok: bool = False
    ) -> list[dict[str, Any]] | None:
        from google.api_core.exceptions import NotFound

        def once() -> list[dict[str, Any]] | None:
            try:
                if self._billing:
                    rows = self._query(sql, params.bind())
                else:
                    rows = self._read(sql, params.bind())
            except NotFound:
                if missing_ok:
                    return None
                raise
            return [dict(row.items()) for row in rows]

        return self._call(operation, once)  # type: ignore[no-any-return]

    def _execute(self, operation: str, sql: str, params: Params) -> int:
        # The job id names what it does: "adopt days …" runs as smolqwery_adopt_<uuid>.
        word = operation.split(" ", 1)[0]
        kind = word if word.isascii() and word.isalpha() else "change"
        job = self._run_query(operation, sql, params.bind(), kind)
        return int(job.num_dml_affected_rows or 0)

    def _load(self, operation: str, batch: DayBatch, path: str, staged: list[str]) -> str:
        """Load the Parquet file into a fresh staging table; return the table's name.

        Each generation of the load job gets a staging table of its own (appended to
        ``staged``), so a table only ever receives the rows of one job.
        """
        from google.cloud import bigquery

        table = batch.table
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            # No schema here: the staging table has it (the emulator mangles BYTES otherwise).
        )
        targets: dict[str, str] = {}

        def job_id(generation: int) -> str:
            name = staging_name(batch, generation)
            if name not in staged:
                staged.append(name)
            created = self._create_staging_once(table, name)
            ident = load_job_id(batch, created, generation)
            targets[ident] = name
            return ident

        def submit(ident: str) -> Any:
            return load_from_file(
                self.client,
                path,
                self._ref(targets[ident]),
                ident,
                config,
                self._location(),
                self.upload_chunk_size,
            )

        job = self._run_job(f"{operation}: load", submit, job_id)
        return targets[job.job_id]

    def _create_staging(
        self, table: TableSchema, batch: DayBatch, generation: int = 0
    ) -> tuple[str, str]:
        """A fresh, empty staging table; returns its name and creation time."""
        name = staging_name(batch, generation)
        created: str = self._call(
            f"create staging table for {table.name}",
            lambda: self._create_staging_once(table, name),
        )
        return name, created

    def _create_staging_once(self, table: TableSchema, name: str) -> str:
        """(Re)create staging table ``name`` empty; return its creation time."""
        from google.api_core.exceptions import Conflict
        from google.cloud import bigquery

        # All NULLABLE: a NULL in a REQUIRED column then fails inside the transaction,
        # which leaves the table and the ledger as they were.
        relaxed = [dataclasses.replace(c, mode="NULLABLE") for c in table.columns]
        staging = bigquery.Table(self._ref(name), schema=schema_fields(relaxed))
        staging.expires = datetime.datetime.now(datetime.timezone.utc) + STAGING_EXPIRATION
        staging.description = f"smolqwery staging for {table.name}; dropped after the load"
        try:
            made = self.client.create_table(staging, retry=_ONCE)
        except Conflict:
            # Left by an earlier attempt (perhaps loaded): replaced by an empty one, whose new
            # creation time gives the load a new job id.
            self.client.delete_table(self._ref(name), not_found_ok=True, retry=_ONCE)
            made = self.client.create_table(staging, retry=_ONCE)
        return made.created.isoformat() if made.created else ""

    def _run_query(
        self, operation: str, sql: str, params: Sequence[Any], kind: str
    ) -> bigquery.QueryJob:
        """A query that changes data, run once through :meth:`_run_job` (polled if it is still
        running, never resubmitted); returns the finished job."""
        from google.cloud import bigquery

        base = f"smolqwery_{kind}_{uuid.uuid4().hex}"
        config = bigquery.QueryJobConfig(query_parameters=list(params))

        def submit(ident: str) -> Any:
            return self.client.query(
                sql,
                job_config=config,
                job_id=ident,
                location=self._location(),
                retry=_ONCE,
                job_retry=None,
            )

        job: bigquery.QueryJob = self._run_job(operation, submit, lambda n: f"{base}_g{n}")
        return job

    def _drop_staging(self, staging: str) -> None:
        try:
            self._call(
                f"drop staging table {staging}",
                lambda: self.client.delete_table(
                    self._ref(staging), not_found_ok=True, retry=_ONCE
                ),
            )
        except WarehouseError as exc:
            # It expires by itself; never hide the export's own outcome behind this.
            logger.warning("%s (it expires by itself within a day)", exc)


@dataclasses.dataclass
class _Replacement:
    """One replacement: its Parquet file, staging tables (dropped at the end) and script."""

    operation: str
    path: str
    staged: list[str] = dataclasses.field(default_factory=list)
    params: Params | None = None
    checks: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    changes: list[str] = dataclasses.field(default_factory=list)


def write_parquet(chunks: Iterable[pa.RecordBatch], schema: pa.Schema, path: str) -> int:
    """Stream record batches into a Parquet file in row groups; return the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in conform_chunks(chunks, schema):
            pending.append(chunk)
            pending_rows += chunk.num_rows
            total += chunk.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
    return total
