"""Cohort retention (:mod:`smolqwery.cohorts`) against a brute-force computation, and its
``_retention`` view on DuckDB and on the BigQuery emulator.

The brute force places every sign-up and visit in its local day with ``astimezone`` and counts
in Python; the extractor computes with local-midnight bounds in the database. Random members
(some without a sign-up date, some never active) and visits over two months that contain the
autumn DST change (2024-10-27, a 25-hour Sunday that ends an ISO week).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolqwery.cohort_views import is_cohort_table
from smolqwery.cohorts import CohortRetention, period_first_day
from smolqwery.days import day_window
from smolqwery.errors import SchemaError
from smolqwery.sql_views import render_view_sql, views_of
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows

from .activityapp.extractors import MonthlyRetention, WeeklyRetention
from .activityapp.models import Member, Visit
from .fixtures.warehouses import PARIS, make_batch

D = datetime.date
SPAN_START = D(2024, 9, 30)  # a Monday
SPAN_DAYS = 62  # to 2024-11-30, a month's last day
SPAN = [SPAN_START + datetime.timedelta(days=i) for i in range(SPAN_DAYS)]


def rows_of(extractor: CohortRetention, day: D) -> list[tuple[Any, ...]]:
    window = day_window(day, timezone.get_default_timezone())
    return [
        (r.cohort, r.periods_later, r.measured_period, r.cohort_size, r.active)
        for r in extractor.extract(window.start, window.end)
    ]


def brute_force(
    extractor: CohortRetention,
    day: D,
    members: list[datetime.datetime | None],
    visits: list[tuple[int, datetime.datetime]],
) -> list[tuple[Any, ...]]:
    period = extractor.period
    if period_first_day(period, day + datetime.timedelta(days=1)) == period_first_day(period, day):
        return []
    measured = period_first_day(period, day)

    def local(moment: datetime.datetime) -> D:
        return moment.astimezone(PARIS).date()

    out = []
    for n in range(extractor.periods + 1):
        cohort = period_first_day(period, day, -n)
        ids = {
            i
            for i, joined in enumerate(members)
            if joined is not None and period_first_day(period, local(joined)) == cohort
        }
        active = {
            i for i, at in visits if i in ids and period_first_day(period, local(at)) == measured
        }
        out.append((cohort, n, measured, len(ids), len(active)))
    return out


moments = st.builds(
    lambda day, minute: (
        datetime.datetime.combine(
            SPAN_START - datetime.timedelta(days=40) + datetime.timedelta(days=day),
            datetime.time(),
            datetime.timezone.utc,
        )
        + datetime.timedelta(minutes=minute)
    ),
    st.integers(0, SPAN_DAYS + 40),
    st.integers(-120, 24 * 60 + 120),
)


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    members=st.lists(st.none() | moments, max_size=12),
    visits=st.lists(st.tuples(st.integers(0, 11), moments), max_size=40),
)
def test_cohorts_match_brute_force(
    members: list[datetime.datetime | None], visits: list[tuple[int, datetime.datetime]]
) -> None:
    Visit.objects.all().delete()
    Member.objects.all().delete()
    people = Member.objects.bulk_create(
        Member(name=f"m{i}", joined_at=joined) for i, joined in enumerate(members)
    )
    kept = [(i, at) for i, at in visits if i < len(people)]
    Visit.objects.bulk_create(Visit(member=people[i], at=at) for i, at in kept)
    for extractor in (WeeklyRetention(), MonthlyRetention()):
        for day in SPAN:
            if extractor.period == "week" and day.weekday() not in (5, 6):
                continue  # the non-Sunday days are all alike; Saturdays stay as a sample
            assert rows_of(extractor, day) == brute_force(extractor, day, members, kept), (
                extractor.period,
                day,
            )


@pytest.mark.django_db
def test_dst_sunday_empty_cohorts_and_inactive_users() -> None:
    """The 25-hour Sunday belongs to its week; an empty cohort has size 0; a member without
    a visit counts in its cohort's size only; a member without sign-up date in none."""
    early, _quiet, unknown = Member.objects.bulk_create(
        [
            Member(name="early", joined_at=datetime.datetime(2024, 10, 14, 0, 30, tzinfo=PARIS)),
            Member(name="quiet", joined_at=datetime.datetime(2024, 10, 27, 23, 30, tzinfo=PARIS)),
            Member(name="unknown", joined_at=None),
        ]
    )
    Visit.objects.bulk_create(
        [
            # 02:30 happens twice on 2024-10-27; this is the second one (CET), still Sunday.
            Visit(
                member=early,
                at=datetime.datetime(2024, 10, 27, 1, 30, tzinfo=datetime.timezone.utc),
            ),
            Visit(member=unknown, at=datetime.datetime(2024, 10, 27, 12, 0, tzinfo=PARIS)),
            Visit(member=None, at=datetime.datetime(2024, 10, 27, 12, 0, tzinfo=PARIS)),
        ]
    )
    assert rows_of(WeeklyRetention(), D(2024, 10, 27)) == [
        (D(2024, 10, 21), 0, D(2024, 10, 21), 1, 0),  # quiet: signed up, never came
        (D(2024, 10, 14), 1, D(2024, 10, 21), 1, 1),  # early: came back the next week
        (D(2024, 10, 7), 2, D(2024, 10, 21), 0, 0),  # nobody joined
        (D(2024, 9, 30), 3, D(2024, 10, 21), 0, 0),
    ]
    assert rows_of(WeeklyRetention(), D(2024, 10, 26)) == []


