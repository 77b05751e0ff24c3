"""Django app config: registers system checks, reads no setting at start-up (0.1.3 D17).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

from django.apps import AppConfig


class SmolqweryConfig(AppConfig):
    name = "smolqwery"
    verbose_name = "smolqwery exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
