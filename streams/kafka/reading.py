"""Read one partition from an offset to a known end: changelog restore, export and the
inspection commands (``streams dlq``, ``streams topics tail``) share it; the latter also list a
topic's partitions and follow it past its end."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.errors import KafkaUnavailableError, StreamsError


class ReadError(StreamsError):
    """A partition could not be read to its end (broker error or deadline)."""


class TopicNotFoundError(StreamsError):
    """The topic to read does not exist."""


def partition_ends(
    consumer: Consumer, topic: str, *, timeout: float = 30.0
) -> dict[int, tuple[int, int]]:
    """``{partition: (low, high)}`` watermarks of every partition of ``topic`` now."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise TopicNotFoundError(f"topic {topic} not found")
        return {
            partition: consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            for partition in sorted(found.partitions)
        }
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        text = error.str() if error is not None else str(exc)
        raise KafkaUnavailableError(f"Kafka did not describe {topic}: {text}") from exc


def read_to_end(
    consumer: Consumer, topic: str, ranges: Mapping[int, tuple[int, int]]
) -> Iterator[Message]:
    """Every record of ``ranges`` (``{partition: (start, end)}``), partition by partition."""
    for partition, (start, end) in ranges.items():
        if end > start:
            for batch in read_range(consumer, topic, partition, start, end):
                yield from batch


def follow(
    consumer: Consumer, topic: str, starts: Mapping[int, int], *, poll_seconds: float = 0.5
) -> Iterator[Message]:
    """Every record from ``starts`` (``{partition: offset}``) on, waiting for new ones without
    end: the caller stops iterating (a limit, Ctrl-C)."""
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    while True:
        for message in consumer.consume(1000, poll_seconds):
            error = message.error()
            if error is None:
                yield message
            elif error.code() != KafkaError._PARTITION_EOF:
                raise ReadError(f"reading {topic} failed: {error.str()}")


def read_range(
    consumer: Consumer,
    topic: str,
    partition: int,
    start: int,
    end: int,
    *,
    batch_size: int = 10_000,
    poll_seconds: float = 0.1,
    deadline: float | None = None,
) -> Iterator[list[Message]]:
    """Batches of records at offsets ``start`` up to ``end`` (exclusive), in offset order.

    Compacted topics have gaps, so reaching the partition's end also ends the read; the
    consumer needs ``enable.partition.eof`` (``reader_config`` sets it). ``consume`` returns
    when it has as many records as asked for, else at its timeout: it is asked for no more
    than the offsets left, so the last batch does not wait out the timeout, and the timeout is
    short for a compaction gap (fewer records than offsets; the end is reported then).
    """
    consumer.assign([TopicPartition(topic, partition, start)])
    last = start - 1
    while last < end - 1:
        if deadline is not None and time.monotonic() > deadline:
            raise ReadError(f"reading {topic}[{partition}] timed out at offset {last}")
        batch: list[Message] = []
        wanted = max(1, min(batch_size, end - 1 - last))
        for message in consumer.consume(wanted, poll_seconds):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    # A consumer reused from partition to partition: only this one's end counts.
                    if message.partition() == partition and message.topic() == topic:
                        last = end - 1
                    continue
                raise ReadError(f"reading {topic}[{partition}] failed: {error.str()}")
            last = message.offset() or last
            batch.append(message)
        if batch:
            yield batch
