"""The extractor API a Django project imports (the public API of smolqwery 0.1.3, kept).

An extractor pairs a dataclass (the columns) with ``extract(date_start, date_end)``, which yields
the rows of one local day: ``date_start`` inclusive, ``date_end`` exclusive, both aware datetimes
in Django's ``TIME_ZONE``. This module only re-exports: :class:`BaseExtractor` lives in
:mod:`smolqwery.interface`, the schema words in :mod:`smolqwery.vocabulary`, and the 0.1.3-only
names (``ExtractionManager``, ``dataclass_to_schema``, deprecated) in :mod:`smolqwery.compat`.
"""

from __future__ import annotations

from .compat.names import ExtractionManager, dataclass_to_schema
from .interface import BaseExtractor, D
from .vocabulary import SQ_METADATA_KEY, ExtractorType, name_words, snake_case, sq_field

__all__ = [
    "SQ_METADATA_KEY",
    "BaseExtractor",
    "D",
    "ExtractionManager",
    "ExtractorType",
    "dataclass_to_schema",
    "name_words",
    "snake_case",
    "sq_field",
]
