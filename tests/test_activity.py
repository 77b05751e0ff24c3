"""Built-in activity extractors and the week/month rollup views.

Every figure of the extractors is compared with a brute-force count in Python over random rows
(local dates computed one row at a time, independently of the extractors' window arithmetic),
on the suite's database (SQLite or PostgreSQL). The rollup views are compared with sums of the
daily table on DuckDB and on the BigQuery emulator.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from smolqwery.activity import ActiveUsers, ActivityConfigurationError, CountPerDay
from smolqwery.checks import check_extractors
from smolqwery.days import date_range, day_window
from smolqwery.extractor import BaseExtractor, ExtractorType
from smolqwery.operations import create_view
from smolqwery.runner import export
from smolqwery.schema import Column, TableSchema, build_table_schema
from smolqwery.sql_views import render_view_sql, rollup_days_column, views_of
from smolqwery.warehouses.base import Warehouse
from smolqwery.warehouses.testing import fetch_rows

from .activityapp.extractors import (
    ActiveMembers,
    ActiveMembersOfBItems,
    AllItemsManager,
    ItemsPerDay,
    KindBItems,
    KindBItemsLambda,
    KindBItemsQuerySet,
    SignupsPerDay,
)
from .activityapp.models import Item, Member, Visit
from .fixtures.warehouses import make_batch

pytestmark = pytest.mark.source_db

D = datetime.date
UTC = datetime.timezone.utc
ONE_DAY = datetime.timedelta(days=1)
PARIS = ZoneInfo("Europe/Paris")

#: Days the random rows are spread over (enough history for the 30-day windows checked).
SPANS = ((D(2024, 2, 1), D(2024, 4, 8)), (D(2024, 9, 20), D(2024, 11, 10)))
#: Days left without any row, inside the checked days.
EMPTY_DAYS = frozenset({D(2024, 3, 27), D(2024, 3, 28), D(2024, 10, 29), D(2024, 3, 12)})
#: Days whose figures are checked: around the Paris and New York DST changes (2024-03-10,
#: 03-31, 10-27, 11-03), ISO-week and month boundaries (Sunday 03-31 → Monday 04-01), gaps.
CHECKED_DAYS = (
    date_range(D(2024, 3, 7), D(2024, 3, 14))
    + date_range(D(2024, 3, 24), D(2024, 4, 6))
    + date_range(D(2024, 10, 24), D(2024, 11, 6))
)


def local_day(moment: datetime.datetime, tz: datetime.tzinfo) -> D:
    return moment.astimezone(tz).date()


def random_instant(rng: random.Random, tz: datetime.tzinfo) -> datetime.datetime:
    """An aware instant, often on or near a local midnight or a DST change (the hard cases)."""
    first, last = rng.choice(SPANS)
    day = first + datetime.timedelta(days=rng.randrange((last - first).days + 1))
    window = day_window(day, tz)
    length = window.end - window.start
    mode = rng.randrange(7)
    if mode == 0:
        moment = window.start  # exactly midnight: belongs to ``day``
    elif mode == 1:
        moment = window.end - datetime.timedelta(microseconds=1)  # last instant of ``day``
    elif mode == 2:
        moment = window.start + datetime.timedelta(seconds=rng.randrange(5400))
    elif mode == 3:
        moment = window.end - datetime.timedelta(seconds=rng.randrange(1, 5400))
    elif mode == 4:
        # Around the clock changes (01:00 UTC in Europe, 07:00/06:00 UTC in New York).
        change = rng.choice(
            [
                datetime.datetime(2024, 3, 31, 1, tzinfo=UTC),
                datetime.datetime(2024, 10, 27, 1, tzinfo=UTC),
                datetime.datetime(2024, 3, 10, 7, tzinfo=UTC),
                datetime.datetime(2024, 11, 3, 6, tzinfo=UTC),
            ]
        )
        moment = change + datetime.timedelta(seconds=rng.randrange(-3 * 3600, 3 * 3600))
    else:
        moment = window.start + length * rng.random()
    return moment.astimezone(UTC)


def random_instants(rng: random.Random, n: int, tz: datetime.tzinfo) -> list[datetime.datetime]:
    out: list[datetime.datetime] = []
    while len(out) < n:
        moment = random_instant(rng, tz)
        if local_day(moment, tz) not in EMPTY_DAYS:
            out.append(moment)
    return out


def extract_one(extractor: BaseExtractor[Any], day: D) -> dict[str, Any]:
    """The extractor's row for ``day``, called the way the runner calls it."""
    window = day_window(day, timezone.get_default_timezone())
    rows = list(extractor.extract(window.start, window.end))
    assert len(rows) == 1
    return dataclasses.asdict(rows[0])


