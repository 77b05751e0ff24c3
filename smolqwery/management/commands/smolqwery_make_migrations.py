"""``manage.py smolqwery_make_migrations``: write the migration the extractors need.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from smolqwery.errors import SmolqweryError
from smolqwery.migration_writer import make_migrations

from ._output import SmolqweryCommand

#: Checks that need the warehouse's credentials: writing a migration never does (0.1.3 D19).
CREDENTIAL_CHECKS = frozenset({"smolqwery.E009"})


class Command(SmolqweryCommand):
    # The system checks run in handle(), without the credentials check.
    requires_system_checks: list[str] = []
    help = (
        "Compare SMOLQWERY_EXTRACTORS with the warehouse objects created by migrations and "
        "write the missing migration into SMOLQWERY_DJANGO_APP. Needs no credentials."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit with status 1 when a migration is missing (for CI).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would be written without writing it (-v 3 prints the file).",
        )
        parser.add_argument("--name", "-n", help="Name of the migration (after its number).")

    def run_checks_without_credentials(self) -> None:
        """Django's system checks, minus those that need credentials (reported as errors)."""
        from django.core import checks

        serious = [
            m
            for m in checks.run_checks()
            if m.is_serious() and not m.is_silenced() and m.id not in CREDENTIAL_CHECKS
        ]
        if serious:
            raise CommandError(
                "System check identified some issues:\n" + "\n".join(str(m) for m in serious)
            )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options.get("skip_checks"):
            self.run_checks_without_credentials()
        check: bool = options["check"]
        dry_run: bool = options["dry_run"] or check
        verbosity: int = options["verbosity"]
        try:
            result = make_migrations(name=options["name"], write=not dry_run)
        except SmolqweryError as exc:
            raise CommandError(str(exc)) from exc
        if result.plan.empty:
            if verbosity >= 1:
                self.stdout.write("No smolqwery changes detected")
            return
        if verbosity >= 1:
            self.stdout.write(self.style.MIGRATE_HEADING(f"Migrations for {result.app_label!r}:"))
            self.stdout.write(f"  {result.path}")
            for operation in result.plan.operations:
                self.stdout.write(f"    - {operation.describe()}")
        if dry_run and verbosity >= 3:
            self.stdout.write(result.text)
        if check:
            self.stderr.write("smolqwery migrations are missing: run smolqwery_make_migrations")
            sys.exit(1)
