"""Produce change events from a JSONL file, byte for byte, keyed by their customer id."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import orjson
from confluent_kafka import Producer

from streams.errors import DeliveryError, StreamsError
from streams.kafka.clients import producer_config
from streams.kafka.queue_full import produce_waiting
from streams.settings import Settings

logger = logging.getLogger(__name__)


def customer_key(line: bytes) -> bytes | None:
    """The record key for a raw line: its customer_id when there is one to read."""
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    customer_id = parsed.get("customer_id") if isinstance(parsed, dict) else None
    return customer_id.encode() if isinstance(customer_id, str) and customer_id else None


def produce_lines(settings: Settings, lines: Iterable[bytes], *, timeout: float = 60.0) -> int:
    """Produce every non-blank line to the input topic; malformed lines too (they meet the DLQ)."""
    producer = Producer(producer_config(settings))
    failures: list[str] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        produce_waiting(producer, settings.input_topic, line, customer_key(line), on_delivery)
        count += 1
    remaining = producer.flush(timeout)
    if failures or remaining:
        raise DeliveryError(
            f"{len(failures) + remaining} of {count} records not delivered"
            + (f": {failures[0]}" if failures else "")
        )
    return count


def produce_file(settings: Settings, path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return produce_lines(settings, handle)
    except OSError as exc:
        raise StreamsError(f"cannot read {path}: {exc}") from exc
