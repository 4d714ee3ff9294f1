"""Producing when librdkafka's local queue is full: ``produce`` raises ``BufferError`` until
delivery reports are served (``poll``), which frees room. Every producer that waits for room
does it here (the ingestion service answers "retry later" instead: its event loop must not wait).

The hot loops call ``produce`` themselves and come here only on ``BufferError``: a record that
finds room costs them no extra call."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

# Delivery reports of failures only never wake ``poll`` early: this is the wait between tries.
QUEUE_FULL_POLL_SECONDS = 0.05


def produce_when_room(producer: Producer, *args: Any, **kwargs: Any) -> None:
    """``producer.produce(*args, **kwargs)`` after it raised ``BufferError``: serve delivery
    reports until the queue takes the record. Other errors are raised as ``produce`` raises
    them."""
    while True:
        producer.poll(QUEUE_FULL_POLL_SECONDS)
        try:
            producer.produce(*args, **kwargs)
            return
        except BufferError:
            continue


def produce_waiting(
    producer: Producer,
    topic: str,
    value: bytes,
    key: bytes | None,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
) -> None:
    """``produce`` one record, waiting for room. For paths where one call per record is cheap
    enough."""
    try:
        producer.produce(topic, value, key, on_delivery=on_delivery)
    except BufferError:
        produce_when_room(producer, topic, value, key, on_delivery=on_delivery)


def produce_all(
    producer: Producer, topic: str, values: Iterable[bytes], keys: Iterable[bytes | None]
) -> None:
    """``produce`` every ``(value, key)`` pair in order, waiting for room; the producer's own
    ``on_delivery`` (if any) reports them. The loop of the bulk producers, kept to one bound
    call per record."""
    produce = producer.produce
    for value, key in zip(values, keys, strict=True):
        try:
            produce(topic, value, key)
        except BufferError:
            produce_when_room(producer, topic, value, key)
