"""Produce a batch of records and wait until Kafka confirmed every one of them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.errors import DeliveryError
from streams.processor.records import OutputRecord

logger = logging.getLogger(__name__)


class _Reports:
    __slots__ = ("errors", "offsets")

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []
        self.offsets: dict[int, int] = {}

    def on_error_only(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors.append(error)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors.append(error)
            return
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset


class BatchDelivery:
    """Wraps one idempotent producer; every call ends with all its records acknowledged."""

    def __init__(self, producer: Producer, *, flush_timeout: float, poll_interval: float = 0.05):
        self._producer = producer
        self._flush_timeout = flush_timeout
        self._poll_interval = poll_interval

    def send(self, records: Iterable[OutputRecord]) -> None:
        """Produce and wait; raises DeliveryError if any record was not acknowledged."""
        reports = _Reports()
        self._produce(records, reports.on_error_only)
        self._wait(reports)

    def send_tracking_offsets(self, records: Iterable[OutputRecord]) -> dict[int, int]:
        """Like ``send``; returns the highest acknowledged offset per partition."""
        reports = _Reports()
        self._produce(records, reports.on_delivery)
        self._wait(reports)
        return reports.offsets

    def _produce(
        self,
        records: Iterable[OutputRecord],
        callback: Callable[[KafkaError | None, Message], None],
    ) -> None:
        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        partition=record.partition,
                        on_delivery=callback,
                        timestamp=record.timestamp_ms or 0,
                        headers=cast("list[tuple[str, str | bytes | None]] | None", record.headers),
                    )
                    break
                except BufferError:
                    # Local queue full: serve delivery reports until there is room.
                    self._producer.poll(self._poll_interval)

    def _wait(self, reports: _Reports) -> None:
        remaining = self._producer.flush(self._flush_timeout)
        fatal = next((error for error in reports.errors if error.fatal()), None)
        if fatal is not None:
            # The idempotent producer cannot go on; retrying would loop forever. Crash loudly.
            raise KafkaException(fatal)
        if reports.errors:
            first = reports.errors[0]
            raise DeliveryError(
                f"{len(reports.errors)} records not delivered, first error: {first.str()}"
            )
        if remaining:
            raise DeliveryError(f"{remaining} records still unacknowledged after flush timeout")
