"""Source data the crash extractors read: one row per event, like a project's own table."""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    """An event to export; its ``id`` lets tests find duplicates and gaps in the warehouse."""

    timestamp = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=29, decimal_places=9, null=True)
    payload = models.BinaryField(default=b"")

    class Meta:
        ordering = ["id"]
