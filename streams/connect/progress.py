"""Where a connector's delivery stands in each assigned partition: the next offset to deliver
and the partition's end, refreshed by the worker's own thread at most once a second (never per
record) and read by others as one immutable snapshot."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.web.status import PartitionFigures, PartitionState

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
# Asking the broker (committed offsets at assignment, watermarks while paused) waits this long.
BROKER_QUERY_TIMEOUT_SECONDS = 1.0


class DeliveryProgress:
    def __init__(self, consumer: Consumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic
        self._partitions: list[int] = []
        self._delivered: dict[int, int] = {}  # next offset to deliver, as committed
        self._refreshed_at = float("-inf")
        self.snapshot: tuple[PartitionFigures, ...] = ()

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """New partitions: their committed offsets, asked once per rebalance."""
        self._partitions = sorted(tp.partition for tp in partitions)
        self._delivered = {}
        self._refreshed_at = float("-inf")
        if not partitions:
            return
        try:
            committed = self._consumer.committed(partitions, timeout=BROKER_QUERY_TIMEOUT_SECONDS)
        except KafkaException as exc:
            logger.warning("committed offsets unknown topic=%s: %s", self._topic, exc)
            return
        self._delivered = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}

    def revoked(self) -> None:
        self._partitions = []
        self.snapshot = ()

    def delivered(self, offsets: Mapping[int, int]) -> None:
        """A batch was delivered and committed up to ``offsets`` (next offset per partition)."""
        self._delivered.update(offsets)

    def refresh(self, pending: Mapping[int, int], paused: bool) -> None:
        """``pending``: the first consumed but undelivered offset per partition. The next offset
        to deliver is that, else the consumer's position, else the last commit, else (never
        committed: ``auto.offset.reset`` is earliest) the low watermark. Watermarks come from
        fetch responses, or from the broker while ``paused`` (no fetches then)."""
        now = time.monotonic()
        if now - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshed_at = now
        try:
            positions = self._consumer.position(
                [TopicPartition(self._topic, p) for p in self._partitions]
            )
        except KafkaException:
            return
        ends = {p.partition: p.end for p in self.snapshot}
        ask_broker = paused
        progress = []
        for tp in positions:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    tp, timeout=BROKER_QUERY_TIMEOUT_SECONDS, cached=not ask_broker
                )
            except KafkaException:
                # The broker does not answer: keep the last ends, and ask no more this time.
                low, high, ask_broker = -1, -1, False
            known = (
                pending.get(tp.partition),
                tp.offset if tp.offset >= 0 else None,
                self._delivered.get(tp.partition),
                low if low >= 0 else None,
            )
            position = next((offset for offset in known if offset is not None), None)
            end = high if high >= 0 else ends.get(tp.partition)
            state: PartitionState = "paused" if paused else "owned"
            progress.append(PartitionFigures(self._topic, tp.partition, state, position, end))
        self.snapshot = tuple(progress)
