"""ChunkedDelivery against the real broker: what a confirmation confirms, and how a record the
broker refuses stops the confirmed prefix for good."""

from __future__ import annotations

import os

# Where the classes live: the package re-exports them in a way mypy does not count as exported.
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from streams.bootstrap.delivery import ChunkedDelivery
from streams.kafka.clients import admin_client
from streams.settings import Settings
from streams.testing import read_topic

KEY = b"c-1"  # one key, one partition: the broker sees the records in the order produced
TOPIC_LIMIT_BYTES = 2000


def produce(delivery: ChunkedDelivery, topic: str, first: int, count: int) -> None:
    for number in range(first, first + count):
        delivery.producer.produce(topic, b'{"event_id":"e-%d"}' % number, KEY)


def limit_record_size(settings: Settings, topic: str) -> None:
    entry = ConfigEntry(
        "max.message.bytes",
        str(TOPIC_LIMIT_BYTES),
        incremental_operation=AlterConfigOpType.SET,
    )
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin = admin_client(settings)  # kept until the futures are done
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_rows_are_confirmed_when_the_producer_is_drained(streams_settings) -> None:
    settings = streams_settings()
    topic = settings.input_topic
    delivery = ChunkedDelivery(settings, client_id="test", confirmed_line=1)
    try:
        produce(delivery, topic, 0, 10)
        delivery.end_chunk(11)
        produce(delivery, topic, 10, 10)
        delivery.end_chunk(21)
        assert delivery.confirmed_line == 1  # produced, not yet known to be delivered
        delivery.confirm()
        assert delivery.confirmed_line == 21
        produce(delivery, topic, 20, 5)
        delivery.end_chunk(26)
        delivery.finish(26)
        assert (delivery.confirmed_line, delivery.failed) == (26, False)
    finally:
        delivery.close()
    assert len(read_topic(settings, topic)) == 25


def test_two_producers_take_turns_and_a_confirmation_drains_the_older_turn(
    streams_settings,
) -> None:
    settings = streams_settings()
    topic = settings.input_topic
    delivery = ChunkedDelivery(settings, client_id="test", producers=2)
    try:
        first = delivery.producer
        produce(delivery, topic, 0, 5)
        delivery.end_chunk(6)
        delivery.confirm()  # drains the other producer, which took nothing yet
        assert delivery.confirmed_line == 0
        assert delivery.producer is not first
        produce(delivery, topic, 5, 5)
        delivery.end_chunk(11)
        delivery.confirm()  # drains the first turn, while the second stays in flight
        assert delivery.confirmed_line == 6
        assert delivery.producer is first
        delivery.finish(11)
        assert delivery.confirmed_line == 11
    finally:
        delivery.close()
    assert len(read_topic(settings, topic)) == 10


def test_a_refused_record_stops_the_confirmed_prefix(streams_settings) -> None:
    settings = streams_settings()
    topic = settings.input_topic
    limit_record_size(settings, topic)
    delivery = ChunkedDelivery(settings, client_id="test")
    try:
        produce(delivery, topic, 0, 5)
        delivery.end_chunk(6)
        delivery.confirm()
        assert delivery.confirmed_line == 6
        # Random hex does not compress below the topic's limit.
        big = b'{"event_id":"big","x":"%s"}' % os.urandom(TOPIC_LIMIT_BYTES).hex().encode()
        delivery.producer.produce(topic, big, KEY)
        produce(delivery, topic, 5, 5)
        delivery.end_chunk(12)
        delivery.confirm()
        assert delivery.failed
        assert delivery.failed_records >= 1
        assert delivery.confirmed_line == 6
        assert delivery.error_messages[0].startswith("big: ")
        assert "too large" in delivery.error_messages[0].lower()
        produce(delivery, topic, 10, 5)
        delivery.end_chunk(17)
        delivery.finish(17)
        assert delivery.confirmed_line == 6  # delivered rows after a gap confirm nothing
    finally:
        delivery.close()