# -- brute force ----------------------------------------------------------------------------


def expected_counts(
    created: Iterable[datetime.datetime | None], days: Iterable[D], tz: datetime.tzinfo
) -> dict[D, dict[str, int]]:
    local = [local_day(c, tz) for c in created if c is not None]
    return {
        d: {"count": sum(1 for x in local if x == d), "total": sum(1 for x in local if x <= d)}
        for d in days
    }


def expected_active(
    visits: Iterable[tuple[datetime.datetime, int | None]],
    days: Iterable[D],
    tz: datetime.tzinfo,
) -> dict[D, dict[str, int]]:
    local = [(local_day(at, tz), who) for at, who in visits if who is not None]

    def distinct(d: D, span: int) -> int:
        since = d - datetime.timedelta(days=span - 1)
        return len({who for day, who in local if since <= day <= d})

    return {d: {"dau": distinct(d, 1), "wau": distinct(d, 7), "mau": distinct(d, 30)} for d in days}


# -- data -----------------------------------------------------------------------------------


def make_items(rng: random.Random, n: int, tz: datetime.tzinfo) -> list[Item]:
    items = [
        Item(created_at=moment, kind=rng.choice("ab")) for moment in random_instants(rng, n, tz)
    ]
    items += [Item(created_at=None, kind="b") for _ in range(5)]  # never counted
    return Item.objects.bulk_create(items)


def make_visits(
    rng: random.Random, n: int, tz: datetime.tzinfo, members: int = 25
) -> list[tuple[datetime.datetime, int | None]]:
    people = Member.objects.bulk_create(Member(name=f"m{i}") for i in range(members))
    visits = [
        # One visit in ten is anonymous (NULL member): never counted.
        Visit(at=moment, member=None if rng.random() < 0.1 else rng.choice(people))
        for moment in random_instants(rng, n, tz)
    ]
    Visit.objects.bulk_create(visits)
    return [(v.at, v.member_id) for v in visits]


TIME_ZONES = ["Europe/Paris", "America/New_York"]


