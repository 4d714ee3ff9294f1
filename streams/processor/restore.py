"""Rebuild a partition's local state from the compacted changelog topic."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streams.errors import StreamsError
from streams.kafka.clients import reader_config
from streams.kafka.reading import read_range
from streams.merge import MergePolicy, join_profiles
from streams.processor.state_codec import decode_profile, encode_profile
from streams.processor.store import PartitionStore, StateStores
from streams.settings import Settings

logger = logging.getLogger(__name__)

WATERMARK_TIMEOUT_SECONDS = 10.0
RETRY_BACKOFF_SECONDS = 0.5


class RestoreError(StreamsError):
    """The changelog could not be read back in time."""


def restore_partition(
    settings: Settings,
    stores: StateStores,
    partition: int,
    *,
    timeout: float = 600.0,
    batch_size: int = 10_000,
) -> int:
    """Catch the local store up with the changelog; returns the number of records read.

    States are joined, not overwritten, so a changelog record written late by a previous
    owner cannot roll a profile back.
    """
    topic = settings.changelog_topic
    policy = MergePolicy(settings.priorities())
    reader = Consumer(reader_config(settings))
    try:
        low, high = _watermarks(
            reader, TopicPartition(topic, partition), time.monotonic() + timeout
        )
        store = stores.open(partition)
        checkpoint = store.changelog_offset()
        if checkpoint is not None and checkpoint >= high:
            # The store is ahead of the topic: the changelog was recreated. Start over.
            store = stores.wipe(partition)
            checkpoint = None
        start = low if checkpoint is None else max(checkpoint + 1, low)
        if start >= high:
            return 0
        started = time.monotonic()
        restored = 0
        batches = read_range(
            reader,
            topic,
            partition,
            start,
            high,
            batch_size=batch_size,
            deadline=started + timeout,
        )
        for messages in batches:
            restored += _apply(store, policy, messages)
        # Everything up to the end is included now, compaction gaps too.
        store.write({}, high - 1)
        logger.info(
            "restored partition=%d records=%d seconds=%.2f",
            partition,
            restored,
            time.monotonic() - started,
        )
        return restored
    finally:
        reader.close()


def _watermarks(reader: Consumer, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    # Right after topic creation or a leader change the broker answers "not leader" for a moment.
    while True:
        try:
            low, high = reader.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT_SECONDS)
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise RestoreError(
                    f"cannot read offsets of {tp.topic}[{tp.partition}]: {exc}"
                ) from exc
            logger.info("waiting for changelog partition=%d: %s", tp.partition, exc)
            time.sleep(RETRY_BACKOFF_SECONDS)


def _apply(store: PartitionStore, policy: MergePolicy, messages: list[Message]) -> int:
    states: dict[bytes, bytes] = {}
    applied = 0
    for message in messages:
        key, value = message.key(), message.value()
        if key is None or value is None:
            continue
        applied += 1
        known = states.get(key) or store.get(key)
        if known is not None:
            value = encode_profile(
                join_profiles(decode_profile(known), decode_profile(value), policy)
            )
        states[key] = value
    store.write(states, messages[-1].offset())
    return applied
