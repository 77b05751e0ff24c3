"""Cohort retention, built in next to :class:`~smolqwery.activity.ActiveUsers`.

Users are grouped by the ISO week (or month) of their sign-up: a *cohort*. For every cohort,
the retention ``N`` periods later is the share of its users with at least one activity row in
the period ``N`` periods after the sign-up period. A share over a period can only be computed
once the period is over, and distinct users cannot be summed from daily figures, so the
extractor writes its rows on the last day of each period (Sunday, or the month's last day):
one row per cohort from ``N = 0`` (the sign-up period itself) to ``N = periods``, with the
cohort's size and how many of its users were active. Other days hold no row. A cohort nobody
joined has size 0 and retention NULL; a user who never acts counts in the size only.

Configured like the other activity extractors, with class attributes::

    class WeeklyRetention(CohortRetention):
        model = "shop.Visit"            # activity rows (or queryset = ...)
        datetime_field = "at"           # when the activity happened
        user_field = "customer"         # a relation to the user
        signup_field = "signed_up_at"   # the user's sign-up DateTimeField
        period = "week"                 # or "month"

Migrations create the view ``<table>_retention`` on both warehouses
(:mod:`smolqwery.cohort_views`): the same rows with the share ``retention = active /
cohort_size``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import ClassVar

from django.db import models
from django.db.models import Count, Q
from django.db.models.constants import LOOKUP_SEP

from .activity import _ActivityExtractor, _db_datetime, _local_day, _local_tz
from .days import day_window
from .schema import TableSchema
from .vocabulary import ExtractorType, sq_field

__all__ = ["CohortRetention", "CohortRow"]

COHORT_PERIODS = ("week", "month")


@dataclasses.dataclass
class CohortRow:
    """One cohort measured in one period (the row's date is that period's last day)."""

    cohort: datetime.date = sq_field(  # noqa: RUF009 - a dataclasses.field() factory
        description="First day of the sign-up period (ISO week's Monday or month's 1st)"
    )
    periods_later: int = sq_field(
        description="Periods from the sign-up period to the measured one (0: the same)"
    )
    measured_period: datetime.date = sq_field(  # noqa: RUF009
        description="First day of the period in which activity was measured"
    )
    cohort_size: int = sq_field(description="Users who signed up in the cohort's period")
    active: int = sq_field(description="Users of the cohort active in the measured period")


def period_first_day(period: str, day: datetime.date, shift: int = 0) -> datetime.date:
    """First day of the ISO week or month of ``day``, moved by ``shift`` periods."""
    if period == "week":
        return day - datetime.timedelta(days=day.weekday()) + datetime.timedelta(weeks=shift)
    months = day.year * 12 + day.month - 1 + shift
    return datetime.date(months // 12, months % 12 + 1, 1)


def is_period_end(period: str, day: datetime.date) -> bool:
    return period_first_day(period, day + datetime.timedelta(days=1)) != period_first_day(
        period, day
    )


class CohortRetention(_ActivityExtractor[CohortRow]):
    """Weekly (or monthly) sign-up cohorts and how many of each are active N periods later."""

    #: The relation from an activity row to its user (a foreign key, or a path to one).
    user_field: ClassVar[str] = "user"
    #: The user's sign-up ``DateTimeField`` (on the model ``user_field`` leads to).
    signup_field: ClassVar[str] = "date_joined"
    #: ``"week"`` (ISO weeks) or ``"month"``.
    period: ClassVar[str] = "week"
    #: How many periods after the sign-up period each cohort is followed.
    periods: ClassVar[int] = 12

    def get_dataclass(self) -> type[CohortRow]:
        return CohortRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_schema(self) -> TableSchema:
        """The table, marked as a cohort table: it gets the ``<table>_retention`` view."""
        return dataclasses.replace(super().get_schema(), cohort=True)

    def _user_model(self) -> type[models.Model]:
        field = self._resolve_path("user_field", self.user_field)
        related = getattr(field, "related_model", None)
        if not (getattr(field, "is_relation", False) and isinstance(related, type)):
            raise self._fail(
                f"user_field {self.user_field!r} is not a relation to the users",
                "Cohorts are formed from the users' sign-up dates: point user_field at a "
                "foreign key to the user model",
            )
        return related

    def get_signup_field(self) -> str:
        """The validated ``signup_field`` name on the user model."""
        model = self._user_model()
        try:
            field = model._meta.get_field(self.signup_field)
        except Exception:
            raise self._fail(
                f"signup_field {self.signup_field!r}: {model._meta.label} has no such field",
                "Set signup_field to the users' sign-up DateTimeField",
            ) from None
        if not isinstance(field, models.DateTimeField):
            raise self._fail(
                f"signup_field {self.signup_field!r} is a {type(field).__name__}",
                "Set signup_field to a DateTimeField (sign-ups are placed in local days)",
            )
        return self.signup_field

    def check_configuration(self) -> None:
        super().check_configuration()
        if self.period not in COHORT_PERIODS:
            raise self._fail(f"period is {self.period!r}", "Set period = 'week' or 'month'")
        if not isinstance(self.periods, int) or not 0 <= self.periods <= 520:
            raise self._fail(f"periods is {self.periods!r}", "Set periods to an int, 0 to 520")
        self.get_signup_field()

    def _default_description(self) -> str:
        return (
            f"{self.period.capitalize()}ly sign-up cohorts of {self._user_model()._meta.label} "
            f"(by {self.signup_field}) and their users active in {self._source_label()} "
            f"up to {self.periods} {self.period}s later; one row per cohort on each "
            f"{self.period}'s last day"
        )

    def _bounds_of(self, first_day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
        """Local midnights starting the period of ``first_day`` and the next one."""
        tz = _local_tz()
        following = period_first_day(self.period, first_day, 1)
        return (
            _db_datetime(day_window(first_day, tz).start),
            _db_datetime(day_window(following, tz).start),
        )

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[CohortRow]:
        day = _local_day(date_start)
        if not is_period_end(self.period, day):
            return
        field = self.get_datetime_field()
        signup = self.get_signup_field()
        user = self.user_field
        measured = period_first_day(self.period, day)
        cohorts = [period_first_day(self.period, day, -n) for n in range(self.periods + 1)]
        bounds = [self._bounds_of(c) for c in cohorts]
        oldest, newest_end = bounds[-1][0], bounds[0][1]
        # Two aggregate queries, one filtered COUNT per cohort in each: sizes, then actives.
        sizes = (
            self._user_model()
            ._default_manager.filter(**{f"{signup}__gte": oldest, f"{signup}__lt": newest_end})
            .aggregate(
                **{
                    f"c{n}": Count("pk", filter=Q(**{f"{signup}__gte": a, f"{signup}__lt": b}))
                    for n, (a, b) in enumerate(bounds)
                }
            )
        )
        start, end = self._bounds_of(measured)
        path = f"{user}{LOOKUP_SEP}{signup}"
        active = (
            self.get_queryset()
            .filter(**{f"{field}__gte": start, f"{field}__lt": end})
            .filter(**{f"{path}__gte": oldest, f"{path}__lt": newest_end})
            .aggregate(
                **{
                    f"c{n}": Count(
                        user, distinct=True, filter=Q(**{f"{path}__gte": a, f"{path}__lt": b})
                    )
                    for n, (a, b) in enumerate(bounds)
                }
            )
        )
        for n, cohort in enumerate(cohorts):
            yield CohortRow(
                cohort=cohort,
                periods_later=n,
                measured_period=measured,
                cohort_size=int(sizes[f"c{n}"]),
                active=int(active[f"c{n}"]),
            )
