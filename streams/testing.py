"""Helpers for tests of code that talks to Profile Streams (ours and yours)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from streams.codecs.upserts import UpsertCodec
from streams.kafka.clients import reader_config
from streams.kafka.produce import produce_lines
from streams.model import Upsert
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def produce_events(settings: Settings, events: Iterable[Mapping[str, object] | bytes]) -> int:
    """Produce events (dicts become JSON) to the input topic, keyed by customer id."""
    return produce_lines(settings, (e if isinstance(e, bytes) else orjson.dumps(e) for e in events))


def read_topic(settings: Settings, topic: str, *, timeout: float = 30.0) -> list[ConsumedRecord]:
    """Every record currently in ``topic``, partition by partition, in offset order."""
    consumer = Consumer(reader_config(settings, **{"group.id": f"reader-{uuid.uuid4().hex}"}))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(metadata.topics[topic].partitions)
        ends: dict[int, int] = {}
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > 0:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records: list[ConsumedRecord] = []
        deadline = time.monotonic() + timeout
        done: set[int] = set()
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                partition, offset = message.partition(), message.offset()
                if partition is None:
                    continue
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done.add(partition)
                        continue
                    raise RuntimeError(error.str())
                assert offset is not None
                headers = cast(list[tuple[str, bytes]], message.headers() or [])
                records.append(
                    ConsumedRecord(partition, offset, message.key(), message.value(), dict(headers))
                )
                if offset >= ends[partition] - 1:
                    done.add(partition)
        if len(done) < len(ends):
            raise TimeoutError(f"read_topic({topic}) did not reach the end in {timeout}s")
        records.sort(key=lambda r: (r.partition, r.offset))
        return records
    finally:
        consumer.close()


def read_upserts(settings: Settings, *, timeout: float = 30.0) -> list[Upsert]:
    codec = UpsertCodec(settings.output_format)
    return [
        codec.decode(r.value)
        for r in read_topic(settings, settings.upserts_topic, timeout=timeout)
        if r.value is not None
    ]


def wait_until(predicate: Callable[[], bool], *, timeout: float = 60.0, every: float = 0.1) -> None:
    """Poll ``predicate`` until true; raise TimeoutError naming it otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise TimeoutError(
        f"condition {getattr(predicate, '__name__', predicate)} not met in {timeout}s"
    )
