"""Dataclasses declared under ``from __future__ import annotations`` (0.1.3 defect D15).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Optional, Union

from smolqwery import sq_field


@dataclasses.dataclass
class Everything:
    timestamp: datetime.datetime
    day: datetime.date
    count: int
    ratio: float
    flag: bool
    label: str
    blob: bytes
    amount: decimal.Decimal
    maybe_pipe: int | None
    maybe_optional: Optional[str]  # noqa: UP045
    maybe_union: Union[bool, None]  # noqa: UP007
    maybe_reversed: None | datetime.date  # noqa: RUF036


@dataclasses.dataclass
class Totals:
    total: int | None = sq_field(differentiate=True, description="Users ever registered")
    revenue: decimal.Decimal = sq_field(differentiate=True)  # noqa: RUF009


@dataclasses.dataclass
class Unresolvable:
    timestamp: datetime.datetime
    other: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821
