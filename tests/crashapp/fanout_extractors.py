"""Six extractors of the crash source for the fan-out tests: four event tables, two daily ones.

``SMOLQWERY_TEST_DAY_DELAY`` (seconds) slows each day's extraction, so a test can stop a broker
while units are still queued.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator

from .extractors import CrashDaily, CrashDailyExtractor, CrashEvent, CrashEventExtractor


def _delay() -> None:
    seconds = float(os.environ.get("SMOLQWERY_TEST_DAY_DELAY") or 0)
    if seconds:
        time.sleep(seconds)


class _Events(CrashEventExtractor):
    table = ""

    def get_table_name(self) -> str:
        return self.table

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[CrashEvent]:
        _delay()
        yield from super().extract(date_start, date_end)


class _Daily(CrashDailyExtractor):
    table = ""

    def get_table_name(self) -> str:
        return self.table

    def extract(
        self, date_start: datetime.datetime, date_end: datetime.datetime
    ) -> Iterator[CrashDaily]:
        _delay()
        yield from super().extract(date_start, date_end)


class Events1(_Events):
    table = "fan_event_1"


class Events2(_Events):
    table = "fan_event_2"


class Events3(_Events):
    table = "fan_event_3"


class Events4(_Events):
    table = "fan_event_4"


class Daily1(_Daily):
    table = "fan_daily_1"


class Daily2(_Daily):
    table = "fan_daily_2"


EXTRACTORS = tuple(
    f"{__name__}.{cls.__name__}" for cls in (Events1, Events2, Events3, Events4, Daily1, Daily2)
)


class Daily3(_Daily):
    table = "fan_daily_3"


class Daily4(_Daily):
    table = "fan_daily_4"


#: Eight extractors, for the benchmark of bench/fanout.py.
EIGHT = (*EXTRACTORS, f"{__name__}.Daily3", f"{__name__}.Daily4")
