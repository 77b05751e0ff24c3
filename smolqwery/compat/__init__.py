"""Compatibility with smolqwery 0.1.3, fenced in one package.

What is here exists only so that 0.1.3 code keeps working; each 0.1.3-only spelling warns
(``DeprecationWarning``) with the release that removes it, :data:`REMOVED_IN`:

* :mod:`smolqwery.compat.migration_files`: ``Coconut``, the object 0.1.3 migration files run
  (they import it as ``smolqwery.swallow.Coconut``, a thin re-export);
* :mod:`smolqwery.compat.names`: ``ExtractionManager`` and ``dataclass_to_schema``, re-exported
  by :mod:`smolqwery.extractor`.

The defects of 0.1.3 that the code's comments cite (``D1`` … ``D22``) are catalogued in
``docs/defects-0.1.3.md``. This package imports nothing at import time: importing
:mod:`smolqwery` must not load the migration machinery.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names __getattr__ gives, for type checkers
    from .migration_files import Coconut, legacy_table_schema
    from .names import ExtractionManager, dataclass_to_schema

__all__ = [
    "REMOVED_IN",
    "Coconut",
    "ExtractionManager",
    "dataclass_to_schema",
    "deprecated",
    "legacy_table_schema",
]

#: The release that removes the 0.1.3-only spellings.
REMOVED_IN = "2.0"


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that the 0.1.3 spelling ``old`` goes away in :data:`REMOVED_IN`; ``new`` replaces it."""
    warnings.warn(
        f"{old} is a smolqwery 0.1.3 spelling, removed in smolqwery {REMOVED_IN}: {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def __getattr__(name: str) -> Any:
    """The compatibility names, imported when first asked for (see the module docstring)."""
    if name in ("Coconut", "legacy_table_schema"):
        from . import migration_files

        return getattr(migration_files, name)
    if name in ("ExtractionManager", "dataclass_to_schema"):
        from . import names

        return getattr(names, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
