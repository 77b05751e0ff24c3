"""What the child processes of ``smolqwery_extract --jobs N`` run.

A module of its own, importing nothing of Django's at import time: a spawned child unpickles
these functions before Django is set up, so everything else is imported once it is.
"""

from __future__ import annotations


def init_child() -> None:
    """Set Django up in the child (its settings module comes in the environment)."""
    import django

    django.setup()


def run_child(unit_id: str) -> str:
    """Run one unit in the child; the outcome is in its ExportUnit row."""
    from .units import run_unit_by_id

    result = run_unit_by_id(unit_id, spool=True)
    return result.status if result is not None else "missing"
