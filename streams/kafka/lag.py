"""A group consumer's lag, from what it already knows: no request to the broker."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

Offsets = dict[int, tuple[int | None, int | None]]


def partition_offsets(consumer: Consumer, topic: str, partitions: Iterable[int]) -> Offsets:
    """``{partition: (the consumer's position, the high watermark)}`` of ``partitions``, None
    where unknown. The watermark is the one the last fetch brought (cached), so this costs no
    round trip."""
    try:
        positions = consumer.position([TopicPartition(topic, p) for p in partitions])
    except KafkaException:
        return {}
    offsets: Offsets = {}
    for tp in positions:
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        offsets[tp.partition] = (tp.offset if tp.offset >= 0 else None, high if high >= 0 else None)
    return offsets


def lag_of(offsets: Offsets) -> dict[int, int]:
    """``{partition: records between position and watermark}`` where both are known."""
    return {
        partition: max(end - position, 0)
        for partition, (position, end) in offsets.items()
        if position is not None and end is not None
    }
