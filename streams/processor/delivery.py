"""Produce a batch of records and wait until Kafka confirmed every one of them.

Three outcomes per record: acknowledged; refused for good (too large, invalid: returned as a
:class:`Refusal`, for the caller to retry and then park); or not delivered because Kafka is
unavailable (raises :class:`DeliveryError`: replay later). A fatal error of the idempotent
producer is raised as ``KafkaException``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import NamedTuple, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.errors import DeliveryError
from streams.kafka.dead_letters import is_unavailable
from streams.processor.records import OutputRecord

logger = logging.getLogger(__name__)


class Refusal(NamedTuple):
    """A record Kafka refused for a reason of its own (not because Kafka is unavailable)."""

    record: OutputRecord
    error: KafkaError


class _Reports:
    __slots__ = ("offsets", "refused", "unavailable")

    def __init__(self) -> None:
        self.unavailable: list[KafkaError] = []
        self.refused: list[Refusal] = []
        self.offsets: dict[int, int] = {}

    def failed(self, record: OutputRecord, error: KafkaError) -> None:
        if error.fatal():
            # The idempotent producer cannot go on; retrying would loop forever. Crash loudly.
            raise KafkaException(error)
        if is_unavailable(error):
            self.unavailable.append(error)
        else:
            self.refused.append(Refusal(record, error))

    def on_delivery(self, record: OutputRecord, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            if error.fatal():
                self.unavailable.append(error)  # raised by _wait, not inside librdkafka's poll
            else:
                self.failed(record, error)
            return
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset


class BatchDelivery:
    """Wraps one idempotent producer; every call ends with all its records acknowledged or
    refused."""

    def __init__(self, producer: Producer, *, flush_timeout: float, poll_interval: float = 0.05):
        self._producer = producer
        self._flush_timeout = flush_timeout
        self._poll_interval = poll_interval

    def send(
        self, records: Iterable[OutputRecord], *, one_at_a_time: bool = False
    ) -> list[Refusal]:
        """Produce and wait; returns the refused records. ``one_at_a_time`` waits for each
        record before the next: the broker refuses a whole batch for one record too large for
        its topic, so this tells the culprit from its neighbours."""
        return self.send_tracking_offsets(records, one_at_a_time=one_at_a_time)[1]

    def send_tracking_offsets(
        self, records: Iterable[OutputRecord], *, one_at_a_time: bool = False
    ) -> tuple[dict[int, int], list[Refusal]]:
        """Like ``send``; also returns the highest acknowledged offset per partition."""
        reports = _Reports()
        if one_at_a_time:
            for record in records:
                self._produce((record,), reports)
                self._wait(reports)
        else:
            self._produce(records, reports)
            self._wait(reports)
        return reports.offsets, reports.refused

    def _produce(self, records: Iterable[OutputRecord], reports: _Reports) -> None:
        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        partition=record.partition,
                        on_delivery=partial(reports.on_delivery, record),
                        timestamp=record.timestamp_ms or 0,
                        headers=cast("list[tuple[str, str | bytes | None]] | None", record.headers),
                    )
                    break
                except BufferError:
                    # Local queue full: serve delivery reports until there is room.
                    self._producer.poll(self._poll_interval)
                except KafkaException as exc:  # refused before queueing (too large, say)
                    reports.failed(record, exc.args[0])
                    break

    def _wait(self, reports: _Reports) -> None:
        remaining = self._producer.flush(self._flush_timeout)
        fatal = next((error for error in reports.unavailable if error.fatal()), None)
        if fatal is not None:
            # The idempotent producer cannot go on; retrying would loop forever. Crash loudly.
            raise KafkaException(fatal)
        if reports.unavailable:
            first = reports.unavailable[0]
            raise DeliveryError(
                f"{len(reports.unavailable)} records not delivered, first error: {first.str()}"
            )
        if remaining:
            raise DeliveryError(f"{remaining} records still unacknowledged after flush timeout")
