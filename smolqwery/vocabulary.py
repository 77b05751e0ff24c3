"""The words an extractor is written with: its kind, ``sq_field`` and table names.

A leaf module (standard library only): the schema, the rows, the warehouses and the public
:mod:`smolqwery.extractor` API all use these words without importing each other.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

__all__ = ["SQ_METADATA_KEY", "ExtractorType", "name_words", "snake_case", "sq_field"]

SQ_METADATA_KEY = "sq"


class ExtractorType(Enum):
    """How rows relate to days."""

    #: One row per event; the row's ``timestamp`` field says which day it belongs to.
    individual_rows = "individual_rows"
    #: Exactly one row per day; smolqwery adds the leading ``date`` column itself.
    date_aggregated = "date_aggregated"


def sq_field(
    *,
    differentiate: bool = False,
    description: str | None = None,
    **kwargs: Any,
) -> Any:
    """A ``dataclasses.field`` carrying smolqwery's options in ``metadata["sq"]``.

    ``differentiate=True`` asks for the column's day-over-day change in the ``<table>_delta``
    view; ``description`` becomes the warehouse column description. Every other keyword goes to
    ``dataclasses.field`` unchanged.
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[SQ_METADATA_KEY] = {"differentiate": differentiate, "description": description}
    return dataclasses.field(metadata=metadata, **kwargs)


def _upper(char: str) -> bool:
    return "A" <= char <= "Z"


def _lower(char: str) -> bool:
    return "a" <= char <= "z"


def name_words(name: str) -> tuple[str, ...]:
    """The words of a class name, cut exactly as smolqwery 0.1.3 cut them (lower case).

    Words are a capital and its lower-case letters (``Email``), a run of lower-case letters, a
    run of digits, or a run of capitals — an acronym, whose last capital starts the next word
    when a lower-case letter follows (``HTTPLog`` → ``http``, ``log``). Everything else
    (underscores, other letters) only separates words. Letters are ASCII, as in 0.1.3's
    patterns; digits and "a lower-case letter follows" are Unicode's, as there too.
    """
    words: list[str] = []
    i, size = 0, len(name)
    while i < size:
        char, end = name[i], i + 1
        if _upper(char):
            while end < size and _upper(name[end]):
                end += 1
            if end - i == 1:  # one capital: a Capitalised word
                while end < size and _lower(name[end]):
                    end += 1
            elif end < size and name[end].islower():
                end -= 1  # HTTPLog: the L begins "Log"
        elif _lower(char):
            while end < size and _lower(name[end]):
                end += 1
        elif char.isdecimal():
            while end < size and name[end].isdecimal():
                end += 1
        else:
            i += 1
            continue
        words.append(name[i:end].lower())
        i = end
    return tuple(words)


def snake_case(name: str) -> str:
    """Table name from a class name, the 0.1.3 way (existing tables must keep their names):
    its words (:func:`name_words`) joined by underscores. ``EmailMessage`` → ``email_message``,
    ``User2`` → ``user_2``, ``HTTPLog`` → ``http_log``, ``Daily__Stats`` → ``daily_stats``.
    """
    return "_".join(name_words(name))
