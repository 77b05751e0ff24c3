"""Built-in extractors for the usual activity metrics: rows created per day, active users.

``SMOLQWERY_EXTRACTORS`` names classes that smolqwery instantiates without arguments, so these
extractors are configured by a three-line subclass in the project, with class attributes::

    class SignupsPerDay(CountPerDay):
        model = "auth.User"
        datetime_field = "date_joined"

Every figure is computed by the database (one aggregate query per day, never a loop over rows in
Python), over the local day ``[date_start, date_end)`` the runner passes: days of Django's
``TIME_ZONE``, 23 or 25 hours long when the clocks change. A misconfigured subclass raises
:class:`ActivityConfigurationError`, a :class:`~smolqwery.errors.SchemaError`, so that
``manage.py check`` reports it (``smolqwery.E003``) with the attribute to fix.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Count, Q
from django.db.models.constants import LOOKUP_SEP
from django.utils import timezone

from .days import day_window
from .errors import ActivityConfigurationError
from .interface import BaseExtractor
from .vocabulary import ExtractorType, snake_case, sq_field

__all__ = [
    "ActiveUsers",
    "ActivityConfigurationError",
    "CountPerDay",
    "DailyActiveUsers",
    "DailyCount",
]

R = TypeVar("R")


@dataclasses.dataclass
class DailyCount:
    """Rows created per day, and how many existed at the end of the day."""

    count: int = sq_field(description="Rows created that day")
    total: int = sq_field(
        differentiate=True, description="Rows created up to the end of that day (running total)"
    )


@dataclasses.dataclass
class DailyActiveUsers:
    """Distinct active users over the day and the 7 and 30 days ending with it."""

    dau: int = sq_field(description="Distinct users active that day")
    wau: int = sq_field(description="Distinct users active in the 7 days ending that day")
    mau: int = sq_field(description="Distinct users active in the 30 days ending that day")


class _ActivityExtractor(BaseExtractor[R]):
    """Shared configuration: where the rows come from and which datetime places them in days."""

    #: The model whose rows are counted: a model class or ``"app_label.ModelName"``.
    model: ClassVar[type[models.Model] | str | None] = None
    #: Instead of ``model``: a queryset or manager, or a callable returning one (e.g. a lambda
    #: filtering the rows to count; called for every day). Only one of the two may be set.
    queryset: ClassVar[Any] = None
    #: The ``DateTimeField`` placing a row in a day; ``__`` paths through relations work.
    datetime_field: ClassVar[str | None] = None
    #: Warehouse table name; defaults to the subclass name in snake case.
    table_name: ClassVar[str | None] = None
    #: Table description; a sentence naming the model and field by default.
    description: ClassVar[str | None] = None
    #: Period views to create on top of the daily table (``"week"``, ``"month"``).
    rollups: ClassVar[tuple[str, ...]] = ()

    # -- configuration -------------------------------------------------------------------

    def _fail(self, problem: str, fix: str) -> ActivityConfigurationError:
        return ActivityConfigurationError(f"{self.get_name()}: {problem}. {fix}")

    def get_queryset(self) -> models.QuerySet[Any]:
        """A fresh queryset of the rows to count; override it when attributes are not enough."""
        model = self.model
        source = inspect.getattr_static(type(self), "queryset", None)
        if isinstance(source, (staticmethod, classmethod)):
            source = source.__get__(None, type(self))
        how = (
            f"Subclass {type(self).__name__} and set model = 'app_label.ModelName' or "
            "queryset = lambda: Model.objects.filter(...)"
        )
        if model is not None and source is not None:
            raise self._fail("both model and queryset are set", "Keep only one of them")
        if source is not None:
            value = source() if callable(source) else source
            if isinstance(value, models.Manager):
                value = value.all()
            if not isinstance(value, models.QuerySet):
                raise self._fail(
                    f"queryset gave {type(value).__name__}, not a QuerySet",
                    "Set queryset to a QuerySet or to a callable returning one",
                )
            queryset: models.QuerySet[Any] = value.all()
            return queryset
        if model is None:
            raise self._fail("no model and no queryset", how)
        default: models.QuerySet[Any] = self._resolve_model(model)._default_manager.all()
        return default

    def _resolve_model(self, model: type[models.Model] | str) -> type[models.Model]:
        if isinstance(model, type) and issubclass(model, models.Model):
            return model
        if isinstance(model, str):
            try:
                return apps.get_model(model)
            except (LookupError, ValueError) as exc:
                raise self._fail(
                    f"model {model!r} is not an installed model ({exc})",
                    "Use 'app_label.ModelName', e.g. model = 'auth.User'",
                ) from None
        raise self._fail(
            f"model is {model!r}", "Set it to a model class or to 'app_label.ModelName'"
        )

    def _resolve_path(self, attribute: str, path: object) -> object:
        """The model field at the end of ``path`` (``"created"``, ``"order__created"``)."""
        if not isinstance(path, str) or not path:
            raise self._fail(
                f"{attribute} is {path!r}",
                f"Set {attribute} to the name of a field of "
                f"{self.get_queryset().model._meta.label}",
            )
        current = self.get_queryset().model
        parts = path.split(LOOKUP_SEP)
        for i, part in enumerate(parts):
            try:
                field = current._meta.get_field(part)
            except FieldDoesNotExist:
                names = sorted(f.name for f in current._meta.get_fields())
                raise self._fail(
                    f"{attribute} {path!r}: {current._meta.label} has no field {part!r}",
                    f"Its fields are {', '.join(names)}",
                ) from None
            if i == len(parts) - 1:
                return field
            related = field.related_model if field.is_relation else None
            if not isinstance(related, type):
                raise self._fail(
                    f"{attribute} {path!r}: {current._meta.label}.{part} is not a relation",
                    "Only relations can be followed with '__'",
                )
            current = related
        raise AssertionError("unreachable")  # pragma: no cover

    def get_datetime_field(self) -> str:
        """The validated ``datetime_field`` path."""
        path = self.datetime_field
        field = self._resolve_path("datetime_field", path)
        if not isinstance(field, models.DateTimeField):
            raise self._fail(
                f"datetime_field {path!r} is a {type(field).__name__}, not a DateTimeField",
                "Day boundaries are instants (local midnights), so the field must be a "
                "DateTimeField",
            )
        assert isinstance(path, str)
        return path

    def check_configuration(self) -> None:
        """Raise :class:`ActivityConfigurationError` naming the first wrong attribute."""
        self.get_datetime_field()

    def _source_label(self) -> str:
        return str(self.get_queryset().model._meta.label)

    # -- BaseExtractor -------------------------------------------------------------------

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_table_name(self) -> str:
        # Validated here because this is what ``manage.py check`` asks first.
        self.check_configuration()
        return self.table_name or snake_case(type(self).__name__)

    def get_table_description(self) -> str:
        if self.description is not None:
            return self.description
        return self._default_description()

    def _default_description(self) -> str:
        return ""

    def get_rollups(self) -> tuple[str, ...]:
        return tuple(self.rollups)

    def _bounds(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> tuple[datetime.datetime, datetime.datetime]:
        return _db_datetime(date_start), _db_datetime(date_end)


def _local_tz() -> datetime.tzinfo:
    return timezone.get_default_timezone()


def _db_datetime(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as the database compares it: aware with ``USE_TZ``, naive local time without."""
    if django_settings.USE_TZ:
        if timezone.is_naive(moment):
            return timezone.make_aware(moment, _local_tz())
        return moment
    if timezone.is_aware(moment):
        return timezone.make_naive(moment, _local_tz())
    return moment


