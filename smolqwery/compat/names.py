"""The 0.1.3 names of :mod:`smolqwery.extractor` that 1.x replaced; each warns when used."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..interface import BaseExtractor
from ..registry import load_extractors
from ..schema import TableSchema, build_table_schema
from . import deprecated

__all__ = ["ExtractionManager", "dataclass_to_schema"]


def dataclass_to_schema(extractor: BaseExtractor[Any]) -> TableSchema:
    """0.1.3 name of ``extractor.get_schema()``."""
    deprecated("smolqwery.extractor.dataclass_to_schema()", "call extractor.get_schema()")
    return build_table_schema(extractor)


class ExtractionManager:
    """0.1.3 name kept importable: iterates the configured extractors."""

    def __init__(self) -> None:
        deprecated(
            "smolqwery.extractor.ExtractionManager", "use smolqwery.registry.load_extractors()"
        )

    def get_extractors(self) -> Iterator[BaseExtractor[Any]]:
        yield from load_extractors()
