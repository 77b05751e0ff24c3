"""smolqwery: daily, exactly-once analytics exports from Django to BigQuery (or DuckDB)."""

from .interface import BaseExtractor, D
from .vocabulary import ExtractorType, sq_field

__all__ = ["BaseExtractor", "D", "ExtractorType", "sq_field"]
__version__ = "1.0.0.dev0"
