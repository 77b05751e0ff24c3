"""Extractors BigQuery would refuse (E030): too many clustering columns, too long descriptions."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator

from smolqwery import BaseExtractor, ExtractorType, sq_field


@dataclasses.dataclass
class Wide:
    timestamp: datetime.datetime
    a: int
    b: int
    c: int
    d: int
    e: int


class FiveClusteringColumns(BaseExtractor[Wide]):
    def get_dataclass(self) -> type[Wide]:
        return Wide

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows

    def get_clustering_fields(self) -> list[str]:
        return ["a", "b", "c", "d", "e"]

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Wide]:
        yield from ()


@dataclasses.dataclass
class Verbose:
    users: int = sq_field(description="u" * 1025)


class LongDescriptions(BaseExtractor[Verbose]):
    def get_dataclass(self) -> type[Verbose]:
        return Verbose

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_table_description(self) -> str:
        return "t" * 16_385

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Verbose]:
        yield from ()


@dataclasses.dataclass
class Exact:
    users: int = sq_field(description="u" * 1024)


class AtTheLimits(BaseExtractor[Exact]):
    """Exactly at BigQuery's limits (and 4 clustering columns would be too): accepted."""

    def get_dataclass(self) -> type[Exact]:
        return Exact

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_table_description(self) -> str:
        return "t" * 16_384

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[Exact]:
        yield from ()
