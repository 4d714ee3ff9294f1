"""The processor's consume-merge-produce loop; one instance per worker process."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from streams._native import changelog_records, input_records
from streams.errors import DeliveryError
from streams.kafka.batch_delivery import BatchDelivery, Refusal, Reports
from streams.kafka.clients import consumer_config, producer_config
from streams.kafka.consuming import CONSUME_CHUNK, without_errors
from streams.kafka.lag import Offsets, lag_of, partition_offsets
from streams.kafka.output_records import OutputRecord
from streams.memory import IdleTrim
from streams.processor.kernel import batch_processor
from streams.processor.metrics import WorkerMetrics
from streams.processor.parking import Parking, state_limited
from streams.processor.records import BatchCounts, BatchResult, InputRecord
from streams.progress_log import ProgressLog
from streams.settings import Settings
from streams.state.restore import restore_partitions
from streams.state.store import StateStores

logger = logging.getLogger(__name__)

LAG_REFRESH_SECONDS = 1.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProcessorWorker:
    """Consumes the input in batches; per batch: merge, deliver outputs, deliver new states to
    the changelog, write them locally, then commit. A crash anywhere replays the batch, which
    the idempotent merge absorbs.

    Batches overlap: while one batch's outputs (and the one before's changelog records) are on
    their way to Kafka, the next batch is merged on top of their states. A state is still
    written locally, and an offset committed, only once Kafka has the batch's outputs and then
    its changelog records.

    Under load (full batches) the merge runs on a thread of its own: the kernel releases the
    GIL for most of it, so this thread meanwhile moves the batches in flight on (their
    acknowledgements, changelog records, local writes and commits), produces the previous
    batch's outputs and consumes the next batch. The merge reads states as they are then (see
    ``_load_states``); a batch that is not full is handed off at once, so a quiet input waits
    for no next batch."""

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
        self.stores = stores or StateStores.from_settings(settings)
        self.metrics = metrics or WorkerMetrics()
        self.totals = BatchCounts()
        self.error: BaseException | None = None
        self._owned: frozenset[int] = frozenset()
        self._restoring: frozenset[int] = frozenset()
        # partition -> (position, end), refreshed with the lag: what /status shows.
        self._offsets: Offsets = {}
        self._assigned_once = threading.Event()
        self._stop = threading.Event()
        self._retry_backoff = retry_backoff_seconds
        self._consumer = Consumer(consumer_config(settings, **{"client.id": client_id}))
        # Outputs report failures only; the changelog's producer reports every delivery,
        # whose offsets become the local stores' checkpoints.
        self._producer = Producer(
            producer_config(
                settings, **{"client.id": client_id, "delivery.report.only.error": True}
            )
        )
        self._changelog_producer = Producer(
            producer_config(settings, **{"client.id": f"{client_id}-changelog"})
        )
        self._delivery = BatchDelivery(
            self._producer,
            flush_timeout=settings.delivery_timeout_ms / 1000 + 5,
            offsets_producer=self._changelog_producer,
        )
        self._batch = batch_processor(state_limited(settings), self._load_states, _now_ms)
        self._lag_refreshed = 0.0
        self._progress_log = ProgressLog(logger, "worker", settings.progress_log_seconds)
        # Batches whose outputs or changelog records Kafka has not confirmed yet, oldest first.
        self._flight: list[_InFlight] = []
        # The batch being merged on the merge thread, and the states of the one being handed
        # from it to the batches in flight: the merge reads them as if in flight.
        self._merger = ThreadPoolExecutor(1, thread_name_prefix=f"{client_id}-merge")
        self._merging: _Merging | None = None
        self._handing: dict[int, dict[bytes, bytes]] = {}
        # After a refusal or an outage: one batch at a time until one goes through cleanly.
        self._careful = False
        self._idle_trim = IdleTrim()

    @property
    def owned_partitions(self) -> frozenset[int]:
        """Assigned and restored: their customers are answered from the local store."""
        return self._owned

    @property
    def restoring_partitions(self) -> frozenset[int]:
        """Assigned, their state still being restored from the changelog."""
        return self._restoring

    @property
    def partition_offsets(self) -> Mapping[int, tuple[int | None, int | None]]:
        """Owned partition -> (next offset to process, end), None while unknown; at most
        ``LAG_REFRESH_SECONDS`` old."""
        return self._offsets

    @property
    def retrying(self) -> bool:
        """After a refusal or an outage: batches are replayed one at a time."""
        return self._careful

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

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
        try:
            while not self._stop.is_set():
                records = self._consume()
                if records:
                    self._handle(records)
                    self._idle_trim.busy()
                else:
                    self._drain()
                    self._idle_trim.idle()
                self._refresh_lag()
                if self._progress_log.due():
                    self._report_progress()
        except BaseException as exc:
            self.error = exc
            logger.exception("processor stopped by an error")
            raise
        finally:
            self._shutdown()

    def _consume(self) -> list[InputRecord]:
        """The next batch: up to ``batch_max_events`` records, or fewer once
        ``batch_max_wait_ms`` passed. Consumed in chunks, each turned into input records (and
        its messages released by the cycle collector) before the next: a whole batch of
        messages at once would make the collector promote them and walk the whole heap,
        every batch."""
        deadline = time.monotonic() + self.settings.batch_max_wait_ms / 1000
        records: list[InputRecord] = []
        while True:
            wanted = min(self.settings.batch_max_events - len(records), CONSUME_CHUNK)
            messages = self._consumer.consume(wanted, max(deadline - time.monotonic(), 0.0))
            if messages:
                self._records(messages, records)
            if len(messages) < wanted or len(records) >= self.settings.batch_max_events:
                return records

    def _handle(self, records: list[InputRecord]) -> None:
        if self._careful:
            self._drain()
            self._handle_alone(records)
            return
        previous, self._merging = self._merging, None
        result = None
        if previous is not None:
            result = self._merged(previous)
            self._handing = result.states
        self._merging = _Merging(
            records, time.perf_counter(), self._merger.submit(self._batch.process, records)
        )
        if previous is not None and result is not None:
            # While the merge runs: batches in flight move on (what _load_states reads stays
            # true meanwhile), then the previous batch joins them.
            if not self._settle(previous.records, records):
                self._discard_merge()
                return
            self._send(previous, result)
        if len(records) < self.settings.batch_max_events:
            self._finish_merge()  # the input keeps up: no next batch to overlap with

    def _send(self, merged: _Merging, result: BatchResult) -> None:
        """A merged batch's outputs to Kafka: it joins the batches in flight."""
        reports = self._delivery.start(result.outputs, track_offsets=False)
        self._flight.append(_InFlight(merged.records, result, merged.started, reports))
        self._handing = {}

    def _discard_merge(self) -> None:
        """The batch being merged was merged on top of batches Kafka refused: it is consumed
        again (``_abandon`` rewound the consumer), so its result is dropped."""
        merging, self._merging = self._merging, None
        self._handing = {}
        if merging is not None:
            with contextlib.suppress(Exception):  # it is redone, failing again if it must
                merging.future.result()

    @staticmethod
    def _merged(merging: _Merging) -> BatchResult:
        """Waits for the merge thread's result; its error is raised here."""
        return merging.future.result()

    def _finish_merge(self) -> bool:
        """Wait for the batch being merged and send it; False as ``_settle``."""
        merging, self._merging = self._merging, None
        if merging is None:
            return True
        result = self._merged(merging)
        if not self._settle(merging.records):
            return False
        self._send(merging, result)
        return True

    def _records(self, messages: list[Message], records: list[InputRecord]) -> None:
        """Appends ``messages``' records (of those without an error) to ``records``."""
        if not input_records(messages, InputRecord, records):  # some message has an error
            input_records(without_errors(messages, "processor"), InputRecord, records)

    def _settle(self, *merged: Sequence[InputRecord]) -> bool:
        """Wait for what is in flight: the oldest batch's changelog (then it is written and
        committed) and the newest batch's outputs (then its changelog goes out). False, with
        the consumer rewound to the first record not committed, when Kafka refused anything
        or is unavailable: those batches (and the ``merged`` ones, merged on top of them, oldest
        first) are done again one at a time, where refusals are handled."""
        if not self._flight:
            return True
        try:
            self._delivery.wait(*(flight.reports for flight in self._flight))
        except DeliveryError as exc:
            self.metrics.delivery_failures.inc()
            logger.error("delivery failed, replaying the batches in flight: %s", exc)
            self._abandon(merged)
            self._stop.wait(self._retry_backoff)
            return False
        if any(flight.reports.refused for flight in self._flight):
            self._abandon(merged)
            return False
        pending: list[_InFlight] = []
        for flight in self._flight:
            if flight.changelog:
                self._complete(
                    flight.records, flight.result, flight.reports.offsets, flight.started
                )
            else:
                flight.reports = self._delivery.start(
                    self._changelog(flight.result), track_offsets=True
                )
                flight.changelog = True
                pending.append(flight)
        self._flight = pending
        return True

    def _drain(self) -> None:
        """Finish the batch being merged and every batch in flight (idle, rebalance, stop)."""
        if not self._finish_merge():
            return
        while self._flight and self._settle():
            pass

    def _abandon(self, merged: tuple[Sequence[InputRecord], ...]) -> None:
        first: dict[int, int] = {}
        for flight in self._flight:
            for record in flight.records:
                first.setdefault(record.partition, record.offset)
        for records in merged:
            for record in records:
                first.setdefault(record.partition, record.offset)
        self._flight = []
        self._careful = True
        self._seek(first)

    def _handle_alone(self, records: Sequence[InputRecord]) -> None:
        """One batch from merge to commit before the next, handling Kafka's refusals."""
        started = time.perf_counter()
        parking = Parking(self.settings)
        while True:
            result = self._batch.process(records, parking.parked, parking.shrunk)
            try:
                offsets, refused = self._deliver(result, one_at_a_time=parking.isolating)
            except DeliveryError as exc:
                self.metrics.delivery_failures.inc()
                logger.error("delivery failed, replaying the batch: %s", exc)
                self._rewind(records)
                self._stop.wait(self._retry_backoff)
                return
            if not refused:
                break
            parking.count(refused, result)
        self._complete(records, result, offsets, started)
        self._careful = False

    def _complete(
        self,
        records: Sequence[InputRecord],
        result: BatchResult,
        changelog_offsets: dict[int, int],
        started: float,
    ) -> None:
        for partition, states in result.states.items():
            self.stores.open(partition).write(states, changelog_offsets.get(partition))
        self._commit(result.next_offsets)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.record(result.counts)
        self.totals.add(result.counts)

    def _deliver(
        self, result: BatchResult, *, one_at_a_time: bool
    ) -> tuple[dict[int, int], list[Refusal]]:
        """Outputs first, then (only if all were delivered) the new states to the changelog."""
        refused = self._delivery.send(result.outputs, one_at_a_time=one_at_a_time)
        if refused:
            return {}, refused
        return self._delivery.send_tracking_offsets(
            self._changelog(result), one_at_a_time=one_at_a_time
        )

    def _changelog(self, result: BatchResult) -> list[OutputRecord]:
        return changelog_records(self.settings.changelog_topic, result.states, OutputRecord)

    def _load_states(self, partition: int, keys: list[bytes]) -> list[bytes | None]:
        """From the local store, or from a batch in flight (the newest has it): its states are
        written once Kafka has them. Runs on the merge thread while this one moves batches on:
        the batch being handed off is read before the batches in flight, which it joins before
        it stops being handed off, and both before the store, which a batch is written to
        before it leaves the flight. A batch refused meanwhile makes the merge's result moot
        (``_discard_merge``)."""
        handing = self._handing.get(partition)
        layers = [
            states for flight in self._flight if (states := flight.result.states.get(partition))
        ]
        if handing:
            layers.append(handing)
        found = self.stores.open(partition).get_many(keys)
        if not layers:
            return found
        newest = layers[0]
        if len(layers) > 1:
            newest = {}
            for layer in layers:  # oldest first: newer states replace older ones
                newest.update(layer)
        get = newest.get
        return [get(key, state) for key, state in zip(keys, found, strict=True)]

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
        self._seek(first)

    def _seek(self, offsets: dict[int, int]) -> None:
        for partition, offset in offsets.items():
            if partition in self._owned:
                tp = TopicPartition(self.settings.input_topic, partition, offset)
                try:
                    self._consumer.seek(tp)
                except KafkaException as exc:  # not fetching it (yet): it starts at the commit
                    logger.warning("seek partition=%d failed: %s", partition, exc)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._finish_merge()  # restores write stores, which a merge must not be reading
        assigned = frozenset(tp.partition for tp in partitions)
        self._restoring = self._restoring | assigned
        try:
            restore_partitions(self.settings, self.stores, sorted(assigned), self._serve)
        finally:
            self._restoring = self._restoring - assigned
        self.metrics.assigned.set(len(self._owned))
        self._assigned_once.set()
        logger.info("assigned partitions=%s owned=%s", _ids(partitions), sorted(self._owned))

    def _serve(self, partition: int) -> None:
        """One partition restored: its customers are answered while others still restore."""
        self._owned = self._owned | {partition}
        self._restoring = self._restoring - {partition}

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drain()  # commit what is done while the partitions are still ours
        self._owned = self._owned - {tp.partition for tp in partitions}
        self._offsets = {p: o for p, o in self._offsets.items() if p in self._owned}
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
        offsets = partition_offsets(self._consumer, self.settings.input_topic, self._owned)
        if not offsets:  # the consumer could not say (a rebalance under way): keep the last
            return
        self._offsets = offsets  # replaced whole: the HTTP thread reads it
        for partition, behind in lag_of(offsets).items():
            self.metrics.lag.labels(partition=str(partition)).set(behind)

    def _report_progress(self) -> None:
        owned = self._owned
        lag = sum(lag_of(self._offsets).values())
        self._progress_log.report(self._progress_counts(), lag=lag, partitions=len(owned))

    def _progress_counts(self) -> dict[str, int]:
        totals = self.totals
        return {
            "events": totals.events_in,
            "applied": totals.applied,
            "stale": totals.stale_events,
            "rejected": sum(totals.rejected.values()),
        }

    def _shutdown(self) -> None:
        try:
            self._drain()
        except Exception:
            logger.exception("batches in flight not finished: they are replayed on restart")
        self._merger.shutdown()
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            logger.warning("consumer close: %s", exc)
        self._producer.flush(self.settings.delivery_timeout_ms / 1000)
        self._changelog_producer.flush(self.settings.delivery_timeout_ms / 1000)
        self._owned = frozenset()
        self.stores.close()
        self._progress_log.summary(self._progress_counts())


@dataclass(slots=True)
class _Merging:
    """A batch on the merge thread."""

    records: Sequence[InputRecord]
    started: float
    future: Future[BatchResult]


@dataclass(slots=True)
class _InFlight:
    """A merged batch on its way: outputs sent (``changelog`` False), then its new states
    (True); written locally and committed once those are acknowledged."""

    records: Sequence[InputRecord]
    result: BatchResult
    started: float
    reports: Reports
    changelog: bool = False


def _ids(partitions: list[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)
