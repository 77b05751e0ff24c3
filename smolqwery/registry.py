"""The configured extractors: ``SMOLQWERY_EXTRACTORS`` imported, checked and selected by name.

Above :mod:`smolqwery.settings` (which only reads the dotted paths) and the extractor interface;
the export, the preview, the status and the 0.1.3 ``ExtractionManager`` all load extractors here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from .errors import ConfigurationError, user_message
from .interface import BaseExtractor
from .settings import get_settings

if TYPE_CHECKING:
    from .schema import TableSchema
    from .settings import SmolqwerySettings

__all__ = [
    "Selected",
    "load_extractor_class",
    "load_extractors",
    "select_extractors",
]


def load_extractor_class(path: str) -> type[BaseExtractor[Any]]:
    """Import one ``SMOLQWERY_EXTRACTORS`` entry, with an error naming the path."""
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f"extractor {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseExtractor)):
        raise ConfigurationError(f"extractor {path!r} is not a subclass of BaseExtractor")
    return cls


def load_extractors(config: SmolqwerySettings | None = None) -> list[BaseExtractor[Any]]:
    """Instances of every configured extractor, in settings order."""
    config = config or get_settings()
    return [load_extractor_class(path)() for path in config.extractors]


@dataclasses.dataclass
class Selected:
    """A configured extractor, or why it could not be loaded."""

    path: str
    extractor: BaseExtractor[Any] | None = None
    table: TableSchema | None = None
    error: str = ""
    exception: Exception | None = None

    @property
    def name(self) -> str:
        return self.extractor.get_name() if self.extractor is not None else self.path


def _load(path: str) -> Selected:
    try:
        extractor = load_extractor_class(path)()
        return Selected(path, extractor, extractor.get_schema())
    except Exception as exc:  # an import or schema error stays this extractor's problem
        return Selected(path, error=user_message(exc), exception=exc)


def select_extractors(
    names: Iterable[str] | None = None, config: SmolqwerySettings | None = None
) -> list[Selected]:
    """The configured extractors, or those named (dotted path, class path or table name).

    An extractor that fails to import or has a bad schema is returned with its error, so a
    run reports it and goes on with the others. A name matching no configured extractor is a
    :class:`ConfigurationError`: a typo must not silently export nothing.
    """
    config = config or get_settings()
    loaded = [_load(path) for path in config.extractors]
    if not names:
        return loaded
    chosen: list[Selected] = []
    for wanted in names:
        matches = [
            s
            for s in loaded
            if wanted in (s.path, s.name) or (s.table is not None and s.table.name == wanted)
        ]
        if not matches:
            known = ", ".join(f"{s.path} ({s.table.name})" if s.table else s.path for s in loaded)
            raise ConfigurationError(
                f"no extractor in SMOLQWERY_EXTRACTORS matches {wanted!r}; "
                f"configured: {known or 'none'}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen
