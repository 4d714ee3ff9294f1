"""Waiting for room in librdkafka's local queue: a record that meets a full queue is produced
once delivery reports freed room, in order, and nothing is lost or doubled."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.kafka.batch_delivery import BatchDelivery
from streams.kafka.clients import producer_config
from streams.kafka.output_records import OutputRecord
from streams.kafka.queue_full import produce_all, produce_waiting, produce_when_room
from streams.testing import read_topic

# One record fills the queue; with no broker it times out soon, which frees the room. Silent:
# librdkafka would print its connection failures on stderr, during later tests too.
NO_BROKER: dict[str, Any] = {
    "bootstrap.servers": "127.0.0.1:1",
    "log_level": 0,
    "queue.buffering.max.messages": 1,
    "message.timeout.ms": 200,
}
RECORDS = 300
SMALL_QUEUE = {"queue.buffering.max.messages": 10}


def test_a_record_meeting_a_full_queue_waits_for_the_reports_that_free_room() -> None:
    reports: list[tuple[bytes | None, int | None]] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        reports.append((message.value(), error.code() if error else None))

    producer = Producer(NO_BROKER)
    producer.produce("t", b"first", b"k", on_delivery=on_delivery)
    with pytest.raises(BufferError):
        producer.produce("t", b"second", b"k", on_delivery=on_delivery)

    produce_waiting(producer, "t", b"second", b"k", on_delivery)

    assert reports == [(b"first", KafkaError._MSG_TIMED_OUT)]
    producer.flush(5)
    assert reports[1] == (b"second", KafkaError._MSG_TIMED_OUT)


def test_an_error_other_than_a_full_queue_is_raised_as_produce_raises_it() -> None:
    producer = Producer({**NO_BROKER, "message.max.bytes": 1000})
    producer.produce("t", b"first")
    with pytest.raises(KafkaException) as caught:
        produce_when_room(producer, "t", b"x" * 5000)
    assert caught.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    producer.flush(5)


def test_produce_all_delivers_every_record_in_order_through_a_small_queue(
    streams_settings,
) -> None:
    settings = streams_settings(partitions=1)
    producer = Producer(producer_config(settings, **SMALL_QUEUE))
    values = [b"v-%d" % i for i in range(RECORDS)]

    produce_all(producer, settings.input_topic, values, [b"k"] * RECORDS)

    assert producer.flush(30) == 0
    assert [r.value for r in read_topic(settings, settings.input_topic)] == values


def test_batch_delivery_through_a_small_queue_confirms_every_record(streams_settings) -> None:
    settings = streams_settings(partitions=1)
    delivery = BatchDelivery(Producer(producer_config(settings, **SMALL_QUEUE)), flush_timeout=30)
    topic = settings.input_topic
    records = [OutputRecord(topic, 0, b"k", b"v-%d" % i) for i in range(RECORDS)]
    records[7] = records[7]._replace(headers=[("h", b"1")], timestamp_ms=1_700_000_000_000)

    offsets, refused = delivery.send_tracking_offsets(records)

    assert refused == []
    assert offsets == {0: RECORDS - 1}
    read = read_topic(settings, topic)
    assert [r.value for r in read] == [r.value for r in records]
    assert read[7].headers == {"h": b"1"}
