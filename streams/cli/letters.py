"""What ``streams dlq`` and ``streams topics tail`` share: reading a topic to its current end
with a progress bar on stderr, and dead letters as JSON-ready records."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, Message
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from streams.codecs.readable import escaped, readable
from streams.kafka.clients import reader_config
from streams.kafka.reading import partition_ends, read_to_end
from streams.kafka.stored_letters import StoredLetter
from streams.logs import mask_emails
from streams.settings import Settings

PROGRESS_EVERY = 500  # records between progress updates


def reader(settings: Settings, purpose: str) -> Consumer:
    """An assigned reader in a group of its own: it never commits nor joins a group."""
    return Consumer(
        reader_config(settings, **{"group.id": f"streams-{purpose}-{uuid.uuid4().hex}"})
    )


def read_whole_topic(
    settings: Settings, topic: str, console: Console, *, purpose: str
) -> Generator[Message]:
    """Every record of ``topic`` from its start to its end now (never waits for new ones),
    partition by partition, with a progress bar on ``console``. A missing topic raises
    ``TopicNotFoundError``."""
    consumer = reader(settings, purpose)
    try:
        ranges = partition_ends(consumer, topic)
        total = sum(max(high - low, 0) for low, high in ranges.values())
        progress = Progress(
            TextColumn(f"reading {topic}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            console=console,
            transient=True,
        )
        task = progress.add_task("read", total=total)
        with progress:
            for count, message in enumerate(read_to_end(consumer, topic, ranges), 1):
                if count % PROGRESS_EVERY == 0:
                    progress.update(task, completed=count)
                yield message
    finally:
        consumer.close()


def iso_time(ms: int | None) -> str | None:
    return (
        None
        if ms is None
        else datetime.fromtimestamp(ms / 1000, UTC).isoformat("T", "milliseconds")
    )


def letter_row(letter: StoredLetter) -> dict[str, Any]:
    """One line of ``streams dlq list``: the letter's coordinates, reason and source, with the
    detail and key masked (an overview never carries a full email)."""
    return {
        "partition": letter.partition,
        "offset": letter.offset,
        "time": iso_time(letter.timestamp_ms),
        "reason": letter.reason,
        "detail": mask_emails(letter.detail),
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "key": None if letter.key is None else mask_emails(escaped(letter.key)),
        "bytes": letter.original_size,
        "truncated": letter.truncated,
    }


def letter_document(letter: StoredLetter) -> dict[str, Any]:
    """A letter whole (``streams dlq show``, ``tail`` of a DLQ topic): its ``dlq.*`` headers
    (the detail masked), then the input it holds, the value decoded when it is JSON or Avro."""
    value = readable(letter.value)
    headers = dict(letter.dlq_headers)
    if "dlq.detail" in headers:
        headers["dlq.detail"] = mask_emails(headers["dlq.detail"])
    return {
        "letter": {
            "partition": letter.partition,
            "offset": letter.offset,
            "time": iso_time(letter.timestamp_ms),
        },
        "dead_letter_headers": headers,
        "original": {
            "key": None if letter.key is None else escaped(letter.key),
            "headers": {name: escaped(data) for name, data in letter.original_headers},
            "format": value.form,
            "bytes": len(letter.value),
            "truncated": letter.truncated,
            "value": value.value,
        },
    }


def count_by(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def summary_line(what: str, counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{reason}={count}" for reason, count in counts.items())
    return f"{total} {what}" + (f" ({parts})" if parts else "")
