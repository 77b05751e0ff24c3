"""The extractors of the smolqwery 0.1.3 README, copied as written there.

Only the imports the README leaves out are added, and ``EmailMessage`` stands in for the
project's own model (a list with the one ORM method the README calls).
"""

import datetime
from dataclasses import dataclass
from typing import Iterator, Optional, Type  # noqa: UP035 - 0.1.3-era spelling on purpose

from smolqwery import BaseExtractor, ExtractorType, sq_field


class _Sent:
    def __init__(self, date_sent: datetime.datetime, type: str) -> None:
        self.date_sent = date_sent
        self.type = type


class _Manager:
    rows: list[_Sent] = []

    def filter(self, date_sent__gte: datetime.datetime, date_sent__lt: datetime.datetime):  # type: ignore[no-untyped-def]
        return [r for r in self.rows if date_sent__gte <= r.date_sent < date_sent__lt]


class EmailMessage:
    objects = _Manager()


@dataclass
class User:
    users: int = sq_field(differentiate=True)
    prospects: int = sq_field(differentiate=True)
    clients: int = sq_field(differentiate=True)


@dataclass
class Email:
    timestamp: datetime.datetime
    type: str


class UserExtractor(BaseExtractor[User]):
    def get_dataclass(self) -> Type[User]:  # noqa: UP006
        return User

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[User]:
        yield User(users=10, prospects=3, clients=1)


class EmailExtractor(BaseExtractor[Email]):
    def get_dataclass(self) -> Type[Email]:  # noqa: UP006
        return Email

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Email]:
        for email in EmailMessage.objects.filter(date_sent__gte=date_start, date_sent__lt=date_end):
            yield Email(
                timestamp=email.date_sent,
                type=email.type,
            )


@dataclass
class Signup:
    """0.1.3 users annotated nullable fields with Optional."""

    timestamp: datetime.datetime
    referrer: Optional[str] = None  # noqa: UP045
