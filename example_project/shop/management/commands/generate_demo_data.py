"""``manage.py generate_demo_data --days N --seed S``: a deterministic shop for the last N days."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.demo_data import generate


class Command(BaseCommand):
    help = (
        "Replace the shop's customers, contracts and emails with N complete days of "
        "deterministic activity ending yesterday (in TIME_ZONE)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=settings.SMOLQWERY_DEMO_DAYS,
            help="Number of days before today (default: SMOLQWERY_DEMO_DAYS, %(default)s).",
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default: 42).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        summary = generate(days=options["days"], seed=options["seed"])
        self.stdout.write(
            f"Demo data from {summary.first_day} to {summary.last_day}: "
            f"{summary.customers} customers, {summary.contracts} contracts "
            f"({summary.validated} validated), {summary.emails} emails"
        )
        if summary.first_day < settings.SMOLQWERY_FIRST_DATE:
            self.stderr.write(
                f"Note: SMOLQWERY_FIRST_DATE is {settings.SMOLQWERY_FIRST_DATE}; days before it "
                "are not exported (set SMOLQWERY_DEMO_DAYS to move it)."
            )
