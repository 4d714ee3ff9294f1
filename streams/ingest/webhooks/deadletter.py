"""Dead letters of the webhooks, in the processor's DLQ shape: the bytes we have as the value,
the reason in ``dlq.*`` headers, keyed by the customer (or notified) id.

Each waits for the broker's acknowledgement before the sender hears "202". A letter larger than
the producer's ``message.max.bytes`` is cut to fit (``dlq.truncated``, ``dlq.original_bytes``).
"""

from __future__ import annotations

import logging

from streams.ingest.producer import IngestProducer, KafkaBackpressureError
from streams.kafka.dead_letters import DeadLetter, Headers, fit_dead_letter
from streams.settings import Settings

logger = logging.getLogger(__name__)


class DeadLetterWriter:
    """Writes dead letters through the service's producer to the DLQ topic; ``write`` resolves
    once Kafka acknowledged and raises KafkaBackpressureError otherwise."""

    def __init__(self, settings: Settings, producer: IngestProducer, *, timeout_s: float) -> None:
        self.topic = settings.dlq_topic
        self._limit = settings.max_message_bytes
        self._producer = producer
        self._timeout_s = timeout_s

    async def write(self, key: bytes | None, value: bytes, headers: Headers) -> None:
        letter = fit_dead_letter(DeadLetter(key, value, headers), self._limit)
        errors = await self._producer.send([letter], topic=self.topic, timeout=self._timeout_s)
        if errors:
            raise KafkaBackpressureError(f"dead letter not delivered: {errors[0]}")
