"""Option parsing shared by smolqwery's commands: days and counts with clear errors (D18).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import argparse
import datetime

from smolqwery.days import parse_day


def day_arg(value: str) -> datetime.date:
    """argparse ``type=`` for a ``YYYY-MM-DD`` day: a malformed day is an error, never a default."""
    try:
        return parse_day(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def non_negative_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days (0 or more)")
    return number


def positive_arg(value: str) -> int:
    """argparse ``type=`` for a count of 1 or more (processes, seconds)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of 1 or more")
    return number
