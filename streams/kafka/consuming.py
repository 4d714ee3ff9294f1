"""What the long-running consumers (the processor and the connectors) share about consuming.

They keep tens of thousands of consumed messages and records alive per batch in flight. The
crate makes the records and untracks both from the cycle collector (``input_records``,
``raw_records``), but only objects not yet promoted stay out of its full collections: a chunk
of ``CONSUME_CHUNK`` messages, fewer than the 700 allocations that trigger a collection, is
untracked before any collection can see it.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException, Message

logger = logging.getLogger(__name__)

CONSUME_CHUNK = 500


def without_errors(messages: list[Message], client: str) -> list[Message]:
    """The messages that carry no error; a fatal error raises, the others are logged."""
    kept = []
    for message in messages:
        error = message.error()
        if error is None:
            kept.append(message)
        elif error.fatal():
            raise KafkaException(error)
        else:
            logger.warning("%s consumer error: %s", client, error.str())
    return kept
