"""Helpers for tests of code that talks to Profile Streams (ours and yours)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.codecs.upserts import UpsertCodec
from streams.connect.records import Rejection, SinkRecord, WriteResult
from streams.connect.sink import BatchingSink
from streams.kafka.clients import reader_config
from streams.kafka.produce import produce_lines
from streams.merge import MergePolicy, apply_event, upsert_as_event
from streams.model import Profile, Upsert
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


# Just after a topic is created its partitions may still be electing leaders.
_LEADER_ELECTION = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})
_ELECTION_RETRY_SECONDS = 0.2


def _high_watermark(consumer: Consumer, partition: TopicPartition, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, high = consumer.get_watermark_offsets(partition, timeout=timeout)
            return int(high)
        except KafkaException as exc:
            if exc.args[0].code() not in _LEADER_ELECTION or time.monotonic() > deadline:
                raise
            time.sleep(_ELECTION_RETRY_SECONDS)


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
            high = _high_watermark(consumer, TopicPartition(topic, p), timeout)
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


class MemorySink(BatchingSink):
    """An in-memory destination that merges like the processor; failures can be injected.

    ``fail_next`` holds exceptions raised by the next writes, in order; ``reject`` picks
    records to refuse for good (returns a reason, or None to accept).
    """

    name = "memory"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.profiles: dict[str, Profile] = {}
        self.fail_next: list[Exception] = []
        self.reject: Callable[[SinkRecord], str | None] | None = None
        self.attempts: list[float] = []
        self.max_buffered = 0
        self._policy = MergePolicy(settings.priorities())
        self._lock = threading.Lock()

    def add(self, record: SinkRecord) -> None:
        super().add(record)
        self.max_buffered = max(self.max_buffered, self.buffered)

    def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        self.attempts.append(time.monotonic())
        if self.fail_next:
            raise self.fail_next.pop(0)
        result = WriteResult()
        with self._lock:
            for record in batch:
                reason = self.reject(record) if self.reject is not None else None
                if reason is not None:
                    result.rejected.append(Rejection(record, reason))
                    continue
                profile = self.profiles.setdefault(record.customer_id, Profile())
                apply_event(profile, upsert_as_event(record.upsert), self._policy)
        return result

    def snapshot(self) -> dict[str, Profile]:
        with self._lock:
            return {k: Profile(dict(v.properties), v.deleted_at) for k, v in self.profiles.items()}
