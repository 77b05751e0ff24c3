"""The Celery app of the fan-out tests' workers (``celery -A tests.celeryapp worker``).

A project's own ``proj/celery.py`` looks like this. The broker comes from the test (a private
Redis or RabbitMQ of :mod:`tests.fixtures.brokers`); the settings are the crash scenarios'
(:mod:`tests.crash_settings`), so a worker shares its scenario's database and warehouse.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.crash_settings")

app = Celery("smolqwery_tests")
app.conf.update(
    broker_url=os.environ.get("SMOLQWERY_TEST_BROKER_URL", "memory://"),
    task_default_queue=os.environ.get("SMOLQWERY_TEST_QUEUE", "celery"),
    # One message at a time per worker: a killed worker holds (and gives back) one unit only.
    worker_prefetch_multiplier=1,
    # Redis gives an unacknowledged message back after this long (RabbitMQ: when the connection
    # drops). Production: above the longest unit (docs/scaling.md).
    # kombu looks for such messages every unacked_restore_interval x unacked_restore_throttle
    # seconds (10 x 10 by default): every second here.
    broker_transport_options={
        "visibility_timeout": 10,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["smolqwery"])
