"""The 1.0 module of the export API, kept as a thin facade for code that imports it.

The export lives in :mod:`smolqwery.exporter`, the dry run in :mod:`smolqwery.preview`, the
status in :mod:`smolqwery.status`, extractor selection in :mod:`smolqwery.registry`.
"""

from __future__ import annotations

from .errors import user_traceback
from .exporter import Exporter, ExportReport, ExtractorResult, export, plan_days
from .preview import PreviewChunk, PreviewFailure, preview
from .registry import select_extractors
from .status import DoneDays, TableStatus, done_days, table_status

__all__ = [
    "DoneDays",
    "ExportReport",
    "Exporter",
    "ExtractorResult",
    "PreviewChunk",
    "PreviewFailure",
    "TableStatus",
    "done_days",
    "export",
    "plan_days",
    "preview",
    "select_extractors",
    "table_status",
    "user_traceback",
]
