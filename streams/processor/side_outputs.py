"""The outputs of a batch that are not merge results: dead letters and reroutes. Both kernels
build them here, so they are the same records whichever kernel decided."""

from __future__ import annotations

from collections.abc import Set

from streams.errors import InvalidEventError
from streams.kafka.dead_letters import MINIMAL_LIMIT_BYTES, Headers, dead_letter_headers
from streams.kafka.output_records import Origin, OutputRecord, fitted_letter
from streams.processor.records import InputRecord
from streams.settings import Settings


def dead_letter(
    settings: Settings, record: InputRecord, exc: InvalidEventError, shrunk: Set[Origin]
) -> OutputRecord:
    """The record with its reason and coordinates on the DLQ topic; cut to
    ``MINIMAL_LIMIT_BYTES`` for an origin in ``shrunk`` (the DLQ topic refused it whole)."""
    headers = dead_letter_headers(
        exc.reason,
        exc.detail,
        ("topic", settings.input_topic),
        ("partition", record.partition),
        ("offset", record.offset),
        ("timestamp", record.timestamp_ms),
    )
    headers.extend(record.headers or ())
    origin = (record.partition, record.offset)
    limit = MINIMAL_LIMIT_BYTES if origin in shrunk else settings.max_message_bytes
    letter = OutputRecord(
        settings.dlq_topic, record.partition, record.key, record.value, headers, origin=origin
    )
    return fitted_letter(letter, limit)


def reroute(settings: Settings, record: InputRecord, key: bytes, home: int) -> OutputRecord:
    """The record moved to its customer's partition, where the customer's state lives: a
    producer with another partitioner split a customer across partitions."""
    headers: Headers = [("rerouted.from", str(record.partition).encode())]
    headers.extend(record.headers or ())
    return OutputRecord(
        settings.input_topic,
        home,
        key,
        record.value,
        headers,
        record.timestamp_ms,
        (record.partition, record.offset),
    )
