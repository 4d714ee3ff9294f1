"""Read one partition from an offset to a known end: changelog restore and export share it."""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from streams.errors import StreamsError


class ReadError(StreamsError):
    """A partition could not be read to its end (broker error or deadline)."""


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
