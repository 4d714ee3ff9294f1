"""A group consumer's lag, from what it already knows: no request to the broker."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition


def partition_lag(consumer: Consumer, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """``{partition: records between the consumer's position and the high watermark}`` for
    those of ``partitions`` whose position and watermark are known. The watermark is the one
    the last fetch brought (cached), so this costs no round trip."""
    try:
        positions = consumer.position([TopicPartition(topic, p) for p in partitions])
    except KafkaException:
        return {}
    lag = {}
    for tp in positions:
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if high >= 0 and tp.offset >= 0:
            lag[tp.partition] = max(high - tp.offset, 0)
    return lag
