"""``smolqwery.swallow``: the module 0.1.3 migration files import ``Coconut`` from.

A thin re-export of :mod:`smolqwery.compat.migration_files`, warning that this module name goes
away in smolqwery 2.0 (``from smolqwery.compat import Coconut`` stays).
"""

from __future__ import annotations

from .compat import deprecated
from .compat.migration_files import Coconut, legacy_table_schema

__all__ = ["Coconut", "legacy_table_schema"]

# 3: the file importing this module (a migration file, usually; warnings skips importlib).
deprecated("smolqwery.swallow", "import Coconut from smolqwery.compat", stacklevel=3)
