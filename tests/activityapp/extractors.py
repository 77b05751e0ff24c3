"""The built-in activity extractors configured the way a project would, good and bad."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from smolqwery.activity import ActiveUsers, CountPerDay
from smolqwery.cohorts import CohortRetention

from .models import Item, Visit


class ItemsPerDay(CountPerDay):
    model = "activityapp.Item"
    datetime_field = "created_at"


class KindBItems(CountPerDay):
    """A queryset instead of a model: only items of kind "b"."""

    queryset = staticmethod(lambda: Item.objects.filter(kind="b"))
    datetime_field = "created_at"
    table_name = "b_items"
    rollups = ()


class KindBItemsLambda(CountPerDay):
    """The same with a plain lambda in the class body (no staticmethod)."""

    queryset = lambda: Item.objects.filter(kind="b")  # noqa: E731
    datetime_field = "created_at"


class KindBItemsQuerySet(CountPerDay):
    """The same with a QuerySet attribute (cloned for every day, never evaluated itself)."""

    queryset = Item.objects.filter(kind="b")
    datetime_field = "created_at"


class AllItemsManager(CountPerDay):
    """A manager works like a model."""

    queryset = Item.objects
    datetime_field = "created_at"


class SignupsPerDay(CountPerDay):
    """The docs example."""

    model = "auth.User"
    datetime_field = "date_joined"
    table_name = "signups"


class ActiveMembers(ActiveUsers):
    model = Visit
    datetime_field = "at"
    user_field = "member"


class ActiveMembersOfBItems(ActiveUsers):
    """Custom ``get_queryset`` and a datetime reached through a relation."""

    datetime_field = "item__created_at"
    user_field = "member_id"

    def get_queryset(self) -> QuerySet[Any]:
        return Visit.objects.filter(item__kind="b")


# -- misconfigured: each must be reported by ``manage.py check`` (smolqwery.E003) ------------


class NoSource(CountPerDay):
    datetime_field = "created_at"


class BothSources(CountPerDay):
    model = Item
    queryset = Item.objects.all()
    datetime_field = "created_at"


class UnknownModel(CountPerDay):
    model = "activityapp.Nope"
    datetime_field = "created_at"


class MissingField(CountPerDay):
    model = Item
    datetime_field = "created"


class NoDatetimeField(CountPerDay):
    model = Item


class DateFieldNotDatetime(CountPerDay):
    model = Item
    datetime_field = "published_on"


class NotARelation(CountPerDay):
    model = Item
    datetime_field = "kind__created_at"


class QuerysetNotAQueryset(CountPerDay):
    queryset = staticmethod(lambda: [1, 2, 3])
    datetime_field = "created_at"


class MissingUserField(ActiveUsers):
    model = Visit
    datetime_field = "at"
    user_field = "user"


class WeeklyRetention(CohortRetention):
    """Members' weekly sign-up cohorts, followed three weeks."""

    model = "activityapp.Visit"
    datetime_field = "at"
    user_field = "member"
    signup_field = "joined_at"
    periods = 3


class MonthlyRetention(WeeklyRetention):
    period = "month"
    periods = 2
