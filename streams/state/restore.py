"""Rebuild partitions' local state from the compacted changelog topic."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.errors import StreamsError
from streams.kafka.clients import reader_config
from streams.memory import release_free_memory
from streams.merge import MergePolicy, join_profiles
from streams.settings import Settings
from streams.state.codec import decode_profile, encode_profile
from streams.state.store import PartitionStore, StateStores

logger = logging.getLogger(__name__)

WATERMARK_TIMEOUT_SECONDS = 10.0
RETRY_BACKOFF_SECONDS = 0.5
POLL_SECONDS = 0.1
# Partitions restored at once. Two keep both cores busy: RocksDB writes and librdkafka's
# fetches run without the GIL beside the other partition's Python. More would only delay
# the first partition served, since every partition then finishes near the end.
RESTORE_THREADS = 2
# Keys a cold restore remembers instead of looking them up: about 20 MiB per restoring thread.
COLD_KEYS_LIMIT = 250_000


class RestoreError(StreamsError):
    """The changelog could not be read back in time."""


def restore_partitions(
    settings: Settings,
    stores: StateStores,
    partitions: Sequence[int],
    on_restored: Callable[[int], None],
    *,
    timeout: float = 600.0,
    threads: int = RESTORE_THREADS,
) -> None:
    """Restore ``partitions``, ``threads`` at a time (one reader each, reused from partition to
    partition); ``on_restored(partition)`` runs in the calling thread as soon as one is done,
    so the caller can serve it while others are still restoring. The first failure stops the
    others after their current partition and is raised."""
    if not partitions:
        return
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for partition in partitions:
        pending.put(partition)
    # A restored partition, or the error that ended a thread.
    finished: queue.SimpleQueue[int | BaseException] = queue.SimpleQueue()
    failed = threading.Event()
    deadline = time.monotonic() + timeout

    def work() -> None:
        reader: Consumer | None = None
        try:
            reader = Consumer(reader_config(settings))
            while not failed.is_set():
                try:
                    partition = pending.get_nowait()
                except queue.Empty:
                    return
                _restore(reader, settings, stores, partition, deadline)
                finished.put(partition)
        except BaseException as exc:
            failed.set()
            finished.put(exc)
        finally:
            if reader is not None:
                reader.close()

    workers = [
        threading.Thread(target=work, name=f"restore-{index}", daemon=True)
        for index in range(max(1, min(threads, len(partitions))))
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in partitions:
            outcome = finished.get()
            if isinstance(outcome, BaseException):
                raise outcome
            on_restored(outcome)
    finally:
        failed.set()
        for worker in workers:
            worker.join()
        release_free_memory()  # the readers' buffers


def restore_partition(
    settings: Settings,
    stores: StateStores,
    partition: int,
    *,
    timeout: float = 600.0,
    batch_size: int = 10_000,
) -> int:
    """Catch one partition's local store up with the changelog; returns the records read."""
    reader = Consumer(reader_config(settings))
    try:
        deadline = time.monotonic() + timeout
        return _restore(reader, settings, stores, partition, deadline, batch_size=batch_size)
    finally:
        reader.close()


def _restore(
    reader: Consumer,
    settings: Settings,
    stores: StateStores,
    partition: int,
    deadline: float,
    *,
    batch_size: int = 10_000,
) -> int:
    """States are joined, not overwritten, so a changelog record written late by a previous
    owner cannot roll a profile back."""
    topic = settings.changelog_topic
    low, high = _watermarks(reader, TopicPartition(topic, partition), deadline)
    store = stores.open(partition)
    checkpoint = store.changelog_offset()
    if checkpoint is not None and checkpoint >= high:
        # The store is ahead of the topic: the changelog was recreated. Start over.
        store = stores.wipe(partition)
        checkpoint = None
    start = low if checkpoint is None else max(checkpoint + 1, low)
    if start >= high:
        return 0
    started = time.monotonic()
    cold = store.is_empty()
    fold = _Fold(store, MergePolicy(settings.priorities()), cold=cold)
    reader.assign([TopicPartition(topic, partition, start)])
    last = start - 1
    while last < high - 1:
        if time.monotonic() > deadline:
            raise RestoreError(f"reading {topic}[{partition}] timed out at offset {last}")
        # consume() returns when it has as many records as asked for, else at its timeout:
        # never ask for more than the offsets left, and wait briefly (compaction gaps leave
        # fewer records than offsets; the partition's end is reported then).
        wanted = max(1, min(batch_size, high - 1 - last))
        messages = reader.consume(wanted, POLL_SECONDS)
        if messages:
            last = fold.apply(messages, topic, partition, high)
    # Everything up to the end is included now, compaction gaps too.
    store.write({}, high - 1)
    logger.info(
        "restored partition=%d records=%d cold=%s seconds=%.2f",
        partition, fold.applied, cold, time.monotonic() - started,
    )  # fmt: skip
    return fold.applied


