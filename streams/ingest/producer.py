"""An asyncio front for one confluent-kafka producer: await the broker's acknowledgement.

Ingestion must not tell its sender "accepted" before Kafka has the records, so ``send``
resolves only when every record's delivery report arrived. A background thread polls the
producer; delivery callbacks count down a per-call tracker and wake the waiting coroutine
through ``call_soon_threadsafe``. One callback per record is the price of per-record results.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.errors import KafkaUnavailableError
from streams.kafka.clients import producer_config
from streams.kafka.dead_letters import Headers, is_unavailable
from streams.settings import Settings

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
DEFAULT_SEND_TIMEOUT_SECONDS = 15.0
# While librdkafka reports every broker down, a caller is told so after this long, not later.
DOWN_SEND_TIMEOUT_SECONDS = 2.0
DEFAULT_RETRY_AFTER_SECONDS = 5


Record = tuple[bytes | None, bytes] | tuple[bytes | None, bytes, Headers]


class KafkaBackpressureError(KafkaUnavailableError):
    """Kafka did not acknowledge in time (down, unreachable or overloaded); retry later."""

    def __init__(self, message: str, *, retry_after: int = DEFAULT_RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SendErrors(dict[int, str]):
    """What ``send`` reports: the error text by record index; ``refused`` holds the indices
    Kafka refused for a reason of the record's own (too large, invalid), which a retry will
    not change, as opposed to Kafka being unavailable."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: set[int] = set()

    def add(self, index: int, error: KafkaError) -> None:
        self[index] = error.str()
        if not is_unavailable(error):
            self.refused.add(index)


@dataclass(frozen=True, slots=True)
class Unacknowledged:
    """A request whose records Kafka did not all acknowledge: answer 503 with ``detail`` and
    ``Retry-After: retry_after``; the client retries the whole request (the merge absorbs the
    duplicates)."""

    detail: str
    retry_after: int


class _Tracker:
    """Counts down the delivery reports of one ``send`` call (runs on the poll thread).

    One bound method serves every record of the call (no per-record closure), and the count is
    an ``itertools.count`` (atomic under the GIL), so reports on the poll thread and refusals on
    the loop's thread need no lock. Errors are rare: their record is found by its bytes."""

    __slots__ = ("_records", "_reports", "errors", "future", "loop", "total")

    def __init__(self, loop: asyncio.AbstractEventLoop, records: Sequence[Record]) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.total = len(records)
        self.errors = SendErrors()
        self._records = records
        self._reports = itertools.count(1)

    def on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self.errors.add(self._index_of(message.key(), message.value()), error)
        self._count()

    def refused(self, index: int, error: KafkaError) -> None:
        self.errors.add(index, error)
        self._count()

    def _count(self) -> None:
        if next(self._reports) == self.total:
            self.loop.call_soon_threadsafe(self._resolve)

    def _index_of(self, key: bytes | None, value: bytes | None) -> int:
        for index, record in enumerate(self._records):
            if index not in self.errors and record[0] == key and record[1] == value:
                return index
        return -1  # not ours: cannot happen, a report carries the bytes we produced

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class IngestProducer:
    """Produce keyed records and await their acknowledgement; ``start`` before, ``close`` after."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "profile-streams-ingest",
        send_timeout: float = DEFAULT_SEND_TIMEOUT_SECONDS,
        **overrides: Any,
    ) -> None:
        if send_timeout <= 0:
            raise ValueError("send_timeout must be positive")
        self.topic = settings.input_topic
        self.send_timeout = send_timeout
        self._brokers_down = False
        self._producer = Producer(
            producer_config(
                settings, **{"client.id": client_id, "error_cb": self._on_error, **overrides}
            )
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def brokers_down(self) -> bool:
        """librdkafka reported every broker down and no delivery succeeded since."""
        return self._brokers_down

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="ingest-producer", daemon=True)
            self._thread.start()

    async def send(
        self, records: Sequence[Record], *, topic: str | None = None, timeout: float | None = None
    ) -> SendErrors:
        """Produce ``(key, value)`` or ``(key, value, headers)`` records; return the errors by
        index (empty: all delivered). ``timeout`` overrides the producer's ``send_timeout``.

        Raises :class:`KafkaBackpressureError` when the reports do not arrive in time or the
        local queue is full; records already queued may still be delivered later (a retry then
        duplicates them, which the merge absorbs)."""
        if not records:
            return SendErrors()
        if self._thread is None:
            raise RuntimeError("IngestProducer.start() was not called")
        tracker = _Tracker(asyncio.get_running_loop(), records)
        produce = self._producer.produce
        target = topic or self.topic
        on_delivery = tracker.on_delivery
        for index, record in enumerate(records):
            try:
                if len(record) == 2:
                    produce(target, record[1], record[0], on_delivery=on_delivery)
                else:
                    headers = cast("list[tuple[str, str | bytes | None]]", record[2])  # stubs
                    produce(target, record[1], record[0], headers=headers, on_delivery=on_delivery)
            except KafkaException as exc:  # refused before queueing (too large, unknown topic)
                tracker.refused(index, exc.args[0])
            except BufferError as exc:
                # Queued records of this call will still report; they are not waited for.
                raise KafkaBackpressureError("the producer's queue is full", retry_after=1) from exc
        timeout = timeout or self.send_timeout
        if self.brokers_down:
            timeout = min(timeout, DOWN_SEND_TIMEOUT_SECONDS)
        try:
            await asyncio.wait_for(asyncio.shield(tracker.future), timeout)
        except TimeoutError as exc:
            raise KafkaBackpressureError(
                f"Kafka did not acknowledge all {len(records)} records within {timeout:.0f} s"
            ) from exc
        if len(tracker.errors) < len(records):
            self._brokers_down = False
        return tracker.errors

    async def acknowledged(
        self,
        records: Sequence[Record],
        *,
        retry_after: int,
        topic: str | None = None,
        what: str,
    ) -> Unacknowledged | None:
        """``send`` for a request answered only once every record is acknowledged: None when
        Kafka acknowledged all, else why not (logged as ``what``'s: track, bloomreach)."""
        if not records:
            return None
        try:
            errors = await self.send(records, topic=topic)
        except KafkaBackpressureError as exc:
            logger.warning("%s request not acknowledged records=%d: %s", what, len(records), exc)
            return Unacknowledged(f"{exc}; retry the whole request", exc.retry_after)
        if not errors:
            return None
        first = errors[min(errors)]
        logger.warning(
            "%s delivery failed records=%d failed=%d first_error=%s",
            what,
            len(records),
            len(errors),
            first,
        )
        detail = (
            f"Kafka did not acknowledge {len(errors)} of {len(records)} records ({first}); "
            "retry the whole request"
        )
        return Unacknowledged(detail, retry_after)

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (up to ``timeout``), stop polling; returns undelivered count."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return int(self._producer.flush(timeout))

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(POLL_SECONDS)
            except Exception:  # a failing callback must not end delivery reports for good
                logger.exception("delivery report callback failed")

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True
            logger.warning("kafka unreachable error=%s", error.str())
        else:
            logger.warning("kafka client error=%s", error.str())
