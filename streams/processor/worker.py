"""The processor's consume-merge-produce loop; one instance per worker process."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import cast

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from streams.errors import DeliveryError
from streams.kafka.clients import consumer_config, producer_config
from streams.processor.batch import BatchProcessor
from streams.processor.delivery import BatchDelivery
from streams.processor.metrics import WorkerMetrics
from streams.processor.records import BatchCounts, Headers, InputRecord, OutputRecord
from streams.processor.restore import restore_partition
from streams.processor.store import StateStores
from streams.settings import Settings

logger = logging.getLogger(__name__)

LAG_REFRESH_SECONDS = 1.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProcessorWorker:
    """Consumes the input in batches; per batch: merge, deliver outputs, deliver new states to
    the changelog, write them locally, then commit. A crash anywhere replays the batch, which
    the idempotent merge absorbs."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str,
        stores: StateStores | None = None,
        metrics: WorkerMetrics | None = None,
        retry_backoff_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.stores = stores or StateStores(settings.data_dir)
        self.metrics = metrics or WorkerMetrics()
        self.totals = BatchCounts()
        self.error: BaseException | None = None
        self._owned: frozenset[int] = frozenset()
        self._assigned_once = threading.Event()
        self._stop = threading.Event()
        self._retry_backoff = retry_backoff_seconds
        self._consumer = Consumer(consumer_config(settings, **{"client.id": client_id}))
        self._producer = Producer(producer_config(settings, **{"client.id": client_id}))
        self._delivery = BatchDelivery(
            self._producer, flush_timeout=settings.delivery_timeout_ms / 1000 + 5
        )
        self._batch = BatchProcessor(settings, self._load_states, _now_ms)
        self._lag_refreshed = 0.0

    @property
    def owned_partitions(self) -> frozenset[int]:
        return self._owned

    def wait_assigned(self, timeout: float) -> bool:
        """True once the worker received (and restored) its first assignment."""
        return self._assigned_once.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Run until ``stop()``; leaves the group cleanly. Errors end up in ``self.error``."""
        self._consumer.subscribe(
            [self.settings.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        wait = self.settings.batch_max_wait_ms / 1000
        try:
            while not self._stop.is_set():
                messages = self._consumer.consume(self.settings.batch_max_events, wait)
                if messages:
                    self._handle(messages)
                self._refresh_lag()
        except BaseException as exc:
            self.error = exc
            logger.exception("processor stopped by an error")
            raise
        finally:
            self._shutdown()

    def _handle(self, messages: Sequence[Message]) -> None:
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                logger.warning("consumer error: %s", error.str())
                continue
            records.append(
                InputRecord(
                    message.partition() or 0,
                    message.offset() or 0,
                    message.key(),
                    message.value(),
                    message.timestamp()[1],
                    cast(Headers | None, message.headers()),
                )
            )
        if not records:
            return
        started = time.perf_counter()
        result = self._batch.process(records)
        try:
            self._delivery.send(result.outputs)
            changelog = [
                OutputRecord(self.settings.changelog_topic, partition, key, state)
                for partition, states in result.states.items()
                for key, state in states.items()
            ]
            offsets = self._delivery.send_tracking_offsets(changelog)
        except DeliveryError as exc:
            self.metrics.delivery_failures.inc()
            logger.error("delivery failed, replaying the batch: %s", exc)
            self._rewind(records)
            self._stop.wait(self._retry_backoff)
            return
        for partition, states in result.states.items():
            self.stores.open(partition).write(states, offsets.get(partition))
        self._commit(result.next_offsets)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.record(result.counts)
        self.totals.add(result.counts)

    def _load_states(self, partition: int, keys: list[bytes]) -> list[bytes | None]:
        return self.stores.open(partition).get_many(keys)

    def _commit(self, next_offsets: dict[int, int]) -> None:
        topic = self.settings.input_topic
        offsets = [TopicPartition(topic, p, offset) for p, offset in next_offsets.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance: the new owner replays from the last commit, harmlessly.
            logger.warning("commit failed, batch will be replayed: %s", exc)

    def _rewind(self, records: Sequence[InputRecord]) -> None:
        first: dict[int, int] = {}
        for record in records:
            first.setdefault(record.partition, record.offset)
        for partition, offset in first.items():
            if partition in self._owned:
                self._consumer.seek(TopicPartition(self.settings.input_topic, partition, offset))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            restore_partition(self.settings, self.stores, tp.partition)
        self._owned = self._owned | {tp.partition for tp in partitions}
        self.metrics.assigned.set(len(self._owned))
        self._assigned_once.set()
        logger.info("assigned partitions=%s owned=%s", _ids(partitions), sorted(self._owned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._owned = self._owned - {tp.partition for tp in partitions}
        self.metrics.assigned.set(len(self._owned))
        for tp in partitions:
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(str(tp.partition))
        logger.info("revoked partitions=%s owned=%s", _ids(partitions), sorted(self._owned))

    def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_refreshed < LAG_REFRESH_SECONDS or not self._owned:
            return
        self._lag_refreshed = now
        topic = self.settings.input_topic
        try:
            positions = self._consumer.position([TopicPartition(topic, p) for p in self._owned])
        except KafkaException:
            return
        for tp in positions:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                self.metrics.lag.labels(partition=str(tp.partition)).set(max(high - tp.offset, 0))

    def _shutdown(self) -> None:
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("consumer close: %s", exc)
        self._producer.flush(self.settings.delivery_timeout_ms / 1000)
        self._owned = frozenset()
        self.stores.close()


def _ids(partitions: list[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)
