"""Dead letters of the webhooks, in the processor's DLQ shape: the bytes we have as the value,
the reason in ``dlq.*`` headers, keyed by the customer (or notified) id.

IngestProducer.send takes no headers, so this small writer has its own producer; dead letters
are rare, and each waits for the broker's acknowledgement before the sender hears "202".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.ingest.producer import BrokerUnavailableError
from streams.kafka.clients import producer_config
from streams.logs import mask_emails
from streams.settings import Settings

logger = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


def dead_letter_headers(
    *,
    reason: str,
    detail: str,
    origin: str,
    received_ms: int,
    extra: Sequence[tuple[str, str]] = (),
) -> Headers:
    """``dlq.reason``/``dlq.detail`` as the processor writes them; ``dlq.origin`` says where
    the record came from (there is no input topic, partition or offset to name)."""
    headers: Headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.detail", mask_emails(detail).encode()),
        ("dlq.origin", origin.encode()),
        ("dlq.timestamp", str(received_ms).encode()),
    ]
    headers.extend((name, value.encode()) for name, value in extra)
    return headers


class DeadLetterWriter:
    """``write`` resolves once Kafka acknowledged; raises BrokerUnavailableError otherwise."""

    def __init__(self, settings: Settings, *, timeout_s: float) -> None:
        self.topic = settings.dlq_topic
        self._timeout_s = timeout_s
        self._producer = Producer(
            producer_config(settings, **{"client.id": "profile-streams-webhooks-dlq"})
        )

    async def write(self, key: bytes | None, value: bytes, headers: Headers) -> None:
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[str | None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            outcome = None if error is None else error.str()
            loop.call_soon_threadsafe(_settle, acknowledged, outcome)

        try:
            self._producer.produce(self.topic, value, key, headers=headers, on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            raise BrokerUnavailableError(f"dead letter not queued: {exc}") from exc
        # flush() serves the delivery callback; it runs in a thread to keep the loop free.
        left = await asyncio.to_thread(self._producer.flush, self._timeout_s)
        if left:
            raise BrokerUnavailableError(
                f"Kafka did not acknowledge the dead letter within {self._timeout_s:.0f} s"
            )
        error = await asyncio.wait_for(acknowledged, self._timeout_s)
        if error is not None:
            raise BrokerUnavailableError(f"dead letter not delivered: {error}")

    def close(self, timeout: float = 5.0) -> int:
        return int(self._producer.flush(timeout))


def _settle(future: asyncio.Future[str | None], outcome: str | None) -> None:
    if not future.done():
        future.set_result(outcome)
