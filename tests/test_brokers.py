"""The private brokers of the fan-out tests: started on free ports, stopped and restarted by the
tests, while the machine's own brokers keep running (other people use them)."""

from __future__ import annotations

import pytest

from tests.fixtures.brokers import Broker, answers

pytestmark = pytest.mark.slow


def _roundtrip(broker: Broker, body: str) -> str:
    from kombu import Connection

    with Connection(broker.url, connect_timeout=10) as conn:
        queue = conn.SimpleQueue(f"smoke-{body}")
        try:
            queue.put(body)
            message = queue.get(timeout=10)
            message.ack()
            return str(message.payload)
        finally:
            queue.close()


def test_a_private_broker_stops_and_starts_again_leaving_the_machines_alone(
    broker: Broker,
) -> None:
    system = {6379: answers(6379), 5672: answers(5672)}
    assert broker.port not in (6379, 5672) or not broker.stoppable
    assert _roundtrip(broker, "first") == "first"
    if not broker.stoppable:
        pytest.skip("fallback on the system RabbitMQ: not stopped")
    broker.stop()
    assert not answers(broker.port)
    assert {6379: answers(6379), 5672: answers(5672)} == system
    broker.start()
    assert _roundtrip(broker, "again") == "again"
