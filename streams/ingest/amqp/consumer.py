"""Consume a RabbitMQ queue of Proca messages into ``profile-changes``, acking after Kafka.

At most ``max_in_flight`` messages are unacknowledged (the channel's prefetch); ``concurrency``
workers take batches of up to ``batch_max_messages`` (or what arrived in ``batch_max_wait_ms``),
map them, send the batch's events with one :meth:`IngestProducer.send` and then settle each
message: ack when Kafka acknowledged all its events; nack with requeue when one failed or Kafka
is unavailable (and every worker pauses, with growing backoff); a permanently bad message, or
one whose events Kafka refused ``max_kafka_attempts`` times for a reason of their own (a
record too large for the broker, say; Kafka being unavailable does not count), is published
to the dead-letter exchange with ``x-streams-reason``/``x-streams-detail`` headers, confirmed,
and only then acked. A crash acks nothing more:
RabbitMQ redelivers every unacked message, and the events of a redelivered message are
identical, which the merge absorbs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

from streams.codecs.events import EventDecoder
from streams.errors import InvalidEventError, StreamsError
from streams.ingest.amqp.config import AmqpSourceConfig
from streams.ingest.amqp.proca import ProcaOptions, map_message
from streams.ingest.amqp.topology import Topology, declare
from streams.ingest.producer import IngestProducer, KafkaBackpressureError
from streams.logs import mask_emails
from streams.optional import requires
from streams.settings import Settings

with requires("aio_pika", "the AMQP source"):
    import aio_pika
    from aio_pika.abc import AbstractIncomingMessage
    from aio_pika.exceptions import AMQPError, ChannelInvalidStateError, MessageProcessError

logger = logging.getLogger(__name__)

REASON_HEADER = "x-streams-reason"
DETAIL_HEADER = "x-streams-detail"
QUEUE_HEADER = "x-streams-queue"
_SETTLE_ERRORS = (AMQPError, ChannelInvalidStateError, MessageProcessError, ConnectionError)
KAFKA_REFUSED = "kafka_refused"
MAX_TRACKED_REFUSALS = 10_000  # messages whose refusals are counted at once (memory bound)


class AmqpUnavailableError(StreamsError):
    """The AMQP broker could not be reached at start."""


@dataclass(slots=True)
class AmqpStats:
    received: int = 0
    acked: int = 0
    events: int = 0
    requeued: int = 0
    ignored: int = 0
    kafka_outages: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        dead = ", ".join(f"{k}={v}" for k, v in sorted(self.dead_lettered.items())) or "none"
        return (
            f"received={self.received} acked={self.acked} events={self.events} "
            f"ignored={self.ignored} requeued={self.requeued} "
            f"kafka_outages={self.kafka_outages} dead_lettered={dead}"
        )


class AmqpSource:
    """``await run(stop)`` consumes until ``stop`` is set (or the queue is idle long enough)."""

    def __init__(
        self, config: AmqpSourceConfig, settings: Settings, *, decoder: EventDecoder | None = None
    ) -> None:
        self.config = config
        self.settings = settings
        self.stats = AmqpStats()
        self._options = ProcaOptions(
            source=config.source,
            skip_testing=config.skip_testing,
            custom_field_prefix=config.custom_field_prefix,
            contact_ref_seed=config.contact_ref_seed.get_secret_value(),
        )
        self._decoder = decoder or EventDecoder.from_settings(settings)
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._paused_until = 0.0
        self._backoff = 0.0
        self._busy = 0
        self._last_activity = time.monotonic()
        self._refusals: dict[bytes, int] = {}  # message digest -> Kafka refusals so far

    async def run(self, stop: asyncio.Event | None = None) -> AmqpStats:
        stop = stop or asyncio.Event()
        producer = IngestProducer(
            self.settings,
            client_id=f"profile-streams-amqp-{self.config.queue}",
            send_timeout=self.config.send_timeout_seconds,
        )
        producer.start()
        url = self.config.url.get_secret_value()
        try:
            connection = await aio_pika.connect_robust(url)
        except (AMQPError, OSError) as exc:
            producer.close(0)
            where = url.rsplit("@", 1)[-1]  # never the credentials
            raise AmqpUnavailableError(f"cannot connect to AMQP at {where}: {exc}") from exc
        try:
            topology = await declare(connection, self.config)
            tag = await topology.queue.consume(self._on_message)
            logger.info(
                "consuming queue=%s max_in_flight=%d dead_letters=%s",
                self.config.queue, self.config.max_in_flight, self.config.dlx_name,
            )  # fmt: skip
            workers = [
                asyncio.create_task(self._work(topology, producer, stop))
                for _ in range(self.config.concurrency)
            ]
            watcher = asyncio.create_task(self._watch_idle(stop))
            await stop.wait()
            with contextlib.suppress(*_SETTLE_ERRORS):
                await topology.queue.cancel(tag)
            await asyncio.gather(*workers)
            watcher.cancel()
            await self._requeue_buffered()
        finally:
            await connection.close()
            await asyncio.to_thread(producer.close, self.config.close_timeout_seconds)
        logger.info("stopped queue=%s %s", self.config.queue, self.stats.summary())
        return self.stats

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.stats.received += 1
        self._last_activity = time.monotonic()
        self._buffer.put_nowait(message)

    async def _watch_idle(self, stop: asyncio.Event) -> None:
        idle = self.config.exit_when_idle_seconds
        if idle is None:
            return
        while not stop.is_set():
            await asyncio.sleep(min(idle / 4, 0.5))
            quiet = time.monotonic() - self._last_activity
            if quiet >= idle and self._buffer.empty() and self._busy == 0:
                logger.info("queue=%s idle for %.1f s: stopping", self.config.queue, quiet)
                stop.set()

    async def _work(
        self, topology: Topology, producer: IngestProducer, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await _sleep_unless(stop, pause)
                continue
            batch = await self._collect(stop)
            if not batch:
                continue
            self._busy += 1
            try:
                await self._process(batch, topology, producer)
            finally:
                self._busy -= 1
                self._last_activity = time.monotonic()

    async def _collect(self, stop: asyncio.Event) -> list[AbstractIncomingMessage]:
        """The first message (waiting at most a short while), then what arrives in the linger."""
        try:
            first = await asyncio.wait_for(self._buffer.get(), timeout=0.2)
        except TimeoutError:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_max_wait_ms / 1000
        while len(batch) < self.config.batch_max_messages and not stop.is_set():
            if not self._buffer.empty():
                batch.append(self._buffer.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._buffer.get(), timeout=remaining))
            except TimeoutError:
                break
        return batch

    async def _process(
        self, batch: list[AbstractIncomingMessage], topology: Topology, producer: IngestProducer
    ) -> None:
        records: list[tuple[bytes, bytes]] = []
        owners: list[tuple[AbstractIncomingMessage, int, int]] = []  # message, first, count
        now_ms = int(time.time() * 1000)
        for message in batch:
            try:
                mapped = map_message(message.body, self._options)
                checked = [self._decoder.encode(event, now_ms) for event in mapped.events]
                encoded = [(record.key, record.value) for record in checked]
            except InvalidEventError as exc:
                await self._dead_letter(message, exc, topology)
                continue
            if not encoded:
                self.stats.ignored += 1
                await self._settle(message, ack=True)
                continue
            owners.append((message, len(records), len(encoded)))
            records.extend(encoded)
        if not records:
            return
        try:
            errors = await producer.send(records)
        except KafkaBackpressureError as exc:
            self.stats.kafka_outages += 1
            self._pause(exc.retry_after, str(exc))
            for message, _, _ in owners:
                await self._settle(message, ack=False)
            return
        failed = 0
        for message, first, count in owners:
            refused = [errors[i] for i in range(first, first + count) if i in errors]
            # Only a refusal of the record's own counts (not Kafka being unavailable).
            own = any(i in errors.refused for i in range(first, first + count))
            if own and self._refused_too_often(message):
                why = InvalidEventError(KAFKA_REFUSED, f"Kafka refused its events: {refused[0]}")
                await self._dead_letter(message, why, topology)
                continue
            failed += bool(refused)
            await self._settle(message, ack=not refused)
            if not refused:
                self.stats.events += count
                if self._refusals:  # delivered at last: forget its refusals
                    self._refusals.pop(_digest(message), None)
        if failed:
            self._pause(
                1, f"{failed} messages had undelivered events: {next(iter(errors.values()))}"
            )
        else:
            self._backoff = 0.0

    def _refused_too_often(self, message: AbstractIncomingMessage) -> bool:
        """Count one more Kafka refusal of this message (by content: a redelivery is the same
        message); True once it reached ``max_kafka_attempts``. Counts live in this process."""
        digest = _digest(message)
        attempts = self._refusals.pop(digest, 0) + 1
        if attempts >= self.config.max_kafka_attempts:
            return True
        if len(self._refusals) >= MAX_TRACKED_REFUSALS:
            del self._refusals[next(iter(self._refusals))]  # the oldest
        self._refusals[digest] = attempts
        return False

    async def _dead_letter(
        self, message: AbstractIncomingMessage, exc: InvalidEventError, topology: Topology
    ) -> None:
        headers = dict(message.headers or {})
        headers.update(
            {REASON_HEADER: exc.reason, DETAIL_HEADER: mask_emails(exc.detail)[:500],
             QUEUE_HEADER: self.config.queue}
        )  # fmt: skip
        letter = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            message_id=message.message_id,
            timestamp=message.timestamp,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await topology.dead_letters.publish(letter, routing_key=message.routing_key or "")
        except (*_SETTLE_ERRORS, TimeoutError) as error:
            logger.error("dead letter not confirmed, requeueing: %s", error)
            await self._settle(message, ack=False)
            return
        logger.warning(
            "dead-lettered queue=%s reason=%s detail=%s",
            self.config.queue, exc.reason, mask_emails(exc.detail),
        )  # fmt: skip
        self.stats.dead_lettered[exc.reason] += 1
        await self._settle(message, ack=True, counted=False)

    async def _settle(
        self, message: AbstractIncomingMessage, *, ack: bool, counted: bool = True
    ) -> None:
        try:
            if ack:
                await message.ack()
            else:
                await message.nack(requeue=True)
        except _SETTLE_ERRORS as exc:
            # The channel went away: RabbitMQ redelivers the message, which is what we want.
            logger.warning("could not settle delivery_tag=%s: %s", message.delivery_tag, exc)
            return
        if ack and counted:
            self.stats.acked += 1
        elif not ack:
            self.stats.requeued += 1

    def _pause(self, retry_after: float, why: str) -> None:
        self._backoff = min(
            self.config.max_backoff_seconds, max(float(retry_after), self._backoff * 2, 0.5)
        )
        self._paused_until = time.monotonic() + self._backoff
        logger.warning(
            "kafka not acknowledging, requeued; pausing %.1f s: %s", self._backoff, mask_emails(why)
        )

    async def _requeue_buffered(self) -> None:
        while not self._buffer.empty():
            await self._settle(self._buffer.get_nowait(), ack=False)


def _digest(message: AbstractIncomingMessage) -> bytes:
    return hashlib.blake2b(message.body, digest_size=16).digest()


async def run_until_signalled(source: AmqpSource) -> AmqpStats:
    """Run ``source`` until SIGINT/SIGTERM (then finish in-flight batches and stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await source.run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
