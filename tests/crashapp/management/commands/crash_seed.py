"""``manage.py crash_seed --today YYYY-MM-DD --days N --tz ZONE``: the scenario's source rows."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tests.crashapp.models import Event
from tests.crashapp.source import source_events


class Command(BaseCommand):
    help = "Insert the crash scenario's events (tests only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--today", type=datetime.date.fromisoformat, required=True)
        parser.add_argument("--days", type=int, required=True)
        parser.add_argument("--tz", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        events = source_events(options["today"], options["days"], options["tz"])
        Event.objects.bulk_create(
            Event(id=e.id, timestamp=e.timestamp, kind=e.kind, amount=e.amount, payload=e.payload)
            for e in events
        )
        self.stdout.write(f"seeded {len(events)} events")
