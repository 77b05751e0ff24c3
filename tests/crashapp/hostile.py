"""Extractors that misbehave, one way each (issue 6, hostile input).

Every :class:`HostileExtractor` yields good rows for every day of the batch, and its one bad
row (or its exception) on the last complete day only: a batch written day by day would show
the earlier days, so "nothing written" really means the whole batch was refused. No model is
involved, so the test process can use these without installing the app.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from collections.abc import Callable, Iterator
from typing import Any

from django.utils import timezone

from smolqwery import BaseExtractor, ExtractorType
from smolqwery.days import local_now, yesterday
from smolqwery.rows import MAX_ROW_BYTES


@dataclasses.dataclass
class HostileRow:
    """A row with one field of most types."""

    timestamp: datetime.datetime
    name: str
    count: int
    ratio: float
    blob: bytes
    amount: decimal.Decimal | None


@dataclasses.dataclass
class OtherRow:
    """Not the extractor's dataclass, though it has the same fields."""

    timestamp: datetime.datetime
    name: str
    count: int
    ratio: float
    blob: bytes
    amount: decimal.Decimal | None


def good_rows(start: datetime.datetime, end: datetime.datetime) -> list[HostileRow]:
    """Three valid rows of the day ``[start, end)``."""
    middle = start + (end - start) / 2
    return [
        HostileRow(moment, f"row {i}", i, i / 3, bytes([i, 0, 255]), decimal.Decimal(i) / 8)
        for i, moment in enumerate((start, middle, end - datetime.timedelta(microseconds=1)))
    ]


def _bad(**changes: Any) -> Callable[[datetime.datetime, datetime.datetime], Any]:
    return lambda start, end: dataclasses.replace(good_rows(start, end)[1], **changes)


def _raise(start: datetime.datetime, end: datetime.datetime) -> Any:
    raise RuntimeError("the source database went away")


#: case → the bad row of the last day (or a function that raises), and words its error must use.
CASES: dict[str, tuple[Callable[[datetime.datetime, datetime.datetime], Any], tuple[str, ...]]] = {
    "raises": (_raise, ("RuntimeError", "the source database went away")),
    "other_dataclass": (
        lambda s, e: OtherRow(**dataclasses.asdict(good_rows(s, e)[0])),
        ("OtherRow", "HostileRow"),
    ),
    "dict": (lambda s, e: dataclasses.asdict(good_rows(s, e)[0]), ("dict", "HostileRow")),
    "wrong_type": (_bad(count="12"), ("count", "int", "str")),
    "none_required": (_bad(name=None), ("name", "None")),
    "naive_datetime": (
        lambda s, e: dataclasses.replace(good_rows(s, e)[1], timestamp=s.replace(tzinfo=None)),
        ("timestamp", "naive"),
    ),
    "after_day": (
        lambda s, e: dataclasses.replace(good_rows(s, e)[1], timestamp=e),
        ("timestamp", "outside"),
    ),
    "before_day": (
        lambda s, e: dataclasses.replace(
            good_rows(s, e)[1], timestamp=s - datetime.timedelta(microseconds=1)
        ),
        ("timestamp", "outside"),
    ),
    "nul": (_bad(name="bad\x00name"), ("name", "NUL")),
    "lone_surrogate": (_bad(name="bad \ud800 name"), ("name", "surrogate")),
    "int64_overflow": (_bad(count=2**63), ("count", "INT64")),
    "int64_underflow": (_bad(count=-(2**63) - 1), ("count", "INT64")),
    "nan": (_bad(ratio=float("nan")), ("ratio", "NaN")),
    "infinity": (_bad(ratio=float("-inf")), ("ratio", "infinit")),
    "numeric_range": (_bad(amount=decimal.Decimal("1E+29")), ("amount", "decimal point")),
    "numeric_nan": (_bad(amount=decimal.Decimal("NaN")), ("amount", "NaN")),
    "row_too_big": (_bad(blob=b"x" * (MAX_ROW_BYTES + 1)), ("bytes", "row")),
}


class HostileExtractor(BaseExtractor[HostileRow]):
    """Good rows every day, then the case's bad row on the last complete day."""

    case = ""

    def get_dataclass(self) -> type[HostileRow]:
        return HostileRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def get_table_name(self) -> str:
        return f"hostile_{self.case}"

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[HostileRow]:
        yield from good_rows(date_start, date_end)
        tz = timezone.get_default_timezone()
        if date_start.astimezone(tz).date() == yesterday(local_now(tz), tz):
            make_bad, _ = CASES[self.case]
            yield make_bad(date_start, date_end)


def _extractor(case: str) -> type[HostileExtractor]:
    name = "".join(part.title() for part in case.split("_")) + "Extractor"
    return type(name, (HostileExtractor,), {"case": case, "__module__": __name__})


#: One class per case, importable by dotted path: ``tests.crashapp.hostile.<Name>``.
EXTRACTOR_CLASSES = {case: _extractor(case) for case in CASES}
globals().update({cls.__name__: cls for cls in EXTRACTOR_CLASSES.values()})


def dotted_path(case: str) -> str:
    return f"{__name__}.{EXTRACTOR_CLASSES[case].__name__}"


@dataclasses.dataclass
class Daily:
    """A date-aggregated row."""

    total: int


class TwoRowsADayExtractor(BaseExtractor[Daily]):
    """Date aggregated, but yields two rows on the last day (0.1.3 defect D8 let this in)."""

    def get_dataclass(self) -> type[Daily]:
        return Daily

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_table_name(self) -> str:
        return "hostile_two_rows_a_day"

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Daily]:
        yield Daily(1)
        tz = timezone.get_default_timezone()
        if date_start.astimezone(tz).date() == yesterday(local_now(tz), tz):
            yield Daily(2)


class GoodExtractor(HostileExtractor):
    """Only good rows: exported even when others in the same run fail (D9)."""

    case = "good"

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[HostileRow]:
        yield from good_rows(date_start, date_end)


# -- identifiers crafted to inject SQL --------------------------------------------------------

INJECTED_TABLE_NAMES = (
    "x; DROP TABLE y",
    "x`; DROP TABLE y; --",
    "x'; DROP TABLE y; --",
    'x"; DROP TABLE y; --',
    "x]; DROP TABLE y",
    "naïve",
)


def _named(index: int) -> type[GoodExtractor]:
    name = INJECTED_TABLE_NAMES[index]
    return type(
        f"InjectedTable{index}Extractor",
        (GoodExtractor,),
        {"get_table_name": lambda self: name, "__module__": __name__},
    )


INJECTED_TABLE_CLASSES = [_named(i) for i in range(len(INJECTED_TABLE_NAMES))]
globals().update({cls.__name__: cls for cls in INJECTED_TABLE_CLASSES})


class InjectedDateFieldExtractor(GoodExtractor):
    def get_date_field(self) -> str:
        return "timestamp`; DROP TABLE y; --"


class InjectedClusteringExtractor(GoodExtractor):
    def get_table_name(self) -> str:
        return "hostile_clustering"

    def get_clustering_fields(self) -> list[str]:
        return ["name`) ; DROP TABLE y; --"]


@dataclasses.dataclass
class UnicodeRow:
    timestamp: datetime.datetime
    naïve: int  # a valid Python name, not a valid warehouse column name


class InjectedColumnExtractor(BaseExtractor[UnicodeRow]):
    def get_dataclass(self) -> type[UnicodeRow]:
        return UnicodeRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[UnicodeRow]:
        yield UnicodeRow(date_start, 1)
