"""The source table: one row per event, the shape of a typical product-analytics log."""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    """One user event; ``timestamp`` is indexed because every extraction filters one day."""

    timestamp = models.DateTimeField(db_index=True)
    user_id = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    duration = models.FloatField()
    success = models.BooleanField()
    country = models.CharField(max_length=2, null=True)

    class Meta:
        app_label = "bench"