@pytest.mark.django_db
@pytest.mark.parametrize("tz_name", TIME_ZONES)
@pytest.mark.parametrize("seed", [1, 2])
def test_count_per_day_matches_brute_force(settings: Any, tz_name: str, seed: int) -> None:
    settings.TIME_ZONE = tz_name
    tz = ZoneInfo(tz_name)
    rng = random.Random(seed)
    items = make_items(rng, 400, tz)
    everything = expected_counts((i.created_at for i in items), CHECKED_DAYS, tz)
    kind_b = expected_counts((i.created_at for i in items if i.kind == "b"), CHECKED_DAYS, tz)
    for day in CHECKED_DAYS:
        assert extract_one(ItemsPerDay(), day) == everything[day], day
        assert extract_one(KindBItems(), day) == kind_b[day], day
        assert extract_one(KindBItemsLambda(), day) == kind_b[day], day
        assert extract_one(KindBItemsQuerySet(), day) == kind_b[day], day
        assert extract_one(AllItemsManager(), day) == everything[day], day
    # The data is not degenerate: empty days, and days with rows on both sides of a DST change.
    assert all(everything[d]["count"] == 0 for d in EMPTY_DAYS if d in everything)
    assert everything[D(2024, 3, 31)]["count"] > 0 and everything[D(2024, 10, 27)]["count"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize("tz_name", TIME_ZONES)
@pytest.mark.parametrize("seed", [1, 2])
def test_active_users_match_brute_force(settings: Any, tz_name: str, seed: int) -> None:
    settings.TIME_ZONE = tz_name
    tz = ZoneInfo(tz_name)
    rng = random.Random(seed)
    visits = make_visits(rng, 700, tz)
    expected = expected_active(visits, CHECKED_DAYS, tz)
    for day in CHECKED_DAYS:
        assert extract_one(ActiveMembers(), day) == expected[day], day
    figures = list(expected.values())
    assert any(f["dau"] == 0 for f in figures)  # empty days are checked
    assert any(f["dau"] < f["wau"] < f["mau"] for f in figures)  # windows really differ


@pytest.mark.django_db
def test_one_aggregate_query_per_day(django_assert_num_queries: Any) -> None:
    """Figures come from the database in one query, whatever the number of rows."""
    make_items(random.Random(3), 200, PARIS)
    make_visits(random.Random(3), 200, PARIS)
    for extractor in (ItemsPerDay(), KindBItems(), ActiveMembers()):
        with django_assert_num_queries(1):
            extract_one(extractor, D(2024, 3, 31))


def _paris(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=PARIS)


@pytest.mark.django_db
def test_windows_are_calendar_days_across_dst() -> None:
    """``wau``/``mau`` start at local midnight N-1 calendar days before: not N x 24 hours."""
    early, late, month = Member.objects.bulk_create(
        [Member(name="early"), Member(name="late"), Member(name="month")]
    )
    Visit.objects.bulk_create(
        [
            # Saturday before the spring change, 23:30: 144 h before 2024-04-06 00:00 CEST is
            # 2024-03-30 23:00 CET, so "subtract 6 x 24 h" would wrongly count this for 04-06.
            Visit(member=early, at=_paris(2024, 3, 30, 23, 30)),
            # 00:30 on the autumn change day: "subtract 6 x 24 h" from 2024-11-02 00:00 CET
            # gives 2024-10-27 01:00 CEST and would wrongly miss it.
            Visit(member=late, at=_paris(2024, 10, 27, 0, 30)),
            # 30-day window across the spring change: "subtract 29 x 24 h" from 2024-04-05
            # 00:00 CEST gives 2024-03-06 23:00 CET and would wrongly count this for 04-05.
            Visit(member=month, at=_paris(2024, 3, 6, 23, 30)),
        ]
    )
    active = ActiveMembers()
    assert extract_one(active, D(2024, 4, 5))["wau"] == 1
    assert extract_one(active, D(2024, 4, 6))["wau"] == 0
    assert extract_one(active, D(2024, 11, 2))["wau"] == 1
    assert extract_one(active, D(2024, 11, 3))["wau"] == 0
    assert extract_one(active, D(2024, 4, 4))["mau"] == 2  # month and early
    assert extract_one(active, D(2024, 4, 5))["mau"] == 1  # early only
    # The DST days themselves: 23 and 25 hours, all of it counted.
    assert extract_one(active, D(2024, 10, 27))["dau"] == 1
    assert extract_one(active, D(2024, 3, 30))["dau"] == 1


@pytest.mark.django_db
def test_users_active_across_week_and_month_boundaries() -> None:
    """Sunday 2024-03-31 (last day of ISO week 13 and of March) then Monday 04-01."""
    alice, bob = Member.objects.bulk_create([Member(name="alice"), Member(name="bob")])
    Visit.objects.bulk_create(
        [
            Visit(member=alice, at=_paris(2024, 3, 31, 23, 59, 59)),
            Visit(member=alice, at=_paris(2024, 4, 1, 0, 0)),
            Visit(member=alice, at=_paris(2024, 4, 1, 8, 0)),
            Visit(member=bob, at=_paris(2024, 3, 25, 0, 0)),  # Monday of week 13
        ]
    )
    active = ActiveMembers()
    sunday = extract_one(active, D(2024, 3, 31))
    monday = extract_one(active, D(2024, 4, 1))
    # Sunday's wau is exactly ISO week 13 (Monday 03-25 to Sunday 03-31).
    assert sunday == {"dau": 1, "wau": 2, "mau": 2}
    # Alice is counted once on Monday although she was active twice, and once in the windows
    # although her visits straddle the week and month boundary; Bob's Monday 03-25 is the
    # eighth day back, just out of Monday's 7 days.
    assert monday == {"dau": 1, "wau": 1, "mau": 2}
    assert extract_one(active, D(2024, 4, 7)) == {"dau": 0, "wau": 1, "mau": 2}
    assert extract_one(active, D(2024, 4, 8)) == {"dau": 0, "wau": 0, "mau": 2}


@pytest.mark.django_db
def test_empty_tables_give_zeros() -> None:
    assert extract_one(ItemsPerDay(), D(2024, 3, 31)) == {"count": 0, "total": 0}
    assert extract_one(ActiveMembers(), D(2024, 3, 31)) == {"dau": 0, "wau": 0, "mau": 0}


@pytest.mark.django_db
def test_docs_example_counts_signups(settings: Any) -> None:
    """``auth.User`` by ``date_joined``, the example of docs/activity.md."""
    for i, joined in enumerate(
        [_paris(2024, 3, 30, 23, 59), _paris(2024, 3, 31, 0, 0), _paris(2024, 3, 31, 23, 59)]
    ):
        User.objects.create(username=f"u{i}", date_joined=joined)
    assert extract_one(SignupsPerDay(), D(2024, 3, 31)) == {"count": 2, "total": 3}
    assert SignupsPerDay().get_table_name() == "signups"


@pytest.mark.django_db
def test_datetime_through_a_relation_and_custom_queryset() -> None:
    """``item__created_at`` and ``member_id`` paths; ``get_queryset`` overridden."""
    ann, ben = Member.objects.bulk_create([Member(name="ann"), Member(name="ben")])
    b_item = Item.objects.create(created_at=_paris(2024, 3, 31, 12), kind="b")
    a_item = Item.objects.create(created_at=_paris(2024, 3, 31, 12), kind="a")
    Visit.objects.bulk_create(
        [
            Visit(member=ann, item=b_item, at=_paris(2024, 5, 1)),
            Visit(member=ben, item=b_item, at=_paris(2024, 5, 2)),
            Visit(member=ben, item=a_item, at=_paris(2024, 5, 2)),
        ]
    )
    assert extract_one(ActiveMembersOfBItems(), D(2024, 3, 31)) == {"dau": 2, "wau": 2, "mau": 2}
    assert extract_one(ActiveMembersOfBItems(), D(2024, 4, 1)) == {"dau": 0, "wau": 2, "mau": 2}


@pytest.mark.django_db
def test_use_tz_false_counts_local_wall_times(settings: Any) -> None:
    """Without ``USE_TZ`` the database holds naive local times; the aware windows still fit."""
    settings.USE_TZ = False
    Item.objects.bulk_create(
        [
            Item(created_at=datetime.datetime(2024, 3, 30, 23, 59)),
            Item(created_at=datetime.datetime(2024, 3, 31, 0, 0)),
            Item(created_at=datetime.datetime(2024, 3, 31, 23, 59)),
            Item(created_at=datetime.datetime(2024, 4, 1, 0, 0)),
        ]
    )
    assert extract_one(ItemsPerDay(), D(2024, 3, 31)) == {"count": 2, "total": 3}


# -- schema and configuration ---------------------------------------------------------------


def test_schemas() -> None:
    items = build_table_schema(ItemsPerDay())
    assert items.name == "items_per_day"
    assert [(c.name, c.type, c.mode, c.differentiate) for c in items.columns] == [
        ("date", "DATE", "REQUIRED", False),
        ("count", "INT64", "REQUIRED", False),
        ("total", "INT64", "REQUIRED", True),
    ]
    assert items.kind is ExtractorType.date_aggregated
    assert items.rollups == ("week", "month")
    assert views_of(items) == [
        ("items_per_day_delta", "delta"),
        ("items_per_day_week", "week"),
        ("items_per_day_month", "month"),
    ]
    assert "activityapp.Item" in items.description and "created_at" in items.description
    assert build_table_schema(KindBItems()).name == "b_items"
    assert build_table_schema(KindBItems()).rollups == ()

    active = build_table_schema(ActiveMembers())
    assert active.name == "active_members"
    assert [c.name for c in active.columns] == ["date", "dau", "wau", "mau"]
    assert not active.differentiated and active.rollups == ()
    assert all(c.description for c in active.columns)


EXTRACTORS = "tests.activityapp.extractors."
MISCONFIGURED = [
    ("NoSource", "no model and no queryset"),
    ("BothSources", "both model and queryset are set"),
    ("UnknownModel", "model 'activityapp.Nope' is not an installed model"),
    ("MissingField", "datetime_field 'created': activityapp.Item has no field 'created'"),
    ("NoDatetimeField", "datetime_field is None"),
    ("DateFieldNotDatetime", "'published_on' is a DateField, not a DateTimeField"),
    ("NotARelation", "activityapp.Item.kind is not a relation"),
    ("QuerysetNotAQueryset", "queryset gave list, not a QuerySet"),
    ("MissingUserField", "user_field 'user': activityapp.Visit has no field 'user'"),
]


@pytest.mark.parametrize(("name", "problem"), MISCONFIGURED)
def test_misconfiguration_is_a_system_check_error(settings: Any, name: str, problem: str) -> None:
    settings.SMOLQWERY_EXTRACTORS = [EXTRACTORS + name]
    messages = check_extractors()
    assert [m.id for m in messages] == ["smolqwery.E003"]
    assert problem in messages[0].msg
    assert messages[0].msg.startswith(EXTRACTORS + name)  # names the class to fix
    assert messages[0].obj == EXTRACTORS + name


def test_base_classes_alone_are_misconfigured() -> None:
    for cls in (CountPerDay, ActiveUsers):
        with pytest.raises(ActivityConfigurationError, match="no model and no queryset"):
            cls().get_schema()


def test_configured_extractors_pass_the_checks(settings: Any) -> None:
    settings.SMOLQWERY_EXTRACTORS = [
        EXTRACTORS + name
        for name in (
            "ItemsPerDay",
            "KindBItems",
            "KindBItemsLambda",
            "KindBItemsQuerySet",
            "AllItemsManager",
            "SignupsPerDay",
            "ActiveMembers",
            "ActiveMembersOfBItems",
        )
    ]
    assert check_extractors() == []


# -- rollup views ---------------------------------------------------------------------------


def _iso_week(day: D) -> D:
    return day - datetime.timedelta(days=day.weekday())


def _month(day: D) -> D:
    return day.replace(day=1)


PERIOD_START: dict[str, Callable[[D], D]] = {"week": _iso_week, "month": _month}


def expected_rollup(
    table: TableSchema, rows: Sequence[Mapping[str, Any]], period: str
) -> list[dict[str, Any]]:
    """The rollup computed in Python from the daily rows."""
    groups: dict[D, list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["date"]):
        groups.setdefault(PERIOD_START[period](row["date"]), []).append(row)
    out: list[dict[str, Any]] = []
    for start, days in sorted(groups.items()):
        result: dict[str, Any] = {"date": start, rollup_days_column(table): len(days)}
        for col in table.columns:
            if col.name == "date" or col.type not in ("INT64", "FLOAT64", "NUMERIC"):
                continue
            if col.differentiate:
                result[col.name] = days[-1][col.name]
            else:
                values = [d[col.name] for d in days if d[col.name] is not None]
                result[col.name] = sum(values) if values else None
        out.append(result)
    return out


def load_with_views(wh: Warehouse, table: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
    """Create the table, fill it run by run (gaps allowed), create its views the migration way."""
    wh.create_table(table)
    runs: list[list[Mapping[str, Any]]] = []
    for row in sorted(rows, key=lambda r: r["date"]):
        if runs and row["date"] - runs[-1][-1]["date"] == ONE_DAY:
            runs[-1].append(row)
        else:
            runs.append([row])
    for run in runs:
        wh.replace_days(make_batch(table, run[0]["date"], run[-1]["date"], rows=run))
    for name, kind in views_of(table):
        create_view(wh, name, kind, table)  # what the migration operation runs


MIXED = TableSchema(
    name="mixed",
    columns=(
        Column("date", "DATE"),
        Column("n", "INT64"),
        Column("days", "INT64", "NULLABLE"),  # takes the name: the day count becomes another
        Column("ratio", "FLOAT64", "NULLABLE"),
        Column("amount", "NUMERIC", "NULLABLE"),
        Column("label", "STRING", "NULLABLE"),
        Column("flag", "BOOL", "NULLABLE"),
        Column("total", "INT64", differentiate=True),
        Column("balance", "NUMERIC", "NULLABLE", differentiate=True),
    ),
    kind=ExtractorType.date_aggregated,
    date_column="date",
    rollups=("week", "month"),
)


#: Days missing from the mixed table: a week with only its Monday (01-08), a month without its
#: first day (02-01), a gap across a month end, a week with only its Sunday (03-31).
MIXED_GAPS = frozenset(
    [
        *date_range(D(2024, 1, 9), D(2024, 1, 14)),
        D(2024, 2, 1),
        *date_range(D(2024, 2, 29), D(2024, 3, 2)),
        *date_range(D(2024, 3, 25), D(2024, 3, 30)),
    ]
)


def _mixed_rows(rng: random.Random) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    total = 0
    for day in date_range(D(2023, 12, 20), D(2024, 4, 10)):
        if day in MIXED_GAPS:
            continue
        n = rng.randrange(50)
        total += n
        maybe = rng.random() < 0.2
        rows.append(
            {
                "date": day,
                "n": n,
                "days": None if maybe else rng.randrange(5),
                "ratio": None if rng.random() < 0.2 else rng.randrange(1000) / 8,
                "amount": None if maybe else decimal.Decimal(rng.randrange(10**6)) / 1000,
                "label": rng.choice(["x", None]),
                "flag": rng.choice([True, False, None]),
                "total": total,
                "balance": None if rng.random() < 0.2 else decimal.Decimal(total) / 4,
            }
        )
    return rows


def test_rollup_views_match_sums_of_the_daily_table(warehouse: Warehouse) -> None:
    rows = _mixed_rows(random.Random(7))
    load_with_views(warehouse, MIXED, rows)
    assert rollup_days_column(MIXED) == "days_present"
    for period in ("week", "month"):
        got = fetch_rows(warehouse, f"mixed_{period}", order_by=["date"])
        expected = expected_rollup(MIXED, rows, period)
        assert list(got[0]) == [
            "date",
            "days_present",
            "n",
            "days",
            "ratio",
            "amount",
            "total",
            "balance",
        ]
        assert len(got) == len(expected) > 3
        for g, e in zip(got, expected, strict=True):
            assert g["ratio"] == pytest.approx(e["ratio"])
            assert {k: v for k, v in g.items() if k != "ratio"} == {
                k: v for k, v in e.items() if k != "ratio"
            }
        if period == "week":
            assert all(r["date"].weekday() == 0 for r in got)
            by_start = {r["date"]: r for r in got}
            assert by_start[D(2024, 1, 8)]["days_present"] == 1
            assert by_start[D(2024, 3, 25)]["days_present"] == 1  # only Sunday 03-31
        else:
            assert all(r["date"].day == 1 for r in got)
            assert {r["date"]: r["days_present"] for r in got}[D(2024, 2, 1)] == 27


def test_rollup_of_a_null_running_total_on_the_last_day(duckdb_warehouse: Warehouse) -> None:
    """The last day present decides, even when its value is NULL (no "last non-NULL")."""
    rows = [
        {"date": D(2024, 1, 1), "n": 1, "total": 1, "balance": decimal.Decimal(5)},
        {"date": D(2024, 1, 3), "n": 2, "total": 3, "balance": None},
    ]
    full = [
        {"days": None, "ratio": None, "amount": None, "label": None, "flag": None, **r}
        for r in rows
    ]
    load_with_views(duckdb_warehouse, MIXED, full)
    week = fetch_rows(duckdb_warehouse, "mixed_week")
    assert [(r["date"], r["days_present"], r["n"], r["total"], r["balance"]) for r in week] == [
        (D(2024, 1, 1), 2, 3, 3, None)
    ]


@pytest.mark.django_db
def test_count_per_day_end_to_end_rollups(warehouse: Warehouse) -> None:
    """Extract ``ItemsPerDay`` day by day, load it, and read its week and month views."""
    rng = random.Random(11)
    make_items(rng, 300, PARIS)
    extractor = ItemsPerDay()
    # The schema as a migration file carries it.
    table = TableSchema.from_dict(extractor.get_schema().to_dict())
    days = [d for d in date_range(D(2024, 3, 1), D(2024, 4, 8)) if d not in EMPTY_DAYS]
    rows = [{"date": d, **extract_one(extractor, d)} for d in days]
    load_with_views(warehouse, table, rows)
    for period in ("week", "month"):
        got = fetch_rows(warehouse, f"items_per_day_{period}", order_by=["date"])
        assert got == expected_rollup(table, rows, period)
    # The weekly count of the week of the spring change matches a count of the source rows.
    week = {r["date"]: r for r in fetch_rows(warehouse, "items_per_day_week")}[D(2024, 3, 25)]
    start, end = day_window(D(2024, 3, 25), PARIS).start, day_window(D(2024, 3, 31), PARIS).end
    source = Item.objects.filter(created_at__gte=start, created_at__lt=end).count()
    assert week["count"] == source and week["days"] == 5  # 03-27 and 03-28 not exported
    assert week["total"] == Item.objects.filter(created_at__lt=end).count()


def test_rollup_sql_is_quoted_and_per_dialect(warehouse: Warehouse) -> None:
    week = render_view_sql("week", MIXED, warehouse)
    month = render_view_sql("month", MIXED, warehouse)
    if warehouse.vendor == "bigquery":
        assert "DATE_TRUNC(`date`, ISOWEEK)" in week and "DATE_TRUNC(`date`, MONTH)" in month
    else:
        assert "date_trunc('week', \"date\")" in week and "date_trunc('month'" in month
    assert warehouse.view_reference("mixed") in week
    assert "label" not in week and "flag" not in week  # non-numeric columns are left out


def test_rollups_need_a_date_aggregated_table(duckdb_warehouse: Warehouse) -> None:
    events = TableSchema(
        "events", (Column("timestamp", "TIMESTAMP"),), ExtractorType.individual_rows, "timestamp"
    )
    with pytest.raises(ValueError, match="date-aggregated"):
        render_view_sql("week", events, duckdb_warehouse)


# -- through the export runner --------------------------------------------------------------


@pytest.mark.django_db
def test_exported_by_the_runner(warehouse: Warehouse, settings: Any) -> None:
    """``smolqwery_extract``'s library function exports the brute-force figures, views follow."""
    settings.SMOLQWERY_EXTRACTORS = [EXTRACTORS + "ItemsPerDay", EXTRACTORS + "ActiveMembers"]
    settings.SMOLQWERY_FIRST_DATE = D(2024, 3, 25)
    rng = random.Random(5)
    items = make_items(rng, 300, PARIS)
    visits = make_visits(rng, 300, PARIS)
    for extractor in (ItemsPerDay(), ActiveMembers()):
        table = extractor.get_schema()
        warehouse.create_table(table)
        for name, kind in views_of(table):
            create_view(warehouse, name, kind, table)
    # A forced range, as ``smolqwery_extract --from --to`` gives (no clock travel needed).
    report = export(date_from=D(2024, 3, 25), date_to=D(2024, 4, 2), warehouse=warehouse)
    assert report.ok
    days = date_range(D(2024, 3, 25), D(2024, 4, 2))
    counts = expected_counts((i.created_at for i in items), days, PARIS)
    active = expected_active(visits, days, PARIS)
    got_counts = fetch_rows(warehouse, "items_per_day", order_by=["date"])
    assert got_counts == [{"date": d, **counts[d]} for d in days]
    got_active = fetch_rows(warehouse, "active_members", order_by=["date"])
    assert got_active == [{"date": d, **active[d]} for d in days]
    weeks = fetch_rows(warehouse, "items_per_day_week", order_by=["date"])
    assert weeks == [
        {
            "date": D(2024, 3, 25),
            "days": 7,
            "count": sum(counts[d]["count"] for d in days[:7]),
            "total": counts[D(2024, 3, 31)]["total"],
        },
        {
            "date": D(2024, 4, 1),
            "days": 2,
            "count": counts[D(2024, 4, 1)]["count"] + counts[D(2024, 4, 2)]["count"],
            "total": counts[D(2024, 4, 2)]["total"],
        },
    ]