def test_configuration_errors() -> None:
    class NotARelation(WeeklyRetention):
        user_field = "at"

    class NotADateTime(WeeklyRetention):
        signup_field = "name"

    class Yearly(WeeklyRetention):
        period = "year"

    for cls, words in (
        (NotARelation, "not a relation"),
        (NotADateTime, "CharField"),
        (Yearly, "period"),
    ):
        with pytest.raises(SchemaError, match=words):
            cls().get_table_name()


def test_retention_view(warehouse: Warehouse) -> None:
    """The view on each warehouse: the share, NULL for an empty cohort."""
    table = WeeklyRetention().get_schema()
    assert is_cohort_table(table)
    assert views_of(table) == [("weekly_retention_retention", "retention")]
    warehouse.create_table(table)
    sunday = D(2024, 10, 27)
    rows = [
        {
            "date": sunday,
            "cohort": D(2024, 10, 21),
            "periods_later": 0,
            "measured_period": D(2024, 10, 21),
            "cohort_size": 4,
            "active": 3,
        },
        {
            "date": sunday,
            "cohort": D(2024, 10, 14),
            "periods_later": 1,
            "measured_period": D(2024, 10, 21),
            "cohort_size": 0,
            "active": 0,
        },
    ]
    warehouse.replace_days(make_batch(table, sunday, rows=rows))
    warehouse.create_or_replace_view(
        "weekly_retention_retention", render_view_sql("retention", table, warehouse)
    )
    found = fetch_rows(warehouse, "weekly_retention_retention", order_by=["periods_later"])
    assert [(r["periods_later"], r["retention"]) for r in found] == [(0, 0.75), (1, None)]


@pytest.mark.django_db
def test_metrics_page_shows_the_triangle(settings: Any, tmp_path: Any) -> None:
    """The Metrics page's cohort table: one row per cohort of the range, shares per N."""
    from smolqwery.metrics_views import build_page
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "w.duckdb"
    settings.SMOLQWERY_DATASET = "cohort_page"
    settings.SMOLQWERY_EXTRACTORS = ["tests.activityapp.extractors.WeeklyRetention"]
    table = WeeklyRetention().get_schema()
    wh = DuckDBWarehouse(settings.SMOLQWERY_DUCKDB_PATH, "cohort_page", busy_timeout=10)
    wh.ensure_dataset()
    wh.create_table(table)
    rows = []
    for week in range(4):
        sunday = D(2024, 10, 6) + datetime.timedelta(weeks=week)
        measured = sunday - datetime.timedelta(days=6)
        for n in range(4):
            cohort = measured - datetime.timedelta(weeks=n)
            rows.append(
                {
                    "date": sunday,
                    "cohort": cohort,
                    "periods_later": n,
                    "measured_period": measured,
                    "cohort_size": 10 if cohort >= D(2024, 9, 30) else 0,
                    "active": 10 - 2 * n if cohort >= D(2024, 9, 30) else 0,
                }
            )
        wh.replace_days(
            make_batch(table, sunday - datetime.timedelta(days=6), sunday, rows=rows[-4:])
        )
    wh.close()
    page = build_page("day", D(2024, 9, 23), D(2024, 10, 20))
    assert page.error == ""
    (chart,) = page.charts
    assert chart.spec.style == "cohort"
    assert chart.data is not None
    assert chart.data.labels == [D(2024, 9, 23), D(2024, 9, 30), D(2024, 10, 7), D(2024, 10, 14)]
    assert chart.data.sizes == [0, 10, 10, 10]
    shares = [[values[i] for values in chart.data.values] for i in range(4)]
    assert shares[0] == [None, None, None, None]  # nobody joined that week
    assert shares[1] == [1.0, 0.8, 0.6, 0.4]
    assert shares[3] == [1.0, 0.8, None, None]  # measured twice by Sunday 2024-10-27
    assert chart.cohort_rows[1][2][1][0] == "80%"


def test_a_cohort_table_is_one_because_it_says_so() -> None:
    """The marker, not the columns: a project's table with a cohort table's columns gets no
    retention view; a migration written before the marker (its view operation names the
    kind, its table is unmarked) still renders the view, and asks for no new migration."""
    import dataclasses

    from smolqwery.cohort_views import render_retention
    from smolqwery.migration_diff import plan_changes
    from smolqwery.migration_state import WarehouseState
    from smolqwery.schema import TableSchema
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    marked = WeeklyRetention().get_schema()
    assert marked.cohort and marked.to_dict()["cohort"] is True
    assert TableSchema.from_dict(marked.to_dict()) == marked
    lookalike = dataclasses.replace(marked, cohort=False)  # same name, columns, kind
    assert not is_cohort_table(lookalike)
    assert views_of(lookalike) == []
    assert "cohort" not in lookalike.to_dict()

    # The migration files of before: the table unmarked, its retention view named by kind.
    wh = DuckDBWarehouse("unused.duckdb", "analytics")
    assert "retention" in render_retention(lookalike, wh)
    with pytest.raises(ValueError, match="cohort table's columns"):
        render_retention(dataclasses.replace(lookalike, columns=lookalike.columns[:-1]), wh)
    state = WarehouseState()
    state.add_table(lookalike, ("analytics", "0001"), legacy=False)
    state.add_view("weekly_retention_retention", "retention", lookalike, ("analytics", "0001"))
    assert plan_changes(state, [marked]).empty
