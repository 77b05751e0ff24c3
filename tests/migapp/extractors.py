"""The 0.1.3 README's ``User`` and ``Email`` extractors, and changed versions of them.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import Optional

from smolqwery import BaseExtractor, ExtractorType, sq_field


@dataclasses.dataclass
class User:
    users: int = sq_field(differentiate=True)
    prospects: int = sq_field(differentiate=True)
    clients: int = sq_field(differentiate=True)


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
        yield User(users=10, prospects=5, clients=1)


class EmailExtractor(BaseExtractor[Email]):
    def get_dataclass(self) -> type[Email]:
        return Email

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Email]:
        yield Email(timestamp=date_start, type="welcome")


# -- changed versions of the ``user`` table -------------------------------------------------


@dataclasses.dataclass
class UserChanged:
    users: float = sq_field(differentiate=True)  # was int
    prospects: int = sq_field(differentiate=True)
    # clients removed


class UserChangedExtractor(UserExtractor):
    def get_dataclass(self) -> type[UserChanged]:  # type: ignore[override]
        return UserChanged

    def get_table_name(self) -> str:
        return "user"


@dataclasses.dataclass
class UserWithOptional:
    users: int = sq_field(differentiate=True)
    prospects: int = sq_field(differentiate=True)
    clients: int = sq_field(differentiate=True)
    churned: Optional[int] = None  # noqa: UP045 - the 0.1.3 README spelling


class UserWithOptionalExtractor(UserExtractor):
    def get_dataclass(self) -> type[UserWithOptional]:  # type: ignore[override]
        return UserWithOptional

    def get_table_name(self) -> str:
        return "user"


class User2Extractor(UserChangedExtractor):
    """The way out of a refused change: the changed dataclass in a new table."""

    def get_table_name(self) -> str:
        return "user2"


class UserWithRollupsExtractor(UserExtractor):
    def get_rollups(self) -> tuple[str, ...]:
        return ("week", "month")


@dataclasses.dataclass
class Flags:
    """0.1.3 stored bool as INT64 (D1): an upgraded extractor with a bool field differs."""

    timestamp: datetime.datetime
    opened: bool


class FlagsExtractor(BaseExtractor[Flags]):
    def get_dataclass(self) -> type[Flags]:
        return Flags

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Flags]:
        yield from ()


@dataclasses.dataclass
class FlagsWithNote:
    """Flags with a column 0.1.3's table never had: a change no rebuild makes."""

    timestamp: datetime.datetime
    opened: bool
    note: str


class FlagsWithNoteExtractor(FlagsExtractor):
    def get_dataclass(self) -> type[FlagsWithNote]:  # type: ignore[override]
        return FlagsWithNote

    def get_table_name(self) -> str:
        return "flags"
