"""Extractors for the system-check tests: one valid pair, and one of each kind of mistake."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import Any

from smolqwery import BaseExtractor, ExtractorType, QuerySetExtractor, sq_field


@dataclasses.dataclass
class User:
    users: int = sq_field(differentiate=True)
    active: bool = False


@dataclasses.dataclass
class Email:
    timestamp: datetime.datetime
    type: str


class UserExtractor(BaseExtractor[User]):
    def get_dataclass(self) -> type[User]:
        return User

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[User]:
        yield User(users=1)


class EmailExtractor(BaseExtractor[Email]):
    def get_dataclass(self) -> type[Email]:
        return Email

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Email]:
        yield Email(timestamp=date_start, type="welcome")


class NotAnExtractor:
    """Has the methods but not the base class (E002)."""

    def get_dataclass(self) -> type[User]:
        return User


def extractor_function() -> None:
    """Not even a class (E002)."""


class HalfExtractor(BaseExtractor[User]):
    """Forgets extract() (E002)."""

    def get_dataclass(self) -> type[User]:
        return User

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated


class MisreadExtractor(QuerySetExtractor[Email]):
    """A typo in read_as (E002): it would read as "auto" without a word."""

    read_as = "dbapy"

    def get_dataclass(self) -> type[Email]:
        return Email

    def get_queryset(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Any:
        raise NotImplementedError


@dataclasses.dataclass
class Tagged:
    timestamp: datetime.datetime
    tags: list[str]


class ListFieldExtractor(EmailExtractor):
    """A list field cannot be a column (E003)."""

    def get_dataclass(self) -> type[Tagged]:  # type: ignore[override]
        return Tagged


@dataclasses.dataclass
class Sent:
    sent_at: datetime.datetime


class NoTimestampExtractor(EmailExtractor):
    """Individual rows without their ``timestamp`` field (E003)."""

    def get_dataclass(self) -> type[Sent]:  # type: ignore[override]
        return Sent


class RaisingExtractor(EmailExtractor):
    """The project's own code raises while the table is described (E003, not a crash)."""

    def get_dataclass(self) -> type[Email]:
        raise RuntimeError("database not reachable")


class SameTableExtractor(EmailExtractor):
    """Another extractor writing into ``user`` (E004)."""

    def get_table_name(self) -> str:
        return "User"


class DeltaClashExtractor(EmailExtractor):
    """A table named like the delta view of ``user`` (E004)."""

    def get_table_name(self) -> str:
        return "user_delta"


class BadTableNameExtractor(EmailExtractor):
    def get_table_name(self) -> str:
        return "email-log"


class ReservedTableExtractor(EmailExtractor):
    def get_table_name(self) -> str:
        return "smolqwery_ledger"


class RollupUserExtractor(UserExtractor):
    """``user`` with a weekly rollup view, ``user_week``."""

    def get_rollups(self) -> tuple[str, ...]:
        return ("week",)


class UserWeekExtractor(EmailExtractor):
    """A table named like the weekly rollup of ``user`` (E004)."""

    def get_table_name(self) -> str:
        return "user_week"
