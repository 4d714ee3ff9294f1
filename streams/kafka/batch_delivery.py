"""Produce a batch of records and wait until Kafka confirmed every one of them (the processor's
outputs and changelog, the connectors' dead letters).

Three outcomes per record: acknowledged; refused for good (too large, invalid: returned as a
:class:`Refusal`, for the caller to retry and then park); or not delivered because Kafka is
unavailable (raises :class:`DeliveryError`: replay later). A fatal error of the idempotent
producer is raised as ``KafkaException``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams._native import produce_records
from streams.errors import DeliveryError
from streams.kafka.dead_letters import is_unavailable
from streams.kafka.output_records import OutputRecord
from streams.kafka.queue_full import produce_when_room

logger = logging.getLogger(__name__)


class Refusal(NamedTuple):
    """A record Kafka refused for a reason of its own (not because Kafka is unavailable)."""

    record: OutputRecord
    error: KafkaError


class Reports:
    """Delivery reports of one call. One bound method serves every record (no per-record
    closure on the hot path); a failed record is found by its bytes, errors being rare."""

    __slots__ = ("_index", "_records", "offsets", "refused", "unavailable")

    def __init__(self, records: Sequence[OutputRecord]) -> None:
        self._records = records
        self._index: dict[_Identity, list[OutputRecord]] | None = None
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

    def on_error_only(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._report_failure(error, message)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._report_failure(error, message)
            return
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset

    def _report_failure(self, error: KafkaError, message: Message) -> None:
        if error.fatal() or is_unavailable(error):
            self.unavailable.append(error)  # fatal ones are raised by _wait, not in poll()
            return
        if self._index is None:
            self._index = {}
            for record in self._records:
                self._index.setdefault(_identity(record), []).append(record)
        found = self._index.get(
            (message.topic() or "", message.partition(), message.key(), message.value())
        )
        if found:
            self.refused.append(Refusal(found.pop(), error))
        else:  # cannot happen: a report carries the bytes we produced
            self.unavailable.append(error)


Callback = Callable[[KafkaError | None, Message], None]

_Identity = tuple[str, int | None, bytes | None, bytes | None]


def _identity(record: OutputRecord) -> _Identity:
    return record.topic, record.partition, record.key, record.value


_partition_of = itemgetter(0, 1)  # an output record's (topic, partition)


class BatchDelivery:
    """Wraps an idempotent producer; every call ends with all its records acknowledged or
    refused.

    ``offsets_producer``, when given, reports every delivery and takes the records whose
    offsets are tracked: all of them with ``one_at_a_time``, otherwise the last of each
    partition. ``producer`` may then report failures only (``delivery.report.only.error``),
    which spares a Python callback per record."""

    def __init__(
        self,
        producer: Producer,
        *,
        flush_timeout: float,
        offsets_producer: Producer | None = None,
    ):
        self._producer = producer
        self._offsets_producer = offsets_producer or producer
        self._producers = [producer]
        if offsets_producer is not None and offsets_producer is not producer:
            self._producers.append(offsets_producer)
        self._flush_timeout = flush_timeout

    def send(
        self, records: Iterable[OutputRecord], *, one_at_a_time: bool = False
    ) -> list[Refusal]:
        """Produce and wait; returns the refused records. ``one_at_a_time`` waits for each
        record before the next: the broker refuses a whole batch for one record too large for
        its topic, so this tells the culprit from its neighbours."""
        return self._send(records, one_at_a_time, track_offsets=False)[1]

    def send_tracking_offsets(
        self, records: Iterable[OutputRecord], *, one_at_a_time: bool = False
    ) -> tuple[dict[int, int], list[Refusal]]:
        """Like ``send``; also returns an acknowledged offset per partition, above those of
        every earlier call: the highest with ``one_at_a_time``, otherwise possibly below some
        of this call's own records (see ``start``)."""
        return self._send(records, one_at_a_time, track_offsets=True)

    def start(self, records: Iterable[OutputRecord], *, track_offsets: bool) -> Reports:
        """Produce without waiting: ``wait`` later says how these records fared (``offsets``
        and ``refused`` of the returned reports). Lets a batch's records be in flight while
        the next batch is merged."""
        batch = records if isinstance(records, list) else list(records)
        reports = Reports(batch)
        if not track_offsets:
            self._produce(self._producer, batch, reports, reports.on_error_only)
        elif self._offsets_producer is self._producer:
            self._produce(self._producer, batch, reports, reports.on_delivery)
        else:
            # A report per record costs a Python call and a copy of the record: only the last
            # record of each partition is reported (its offset, the checkpoint), the others
            # only if they fail. The two producers do not order their records between them,
            # so the checkpoint may precede other records of the call; a restore from it
            # replays them, which changes nothing (states are joined).
            last = dict(zip(map(_partition_of, batch), range(len(batch)), strict=True))
            reported = sorted(last.values())
            rest = batch.copy()
            for index in reversed(reported):
                del rest[index]
            self._produce(self._producer, rest, reports, reports.on_error_only)
            tracked = [batch[index] for index in reported]
            self._produce(self._offsets_producer, tracked, reports, reports.on_delivery)
        return reports

    def wait(self, *reports: Reports) -> None:
        """Until every record produced so far is acknowledged or refused; raises
        ``DeliveryError`` when Kafka is unavailable for any of them."""
        remaining = self._flush()
        for report in reports:
            self._check(report, 0)
        if remaining:
            raise DeliveryError(f"{remaining} records still unacknowledged after flush timeout")

    def _send(
        self, records: Iterable[OutputRecord], one_at_a_time: bool, *, track_offsets: bool
    ) -> tuple[dict[int, int], list[Refusal]]:
        batch = records if isinstance(records, list) else list(records)
        if not one_at_a_time:
            reports = self.start(batch, track_offsets=track_offsets)
            self.wait(reports)
            return reports.offsets, reports.refused
        reports = Reports(batch)
        producer = self._offsets_producer if track_offsets else self._producer
        callback = reports.on_delivery if track_offsets else reports.on_error_only
        for record in batch:
            self._produce(producer, [record], reports, callback)
            self._wait(reports)
        return reports.offsets, reports.refused

    @staticmethod
    def _produce(
        producer: Producer, records: list[OutputRecord], reports: Reports, callback: Callback
    ) -> None:
        """Every record in order: the native loop produces the common ones, and
        ``_produce_one`` each it stops at (headers, a timestamp, a full queue, a refusal)."""
        index = 0
        while (index := produce_records(producer.produce, records, callback, index)) < len(records):
            _produce_one(producer, records[index], reports, callback)
            index += 1

    def _wait(self, reports: Reports) -> None:
        self._check(reports, self._flush())

    def _flush(self) -> int:
        return sum(producer.flush(self._flush_timeout) for producer in self._producers)

    @staticmethod
    def _check(reports: Reports, remaining: int) -> None:
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


def _produce_one(
    producer: Producer, record: OutputRecord, reports: Reports, callback: Callback
) -> None:
    """One record (the reference of ``produce_records``): waits for room in a full queue,
    and reports a record refused before it was queued (too large, say)."""
    topic, partition, key, value, headers, timestamp, _ = record
    args: tuple[Any, ...] = (topic, value, key, partition, callback)
    options: dict[str, Any] = {"timestamp": timestamp or 0, "headers": headers}
    try:
        try:
            producer.produce(*args, **options)
        except BufferError:
            produce_when_room(producer, *args, **options)
    except KafkaException as exc:  # refused before queueing (too large, say)
        reports.failed(record, exc.args[0])
