"""ChunkedDelivery against the real broker: what a confirmation confirms, and how a record the
broker refuses stops the confirmed prefix for good (and a job with it, until a rerun)."""

from __future__ import annotations

import os
import random
import string

# Where the classes live: the package re-exports them in a way mypy does not count as exported.
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from streams.bootstrap.delivery import ChunkedDelivery
from streams.bootstrap.report import Status
from streams.kafka.clients import admin_client
from streams.settings import Settings
from streams.testing import read_topic
from tests.test_bootstrap.bootstrap_helpers import event_lines, mapping_of, topic_events

KEY = b"c-1"  # one key, one partition: the broker sees the records in the order produced
TOPIC_LIMIT_BYTES = 2000


def produce(delivery: ChunkedDelivery, topic: str, first: int, count: int) -> None:
    for number in range(first, first + count):
        delivery.producer.produce(topic, b'{"event_id":"e-%d"}' % number, KEY)


def limit_record_size(settings: Settings, topic: str, limit: int = TOPIC_LIMIT_BYTES) -> None:
    entry = ConfigEntry(
        "max.message.bytes",
        str(limit),
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


def test_a_job_stops_at_a_refused_row_and_its_rerun_delivers_the_rest(
    streams_settings, write_csv, run_job
) -> None:
    settings = streams_settings()
    limit_record_size(settings, settings.input_topic)
    letters = random.Random(7).choices(string.ascii_letters, k=2 * TOPIC_LIMIT_BYTES)
    rows = [[f"c-{n}", f"N{n}", f"u{n}@x.org", str(n)] for n in range(40)]
    rows[24][1] = "".join(letters)  # line 26: over the topic's limit even compressed
    path = write_csv(["id", "name", "email", "age"], rows)
    # Chunks of lines 2-11, 12-21, 22-31 and 32-41, each confirmed before the next.
    _, first = run_job(settings, path, mapping_of(), chunk_rows=10, checkpoint_interval=0.0)
    assert first.status is Status.DELIVERY_FAILED
    assert first.exit_code == 1
    assert first.confirmed_line == 21
    assert first.delivery_failures >= 1
    assert ":26: " in first.delivery_errors[0]
    assert "too large" in first.delivery_errors[0].lower()

    limit_record_size(settings, settings.input_topic, 1_048_588)  # the broker's default
    _, second = run_job(settings, path, mapping_of(), chunk_rows=10, checkpoint_interval=0.0)
    assert second.status is Status.COMPLETED
    assert second.resumed_after_line == 21
    assert second.stats.produced == 20
    assert set(event_lines(topic_events(settings))) == set(range(2, 42))
