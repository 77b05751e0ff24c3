"""smolqwery: daily, exactly-once analytics exports from Django to BigQuery (or DuckDB)."""

from .interface import BaseExtractor, D
from .queryset_extractor import QuerySetExtractor
from .vocabulary import ExtractorType, sq_field

__all__ = ["BaseExtractor", "D", "ExtractorType", "QuerySetExtractor", "sq_field"]
__version__ = "1.0.0.dev0"