def _local_day(moment: datetime.datetime) -> datetime.date:
    """The ``TIME_ZONE`` day that starts at ``moment`` (a local midnight)."""
    if timezone.is_naive(moment):
        return moment.date()
    return moment.astimezone(_local_tz()).date()


class CountPerDay(_ActivityExtractor[DailyCount]):
    """Rows created each day (``count``) and the running total at the end of it (``total``).

    ``total`` is differentiated, so ``<table>_delta`` shows its day-over-day change; rows whose
    datetime is NULL are in neither figure. Weekly and monthly views are created by default.
    """

    rollups: ClassVar[tuple[str, ...]] = ("week", "month")

    def get_dataclass(self) -> type[DailyCount]:
        return DailyCount

    def _default_description(self) -> str:
        return (
            f"Rows of {self._source_label()} created per day (by {self.datetime_field}), "
            "and their running total"
        )

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[DailyCount]:
        field = self.get_datetime_field()
        start, end = self._bounds(date_start, date_end)
        # One query: the range filter uses an index on the field; the day is a filtered COUNT.
        figures = (
            self.get_queryset()
            .filter(**{f"{field}__lt": end})
            .aggregate(
                count=Count("pk", filter=Q(**{f"{field}__gte": start})),
                total=Count("pk"),
            )
        )
        yield DailyCount(count=figures["count"], total=figures["total"])


class ActiveUsers(_ActivityExtractor[DailyActiveUsers]):
    """Distinct users with at least one row that day (``dau``) and in the 7 and 30 days ending
    with it (``wau``, ``mau``).

    The windows are calendar days of ``TIME_ZONE``: ``wau`` counts from local midnight six days
    before the day, whatever the clocks did in between, so the ``wau`` of a Sunday is exactly
    the users active in that ISO week. Rows without a user (NULL) are not counted.
    """

    #: Field naming who was active: a foreign key to the user (``"user"``), a path to one
    #: (``"session__user"``), or any column identifying a visitor.
    user_field: ClassVar[str] = "user"

    def get_dataclass(self) -> type[DailyActiveUsers]:
        return DailyActiveUsers

    def get_user_field(self) -> str:
        """The validated ``user_field`` path."""
        self._resolve_path("user_field", self.user_field)
        return self.user_field

    def check_configuration(self) -> None:
        super().check_configuration()
        self.get_user_field()

    def _default_description(self) -> str:
        return (
            f"Distinct {self.user_field} of {self._source_label()} active per day "
            f"(by {self.datetime_field}), and over the 7 and 30 days ending that day"
        )

    def window_start(self, day: datetime.date, days: int) -> datetime.datetime:
        """Local midnight ``days - 1`` calendar days before ``day`` (not a multiple of 24 h)."""
        start = day_window(day - datetime.timedelta(days=days - 1), _local_tz()).start
        return _db_datetime(start)

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[DailyActiveUsers]:
        field = self.get_datetime_field()
        user = self.get_user_field()
        start, end = self._bounds(date_start, date_end)
        day = _local_day(date_start)
        week_start = self.window_start(day, 7)
        month_start = self.window_start(day, 30)
        # One query over the 30 days; the shorter windows are filtered COUNT(DISTINCT)s.
        figures = (
            self.get_queryset()
            .filter(**{f"{field}__gte": month_start, f"{field}__lt": end})
            .aggregate(
                dau=Count(user, distinct=True, filter=Q(**{f"{field}__gte": start})),
                wau=Count(user, distinct=True, filter=Q(**{f"{field}__gte": week_start})),
                mau=Count(user, distinct=True),
            )
        )
        yield DailyActiveUsers(dau=figures["dau"], wau=figures["wau"], mau=figures["mau"])
