"""One connector worker: its own consumer group on ``profile-upserts``, one sink.

Batches by count, bytes and time; commits offsets only after the sink accepted the batch;
retries a failed batch with backoff while its partitions are paused (nothing more is buffered);
parks records the destination refuses for good on the connector's dead-letter topic.

One batch may be in flight: a sink that returns early from ``begin_write`` (PostgreSQL, whose
server merges a sent batch on its own) has its outcome collected when the next batch is due or
the topic runs dry, so the worker consumes and decodes the next batch meanwhile. Its offsets
are committed only once that outcome is in.

Its counts, state and per-partition progress (:mod:`streams.connect.progress`) are read by
other threads through ``status()``: ``/health``, ``/status``, ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from streams._native import raw_records
from streams.codecs.upserts import UpsertCodec
from streams.connect.config import ConnectorConfig
from streams.connect.errors import RetryableSinkError, SinkBackpressureError
from streams.connect.metrics import ConnectorMetrics
from streams.connect.progress import DeliveryProgress
from streams.connect.records import RawRecord, Rejection, WriteResult, decoded
from streams.connect.sink import RawBatchingSink, Sink
from streams.connect.status import ConnectorCounts, ConnectorState, ConnectorStatus
from streams.errors import DeliveryError
from streams.httpclient.backoff import Backoff
from streams.kafka.batch_delivery import BatchDelivery
from streams.kafka.clients import consumer_config, producer_config
from streams.kafka.consuming import CONSUME_CHUNK, without_errors
from streams.kafka.dead_letters import MINIMAL_LIMIT_BYTES, REASON_HEADER, dead_letter_headers
from streams.kafka.output_records import OutputRecord, fitted_letter
from streams.progress_log import ProgressLog
from streams.settings import Settings

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.1


@dataclass(slots=True)
class _InFlight:
    """A batch handed to the sink whose outcome is not in yet."""

    settle: Callable[[], WriteResult]
    records: int
    offsets: dict[int, int]
    letters: list[OutputRecord]
    # The first offset of the batch in each partition: where delivery stands until it settles.
    starts: dict[int, int] = field(default_factory=dict)
    began: float = 0.0


class ConnectorWorker:
    def __init__(
        self,
        config: ConnectorConfig,
        settings: Settings,
        sink: Sink,
        *,
        client_id: str | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.sink = sink
        self.totals = ConnectorCounts()
        self.error: BaseException | None = None
        self.started_at = time.time()
        self.metrics = ConnectorMetrics(config.name, self.status)
        self.dlq_topic = config.dead_letter_topic(settings)
        self._codec = UpsertCodec(settings.output_format, kernel=settings.kernel)
        self._backoff = Backoff(config.retry)
        self._stop = threading.Event()
        self._assigned = threading.Event()
        self._progress_log = ProgressLog(
            logger, f"connector={config.name}", settings.progress_log_seconds
        )
        self._consumer = Consumer(
            consumer_config(
                settings,
                **{
                    "group.id": config.group_id(),
                    "client.id": client_id or f"profile-streams-connect-{config.name}",
                    # Eager: a revocation takes every partition, so an unflushed batch can
                    # simply be dropped and replayed by whoever owns the partitions next.
                    "partition.assignment.strategy": "range",
                },
            )
        )
        self._producer = Producer(producer_config(settings))
        self._delivery = BatchDelivery(
            self._producer, flush_timeout=settings.delivery_timeout_ms / 1000 + 5
        )
        self._offsets: dict[int, int] = {}
        self._starts: dict[int, int] = {}  # of the buffered batch, as _InFlight.starts
        # Dead letters of the buffered batch (undecodable upserts; refusals whose parking failed)
        self._letters: list[OutputRecord] = []
        self._in_flight: _InFlight | None = None
        self._batch_started: float | None = None
        self._retry_at: float | None = None
        self._paused = False
        self._running = False
        self._progress = DeliveryProgress(self._consumer, settings.upserts_topic)

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> ConnectorStatus:
        """A snapshot for another thread: counts copied, progress as last refreshed."""
        return ConnectorStatus(
            name=self.config.name,
            topic=self.settings.upserts_topic,
            state=self._state(),
            started_at=self.started_at,
            counts=self.totals.copy(),
            partitions=self._progress.snapshot,
            error=type(self.error).__name__ if self.error is not None else None,
        )

    def wait_assigned(self, timeout: float) -> bool:
        return self._assigned.wait(timeout)

    def _state(self) -> ConnectorState:
        if self._stop.is_set() or self.error is not None:
            return "stopping"
        if not self._running or not self._assigned.is_set():
            return "starting"  # the sink's setup, then joining the group
        if self._retry_at is not None:
            return "retrying"
        return "running"

    def run(self) -> None:
        """Run until ``stop()``; a final flush and commit happen on the way out."""
        try:
            self.sink.setup()
            self._consumer.subscribe(
                [self.settings.upserts_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            self._running = True
            while not self._stop.is_set():
                self._step()
                self._refresh_progress()
                if self._progress_log.due():
                    self._report_progress()
            self._flush_once()
        except BaseException as exc:
            self.error = exc
            logger.exception("connector=%s stopped by an error", self.config.name)
            raise
        finally:
            self._close()

    def _step(self) -> None:
        if self._retry_at is not None:
            # Paused: poll only to stay in the group, until the retry is due. Anything that
            # still arrives (fetched before the pause) joins the batch rather than being lost.
            self._add(self._consumer.consume(1, IDLE_POLL_SECONDS))
            if time.monotonic() >= self._retry_at:
                self._flush_once()
            return
        batch = self.config.batch
        room = batch.max_records - self.sink.buffered
        wait = IDLE_POLL_SECONDS
        if self._batch_started is not None:
            left = batch.max_wait_ms / 1000 - (time.monotonic() - self._batch_started)
            wait = max(0.0, min(wait, left))
        messages = self._consumer.consume(min(max(room, 1), CONSUME_CHUNK), wait)
        self._add(messages)
        if self._in_flight is not None and (not messages or self._due()):
            self._settle()
        if self._in_flight is None and self._retry_at is None and self._due():
            self._begin()

    def _report_progress(self) -> None:
        lag = sum(p.lag or 0 for p in self._progress.snapshot)
        self._progress_log.report(self._progress_counts(), lag=lag)

    def _progress_counts(self) -> dict[str, int]:
        totals = self.totals
        return {
            "records": totals.consumed,
            "batches": totals.batches,
            "delivered": totals.written,
            "retries": totals.retries,
            "rejected": totals.rejected,
        }

    def _add(self, messages: list[Message]) -> None:
        raw: list[RawRecord] = []
        if not raw_records(messages, RawRecord, raw):  # some message carries an error
            raw_records(without_errors(messages, f"connector={self.config.name}"), RawRecord, raw)
        if not raw:
            return
        starts, offsets = self._starts, self._offsets
        for record in raw:
            starts.setdefault(record.partition, record.offset)
            offsets[record.partition] = record.offset + 1
        if self._batch_started is None:
            self._batch_started = time.monotonic()
        self.totals.consumed += len(raw)
        sink = self.sink
        if isinstance(sink, RawBatchingSink):
            sink.extend(raw)
            return
        records = []
        for record in raw:
            outcome = decoded(record, self._codec)
            if isinstance(outcome, Rejection):
                self._letters.append(self._rejected(outcome))
            else:
                records.append(outcome)
        sink.extend(records)

    def _due(self) -> bool:
        if self._batch_started is None:
            return False
        batch = self.config.batch
        return (
            self.sink.buffered >= batch.max_records
            or self.sink.buffered_bytes >= batch.max_bytes
            or time.monotonic() - self._batch_started >= batch.max_wait_ms / 1000
        )

    def _flush_once(self) -> None:
        """Settle the batch in flight, then deliver the buffered one and wait for it; on a
        transient failure schedule a retry."""
        if self._in_flight is not None and not self._settle():
            return
        if self._batch_started is None:
            return
        self._begin()
        if self._in_flight is not None:
            self._settle()

    def _begin(self) -> None:
        """Hand the buffered batch to the sink; its outcome is collected by ``_settle``."""
        records, offsets, letters = self.sink.buffered, self._offsets, self._letters
        starts, began = self._starts, time.monotonic()
        self._offsets, self._letters, self._starts = {}, [], {}
        try:
            settle = self.sink.begin_flush()
        except (RetryableSinkError, DeliveryError) as exc:
            # The sink kept the records.
            self._offsets, self._letters, self._starts = offsets, letters, starts
            self._failed(exc)
            return
        self._batch_started = None
        self._in_flight = _InFlight(settle, records, offsets, letters, starts, began)

    def _settle(self) -> bool:
        """Wait for the batch in flight, park its dead letters and commit its offsets. On a
        transient failure it joins the buffered batch (the sink puts its records back in
        front), to be retried as one, and False is returned."""
        flight, self._in_flight = self._in_flight, None
        assert flight is not None
        letters = flight.letters
        try:
            result = flight.settle()
            self.totals.written += flight.records - len(result.rejected)
            letters = [*letters, *map(self._rejected, result.rejected)]
            self._park(letters)
        except (RetryableSinkError, DeliveryError) as exc:
            # Later offsets win; letters not parked wait for the retry (a refusal would not be
            # reported again: the sink already accepted the rest of its batch).
            self._offsets = {**flight.offsets, **self._offsets}
            self._starts = {**self._starts, **flight.starts}  # earlier offsets win
            self._letters = [*letters, *self._letters]
            if self._batch_started is None:
                self._batch_started = time.monotonic()
            self._failed(exc)
            return False
        self._commit(flight.offsets)
        self._progress.delivered(flight.offsets)
        self.metrics.delivery.observe(time.monotonic() - flight.began)
        self.totals.batches += 1
        self.totals.rejected += len(letters)
        by_reason = self.totals.rejected_by_reason
        for letter in letters:
            reason = _reason(letter)
            by_reason[reason] = by_reason.get(reason, 0) + 1
        self._retry_at = None
        self._backoff.reset()
        self._resume()
        return True

    def _failed(self, exc: RetryableSinkError | DeliveryError) -> None:
        retry_after = exc.retry_after if isinstance(exc, RetryableSinkError) else None
        delay = self._backoff.next_delay(retry_after)
        self.totals.retries += 1
        kind = "backpressure" if isinstance(exc, SinkBackpressureError) else "transient"
        logger.warning(
            "connector=%s %s failure attempt=%d retry_in=%.2fs: %s",
            self.config.name,
            kind,
            self._backoff.attempts,
            delay,
            exc,
        )
        self._retry_at = time.monotonic() + delay
        self._pause()

    def _park(self, letters: list[OutputRecord]) -> None:
        """Deliver dead letters (fitted under the producer's limit). One the DLQ topic still
        refuses after ``produce_attempts`` tries (a topic limit below the producer's) is cut to
        ``MINIMAL_LIMIT_BYTES``; refused even then, the topic is unusable: DeliveryError."""
        refused = self._delivery.send(letters)
        for _ in range(self.settings.produce_attempts):
            if not refused:
                return
            logger.warning(
                "connector=%s dead letters refused count=%d: %s",
                self.config.name, len(refused), refused[0].error.str(),
            )  # fmt: skip
            # Alone: the broker refuses a whole batch for one record over its topic's limit.
            refused = self._delivery.send([r.record for r in refused], one_at_a_time=True)
        shrunk = [fitted_letter(r.record, MINIMAL_LIMIT_BYTES) for r in refused]
        refused = self._delivery.send(shrunk, one_at_a_time=True)
        if refused:
            raise DeliveryError(
                f"{self.dlq_topic} refuses even a dead letter of {MINIMAL_LIMIT_BYTES} bytes: "
                f"{refused[0].error.str()}"
            )

    def _rejected(self, rejection: Rejection) -> OutputRecord:
        r = rejection.record
        return self._dlq_record(
            r.topic, r.partition, r.offset, r.key, r.value, rejection.reason, rejection.detail
        )

    def _dlq_record(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        reason: str,
        detail: str,
    ) -> OutputRecord:
        headers = dead_letter_headers(
            reason,
            detail,
            ("connector", self.config.name),
            ("topic", topic),
            ("partition", partition),
            ("offset", offset),
        )
        letter = OutputRecord(self.dlq_topic, partition, key, value, headers)
        return fitted_letter(letter, self.settings.max_message_bytes)

    def _commit(self, committed: dict[int, int]) -> None:
        topic = self.settings.upserts_topic
        offsets = [TopicPartition(topic, p, o) for p, o in committed.items()]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            logger.warning(
                "connector=%s commit failed (batch will be replayed): %s", self.config.name, exc
            )

    def _pause(self) -> None:
        if not self._paused:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True

    def _resume(self) -> None:
        if self._paused:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._progress.assigned(partitions)
        self._assigned.set()
        logger.info(
            "connector=%s assigned=%s", self.config.name, sorted(tp.partition for tp in partitions)
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Last chance to deliver what we hold; if that fails the next owner replays it.
        if self._retry_at is None and (
            self._in_flight is not None or self._batch_started is not None
        ):
            self._flush_once()
        if self._batch_started is not None:
            logger.warning(
                "connector=%s dropping an undelivered batch on revoke (replayed later)",
                self.config.name,
            )
            self.sink.discard()
            self._letters = []
            self._offsets = {}
            self._starts = {}
            self._batch_started = None
            self._retry_at = None
        self._paused = False
        self._progress.revoked()

    def _refresh_progress(self) -> None:
        flight = self._in_flight
        # Undelivered records start in the batch in flight, else in the buffered one.
        pending = {**self._starts, **(flight.starts if flight is not None else {})}
        self._progress.refresh(pending, self._paused)

    def _close(self) -> None:
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("connector=%s consumer close: %s", self.config.name, exc)
        self._producer.flush(self.settings.delivery_timeout_ms / 1000)
        self.sink.close()
        self._progress_log.summary(self._progress_counts())


def _reason(letter: OutputRecord) -> str:
    for name, value in letter.headers or ():
        if name == REASON_HEADER and value is not None:
            return value.decode(errors="replace")
    return "unknown"
