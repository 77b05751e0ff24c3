"""Source data for the export tests: events with an aware creation time."""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    """Something that happened at ``created_at``; exported one row per event."""

    created_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=32, default="click")
    amount = models.IntegerField(default=1)
    note = models.TextField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
