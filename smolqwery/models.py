"""Bookkeeping in the project's own database: export runs (for status and admin) and the lock.

What was exported lives in the warehouse's ledger, next to the data, so that it commits with the
rows; these tables only say how runs went and keep two runs from overlapping.
"""

from __future__ import annotations

from django.db import models


class ExportRun(models.Model):
    """One extractor's part of one ``smolqwery_extract`` run."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCESS = "success", "success"
        FAILED = "failed", "failed"

    run_id = models.CharField(max_length=64, db_index=True)
    extractor = models.CharField(max_length=255)
    table_name = models.CharField(max_length=1024, db_index=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    days = models.PositiveIntegerField(default=0)
    rows = models.BigIntegerField(default=0)
    first_day = models.DateField(null=True, blank=True)
    last_day = models.DateField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "table_name"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"{self.table_name} {self.status} ({self.run_id})"


class ExportLock(models.Model):
    """A lease: held by one export at a time, taken over once expired (killed holder)."""

    name = models.CharField(max_length=255, primary_key=True)
    owner = models.CharField(max_length=255)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class DatasetState(models.Model):
    """The dataset settings ``migrate`` last applied to the warehouse, as a hash.

    ``migrate`` reconciles the dataset (location, labels, ACL groups) when these settings
    change; with nothing to apply and the same settings it leaves the warehouse alone, so a
    deploy's ``migrate`` neither needs nor waits for it.
    """

    key = models.CharField(max_length=64, primary_key=True)
    fingerprint = models.CharField(max_length=64)
    reconciled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} reconciled at {self.reconciled_at:%Y-%m-%d %H:%M:%S}"


class WarehouseRecord(models.Model):
    """Where the exports went and in which time zone, recorded at the first ``migrate`` or
    export: a later change of ``SMOLQWERY_DATASET``, of the DuckDB file or of ``TIME_ZONE`` is
    then reported (``manage.py check``) and refused (``migrate``, exports) instead of silently
    starting an empty warehouse or moving day boundaries (issue 14)."""

    name = models.CharField(max_length=64, primary_key=True, default="default")
    warehouse = models.CharField(max_length=16)
    dataset = models.CharField(max_length=1024)
    duckdb_path = models.TextField(blank=True, default="")
    time_zone = models.CharField(max_length=255)
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.warehouse} {self.dataset} ({self.time_zone})"


class ExportUnit(models.Model):
    """One unit of work: one table, one contiguous batch of days, planned by one run.

    Units fan an export out over processes and Celery workers (docs/scaling.md). Their rows say
    what is queued, running and done; what is exported is still the warehouse's ledger.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        #: Never started, and a later plan covers its days again.
        SUPERSEDED = "superseded", "superseded"

    unit_id = models.CharField(max_length=64, unique=True)
    run_id = models.CharField(max_length=64, db_index=True)
    extractor = models.CharField(max_length=255)
    extractor_path = models.CharField(max_length=1024)
    table_name = models.CharField(max_length=1024, db_index=True)
    first_day = models.DateField()
    last_day = models.DateField()
    #: A forced range (``--from/--to``, ``--lag``): replaced even when the ledger has the days.
    forced = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.BigIntegerField(default=0)
    note = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-queued_at", "table_name", "first_day"]
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"{self.table_name} {self.first_day}..{self.last_day} {self.status}"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1