class _Fold:
    """Joins changelog records into a store, one consumed batch (one RocksDB write) at a time.

    An empty store (``cold``) holds nothing a record must be joined with: a key's first
    record is written as it is, and only a key seen before in this restore is joined with
    what was written for it. A store with state, or a cold one past ``COLD_KEYS_LIMIT``
    keys, looks every key up. A batch of distinct keys and no events (the usual one) is
    folded with dict and set operations, without Python code per record."""

    def __init__(self, store: PartitionStore, policy: MergePolicy, *, cold: bool) -> None:
        self.store = store
        self.policy = policy
        self.cold = cold
        self.applied = 0
        self._seen: set[bytes] = set()

    def apply(self, messages: list[Message], topic: str, partition: int, end: int) -> int:
        """Fold one batch; returns the last offset it covers (``end - 1`` once the
        partition's end was reported)."""
        pairs = [(message.key(), message.value()) for message in messages]
        states: dict[bytes | None, bytes | None] = dict(pairs)
        last = end - 1
        if len(states) == len(pairs) and None not in states and None not in states.values():
            records = cast(dict[bytes, bytes], states)
            last = messages[-1].offset() or 0
            self.applied += len(records)
        else:
            records, last = self._slowly(messages, topic, partition, end)
        if self.cold:
            repeated = list(records.keys() & self._seen)
            self._seen.update(records)
            if len(self._seen) > COLD_KEYS_LIMIT:
                self.cold = False  # look every key up from now on: the set stays bounded
                self._seen.clear()
        else:
            repeated = list(records)
        if repeated:
            for key, stored in zip(repeated, self.store.get_many(repeated), strict=True):
                if stored is not None:
                    records[key] = self._join(stored, records[key])
        self.store.write(records, last)
        return last

    def _slowly(
        self, messages: list[Message], topic: str, partition: int, end: int
    ) -> tuple[dict[bytes, bytes], int]:
        """A batch with repeated keys, keyless records or events (errors, the partition's
        end), record by record."""
        records: dict[bytes, bytes] = {}
        last = -1
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise RestoreError(f"reading {topic}[{partition}] failed: {error.str()}")
                # A reader reused from partition to partition: only this one's end counts.
                if message.partition() == partition and message.topic() == topic:
                    last = end - 1
                continue
            last = max(last, message.offset() or 0)
            key, value = message.key(), message.value()
            if key is None or value is None:
                continue
            self.applied += 1
            known = records.get(key)
            records[key] = value if known is None else self._join(known, value)
        return records, last

    def _join(self, left: bytes, right: bytes) -> bytes:
        joined = join_profiles(decode_profile(left), decode_profile(right), self.policy)
        return encode_profile(joined)


def _watermarks(reader: Consumer, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    # Right after topic creation or a leader change the broker answers "not leader" for a moment.
    while True:
        try:
            low, high = reader.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT_SECONDS)
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise RestoreError(
                    f"cannot read offsets of {tp.topic}[{tp.partition}]: {exc}"
                ) from exc
            logger.info("waiting for changelog partition=%d: %s", tp.partition, exc)
            time.sleep(RETRY_BACKOFF_SECONDS)
