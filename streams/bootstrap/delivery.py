"""Produce a job's rows and learn which prefix of them the broker has confirmed, cheaply.

A delivery report per message costs more than the produce call itself in confluent-kafka
(a Python callback per record), so the producer reports failures only
(``delivery.report.only.error``) and rows are confirmed by draining it: :meth:`confirm`, called
at every checkpoint, flushes, and a drained producer that reported no error has delivered every
row it took. Between two confirmations the rows wait in librdkafka's queue, bounded by its
``queue.buffering.max.*`` limits.

The producer waits up to 50 ms (:data:`PRODUCER_TUNING`) to fill its batches, not the
processor's 5 ms: a backfill wants throughput, and fewer, larger produce requests cost the
broker and librdkafka less per row (a quarter of the requests; benchmarks/README.md).

One producer by default: draining it once per checkpoint costs a short wait (on one local broker
it beat two producers drained in turns after every chunk: benchmarks/README.md). With
``producers > 1`` they take turns between confirmations: a confirmation drains the producer
holding the oldest rows, which took its last row a turn ago, while the next takes the new rows,
so a distant broker's round trips are not waited for at every checkpoint. Either way the drained
producer holds the oldest unconfirmed rows, so ``confirmed_line`` always ends a contiguous
prefix; order across producers does not matter (the merge is order-independent and every row of
a job carries its own timestamp).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import orjson
from confluent_kafka import Producer

from streams.errors import DeliveryError
from streams.kafka.clients import producer_config
from streams.logs import mask_emails
from streams.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_PRODUCERS = 1
# On top of the processor's producer settings (idempotent, acks=all, lz4).
PRODUCER_TUNING: dict[str, object] = {"linger.ms": 50}
MAX_ERROR_MESSAGES = 20
DRAIN_MARGIN_SECONDS = 10.0


class ChunkedDelivery:
    """``producer`` takes the rows; ``end_chunk`` marks how far they go; ``confirm`` and
    ``finish`` advance ``confirmed_line``."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str,
        confirmed_line: int = 0,
        producers: int = DEFAULT_PRODUCERS,
        **overrides: Any,
    ) -> None:
        if producers < 1:
            raise ValueError("at least one producer")
        self._producers = [
            Producer(
                producer_config(
                    settings,
                    **{
                        **PRODUCER_TUNING,
                        "client.id": f"{client_id}-{index}",
                        "delivery.report.only.error": True,
                        "on_delivery": partial(self._on_error, index),
                        **overrides,
                    },
                )
            )
            for index in range(producers)
        ]
        self._pending: list[int | None] = [None] * producers  # last line each one took
        self._errors = [0] * producers  # reported since that producer was last drained
        self._index = 0
        self._drain_timeout = settings.delivery_timeout_ms / 1000 + DRAIN_MARGIN_SECONDS
        self.confirmed_line = confirmed_line
        self.failed_records = 0
        self.error_messages: list[str] = []

    @property
    def producer(self) -> Producer:
        return self._producers[self._index]

    @property
    def failed(self) -> bool:
        """A record was refused (reported, or counted at a drain): producing more is useless,
        the confirmed prefix cannot grow past it."""
        return self.failed_records > 0 or any(self._errors)

    def end_chunk(self, last_line: int) -> None:
        """Every line up to ``last_line`` is produced (or was not to be)."""
        self._pending[self._index] = last_line
        self._producers[self._index].poll(0)  # failures reported so far, at no wait

    def confirm(self) -> None:
        """Drain the producer holding the oldest unconfirmed rows (the only one, by default)
        and move ``confirmed_line`` up to its last row; the next producer takes new rows."""
        self._index = (self._index + 1) % len(self._producers)
        self._settle(self._index, self._drain_timeout)

    def finish(self, last_line: int, timeout: float | None = None) -> None:
        """Wait for every row, oldest first (``last_line`` closes the current producer's)."""
        self._pending[self._index] = last_line
        count = len(self._producers)
        for step in range(1, count + 1):
            self._settle((self._index + step) % count, timeout or self._drain_timeout)

    def close(self) -> None:
        """Let the producers go now (they refer back to this object through their callbacks)."""
        self._producers.clear()

    def _settle(self, index: int, timeout: float) -> None:
        pending = self._pending[index]
        producer = self._producers[index]
        if pending is None:
            producer.poll(0)
            return
        remaining = producer.flush(timeout)
        if remaining:
            raise DeliveryError(f"{remaining} records still unconfirmed after {timeout:.0f} s")
        self._pending[index] = None
        if self._errors[index]:
            self.failed_records += self._errors[index]
            self._errors[index] = 0
        elif not self.failed_records:  # a failure stops the prefix for good
            self.confirmed_line = max(self.confirmed_line, pending)

    def _on_error(self, index: int, error: Any, message: Any) -> None:
        if error is None:
            return
        self._errors[index] += 1
        if len(self.error_messages) < MAX_ERROR_MESSAGES:
            self.error_messages.append(f"{_event_id(message.value())}: {error.str()}")
            logger.error("delivery failed %s", mask_emails(self.error_messages[-1]))


def _event_id(value: bytes | None) -> str:
    try:
        return str(orjson.loads(value or b"{}").get("event_id", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        return "?"
