"""Source data of the queryset-extractor tests: one column of each kind a warehouse stores."""

from __future__ import annotations

from django.db import models


class Reading(models.Model):
    """A measurement taken at ``created_at``."""

    created_at = models.DateTimeField(db_index=True)
    user_id = models.BigIntegerField()
    score = models.FloatField()
    ok = models.BooleanField(default=True)
    title = models.CharField(max_length=40, null=True, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=3, null=True)
    taken_on = models.DateField()
