"""One ``take_events`` batch through the processor's kernel, in the default engine's order:
merge, deliver the outputs (upserts, stale records, dead letters, reroutes), deliver the new
states to the table's changelog, write them to the table's store, and only then let Faust
ack the events. A record Kafka refuses for good is parked as the default engine parks it
(:class:`~streams.processor.parking.Parking`): after ``STREAMS_PRODUCE_ATTEMPTS`` its input
goes to the DLQ with the refusal's reason and is not merged, and the batch is done again.

``take_events`` acks a batch's events when the agent's loop body is left, also when it is
left by an error, and Faust commits acked offsets (on an agent error too): a failed delivery
would lose accepted changes (faust-streaming#606 is the same family: offsets committed past
events still being processed). So each event's message holds one more reference while its
batch is processed, released only after delivery: an error (Kafka unavailable) leaves it
unacked, the app stops, and the batch is replayed from the last commit, which the idempotent
merge absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from streams._native import changelog_records
from streams.errors import DeliveryError
from streams.faust.delivery import FaustDelivery
from streams.faust.store import TableStates
from streams.kafka.output_records import OutputRecord
from streams.optional import requires
from streams.processor.kernel import batch_processor
from streams.processor.metrics import WorkerMetrics
from streams.processor.parking import Parking, state_limited
from streams.processor.records import BatchCounts, BatchResult, InputRecord
from streams.settings import Settings

with requires("faust", "the Faust engine"):
    from faust.types import TP

logger = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class FaustBatches:
    """The per-batch work of the agent: the kernel ``STREAMS_KERNEL`` names, Faust's producer
    and the table's changelog and store."""

    def __init__(self, settings: Settings, app: Any, table: Any) -> None:
        self.settings = settings
        self.totals = BatchCounts()
        self.metrics = WorkerMetrics()  # the default engine's, on this engine's /metrics
        self._states = TableStates(table)
        self._changelog_topic = table.changelog_topic.get_topic_name()
        # States capped to what the changelog topic takes, as in the default engine.
        self._batch = batch_processor(state_limited(settings), self._states.get_many, _now_ms)
        self._delivery = FaustDelivery(app)

    async def handle(self, events: Sequence[Any]) -> None:
        """Process ``events`` (Faust events of the input topic) to the end; their messages
        are acked by ``take_events`` afterwards, unless this raises."""
        started = time.perf_counter()
        messages = [event.message for event in events]
        for message in messages:
            message.incref()  # held until the outputs and states are delivered
        records = [_input_record(message) for message in messages]
        try:
            result, changelog, delivered = await self._deliver(records)
        except DeliveryError:
            self.metrics.delivery_failures.inc()
            raise
        self._write_states(result, changelog, delivered)
        self.totals.add(result.counts)
        self.metrics.record(result.counts)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        for message in messages:
            message.decref()

    async def _deliver(
        self, records: Sequence[InputRecord]
    ) -> tuple[BatchResult, list[OutputRecord], list[Any]]:
        """Merge, then outputs and (only once all are acknowledged) the new states to the
        changelog; a refusal merges the batch again with what to park, as the default
        engine's ``_handle_alone`` does. Returns the result, its changelog records and their
        metadata."""
        loop = asyncio.get_running_loop()
        parking = Parking(self.settings)
        while True:
            # The kernel releases the GIL; off the loop, heartbeats and fetches go on meanwhile.
            result: BatchResult = await loop.run_in_executor(
                None, self._batch.process, records, parking.parked, parking.shrunk
            )
            refused, _ = await self._delivery.send(result.outputs, one_at_a_time=parking.isolating)
            if not refused:
                changelog = changelog_records(self._changelog_topic, result.states, OutputRecord)
                refused, delivered = await self._delivery.send(
                    changelog, one_at_a_time=parking.isolating
                )
                if not refused:
                    return result, changelog, delivered
            parking.count(refused, result)

    def _write_states(
        self, result: BatchResult, changelog: Sequence[OutputRecord], delivered: Sequence[Any]
    ) -> None:
        """The acknowledged states to the store, with the offsets the changelog gave them."""
        offsets: dict[int, dict[bytes, int]] = {}
        tps: dict[int, Any] = {}
        for record, metadata in zip(changelog, delivered, strict=True):
            assert record.key is not None
            offsets.setdefault(record.partition, {})[record.key] = metadata.offset
            tps[record.partition] = metadata.topic_partition
        for partition, states in result.states.items():
            self._states.write(_tp(tps[partition]), states, offsets[partition])


def _input_record(message: Any) -> InputRecord:
    headers = message.headers
    if headers:
        headers = [(name, value) for name, value in headers]
    return InputRecord(
        message.partition,
        message.offset,
        message.key,
        message.value,
        round(message.timestamp * 1000),
        headers or None,
    )


def _tp(topic_partition: Any) -> Any:
    """aiokafka's TopicPartition as Faust's TP (the store's offsets are kept by TP)."""
    return TP(topic_partition.topic, topic_partition.partition)
