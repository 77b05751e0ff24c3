"""smolqwery: daily, exactly-once analytics exports from Django to BigQuery (or DuckDB)."""

from .extractor import BaseExtractor, D, ExtractorType, sq_field
from .queryset_extractor import QuerySetExtractor

__all__ = ["BaseExtractor", "D", "ExtractorType", "QuerySetExtractor", "sq_field"]
__version__ = "1.0.0.dev0"
