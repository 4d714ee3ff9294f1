"""One ``take_events`` batch through the processor's kernel, in the default engine's order:
merge, deliver the outputs (upserts, stale records, dead letters, reroutes), deliver the new
states to the table's changelog, write them to the table's store, and only then let Faust
ack the events.

``take_events`` acks a batch's events when the agent's loop body is left, also when it is
left by an error, and Faust commits acked offsets (on an agent error too): a failed delivery
would lose accepted changes (faust-streaming#606 is the same family: offsets committed past
events still being processed). So each event's message holds one more reference while its
batch is processed, released only after delivery: an error leaves it unacked and the batch
is replayed from the last commit, which the idempotent merge absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from streams.faust.store import TableStates
from streams.kafka.output_records import OutputRecord
from streams.optional import requires
from streams.processor.kernel import batch_processor
from streams.processor.metrics import WorkerMetrics
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
        self._app = app
        self._table = table
        self._states = TableStates(table)
        self._batch = batch_processor(settings, self._states.get_many, _now_ms)

    async def handle(self, events: Sequence[Any]) -> None:
        """Process ``events`` (Faust events of the input topic) to the end; their messages
        are acked by ``take_events`` afterwards, unless this raises."""
        started = time.perf_counter()
        messages = [event.message for event in events]
        for message in messages:
            message.incref()  # held until the outputs and states are delivered
        records = [_input_record(message) for message in messages]
        loop = asyncio.get_running_loop()
        # The kernel releases the GIL; off the loop, heartbeats and fetches go on meanwhile.
        result: BatchResult = await loop.run_in_executor(None, self._batch.process, records)
        await self._deliver(result.outputs)
        await self._write_states(result)
        self.totals.add(result.counts)
        self.metrics.record(result.counts)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        for message in messages:
            message.decref()

    async def _deliver(self, outputs: Sequence[OutputRecord]) -> None:
        """Send every output and wait for Kafka's acknowledgement of each; a refusal raises."""
        producer = self._app.producer
        pending: list[Awaitable[Any]] = []
        for record in outputs:
            pending.append(
                await producer.send(
                    record.topic,
                    record.key,
                    record.value,
                    record.partition,
                    _seconds(record.timestamp_ms),
                    list(record.headers) if record.headers else None,
                )
            )
        if pending:
            await asyncio.gather(*pending)

    async def _write_states(self, result: BatchResult) -> None:
        """New states to the changelog, then (acknowledged) to the store with their offsets."""
        producer = self._app.producer
        topic = self._table.changelog_topic.get_topic_name()
        sent: list[tuple[int, bytes, Awaitable[Any]]] = []
        for partition, states in result.states.items():
            for key, state in states.items():
                future = await producer.send(topic, key, state, partition, None, None)
                sent.append((partition, key, future))
        if not sent:
            return
        delivered = await asyncio.gather(*(future for _, _, future in sent))
        offsets: dict[int, dict[bytes, int]] = {}
        tps: dict[int, Any] = {}
        for (partition, key, _), metadata in zip(sent, delivered, strict=True):
            offsets.setdefault(partition, {})[key] = metadata.offset
            tps[partition] = metadata.topic_partition
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


def _seconds(timestamp_ms: int | None) -> float | None:
    """Faust's producer takes seconds and truncates ``seconds * 1000``: half a millisecond
    more lands on the same millisecond whatever the float error."""
    return None if timestamp_ms is None else (timestamp_ms + 0.5) / 1000


def _tp(topic_partition: Any) -> Any:
    """aiokafka's TopicPartition as Faust's TP (the store's offsets are kept by TP)."""
    return TP(topic_partition.topic, topic_partition.partition)
