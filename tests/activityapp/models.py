"""Rows the activity extractors count: items created over time, and members' visits."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    """Something created at ``created_at`` (NULL: creation time unknown, never counted)."""

    created_at = models.DateTimeField(null=True, db_index=True)
    kind = models.CharField(max_length=16, default="a")
    published_on = models.DateField(null=True)


class Member(models.Model):
    """A user of the test project (the activity extractors count distinct members)."""

    name = models.CharField(max_length=32)
    #: When the member signed up (cohorts); NULL: unknown, in no cohort.
    joined_at = models.DateTimeField(null=True)


class Visit(models.Model):
    """One visit of a member (or of an anonymous visitor: NULL member) at ``at``."""

    member = models.ForeignKey(Member, null=True, on_delete=models.CASCADE)
    item = models.ForeignKey(Item, null=True, on_delete=models.CASCADE)
    at = models.DateTimeField(db_index=True)
