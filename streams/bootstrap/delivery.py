"""Produce in chunks and learn which prefix of the rows the broker has confirmed, cheaply.

A delivery report per message costs more than the produce call itself in confluent-kafka
(a Python callback per record), so the producers report failures only
(``delivery.report.only.error``) and confirmation is per chunk: chunks of consecutive rows go
round-robin to a few idempotent producers, and before a producer takes a new chunk it is
drained; a drained producer that reported no error has delivered its whole previous chunk.
That producer holds the oldest chunk in flight, so chunks are confirmed strictly in order and
``confirmed_line`` always ends a contiguous prefix. Order across producers does not matter: the
merge is order-independent and every row of a job carries its own timestamp.
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

DEFAULT_PRODUCERS = 2
MAX_ERROR_MESSAGES = 20
DRAIN_MARGIN_SECONDS = 10.0


class ChunkedDelivery:
    """``producer`` takes the rows of the current chunk; ``end_chunk`` hands it on."""

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
                        "client.id": f"{client_id}-{index}",
                        "delivery.report.only.error": True,
                        "on_delivery": partial(self._on_error, index),
                        **overrides,
                    },
                )
            )
            for index in range(producers)
        ]
        self._pending: list[int | None] = [None] * producers  # last line of the chunk in flight
        self._errors = [0] * producers
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
        return self.failed_records > 0

    def end_chunk(self, last_line: int) -> None:
        """Lines up to ``last_line`` are all produced; move on to the next producer (waiting for
        it to deliver its previous chunk, which also bounds what is in flight)."""
        self._pending[self._index] = last_line
        self._producers[self._index].poll(0)
        self._index = (self._index + 1) % len(self._producers)
        self._settle(self._index, self._drain_timeout)

    def finish(self, last_line: int, timeout: float | None = None) -> None:
        """Wait for every chunk, oldest first (``last_line`` closes the current one)."""
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
        elif not self.failed:  # a failed chunk stops the prefix for good
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
