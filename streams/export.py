"""``streams export``: every current profile, read from the compacted changelog topic.

The changelog holds each customer's full state as the processor delivered it, so reading it
up to its end gives exactly the processor's state, needs no running worker, and is read one
partition at a time (a customer lives in one partition), which bounds memory.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import orjson
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from streams.atomic_files import atomic_writer
from streams.codecs.timestamps import ms_to_seconds
from streams.errors import StoppedError
from streams.kafka.clients import reader_config
from streams.kafka.reading import partition_ends, read_range
from streams.merge import MergePolicy, join_profiles
from streams.model import Profile
from streams.settings import Settings
from streams.state.codec import decode_profile

logger = logging.getLogger(__name__)

ExportFormat = Literal["csv", "jsonl"]
READ_BATCH = 10_000
PROGRESS_EVERY = 1000  # records between progress updates


@dataclass(slots=True)
class ExportSummary:
    profiles: int = 0
    records_read: int = 0
    seconds: float = 0.0


def read_partition(
    settings: Settings, consumer: Consumer, partition: int, on_record: Callable[[], None]
) -> dict[str, Profile]:
    """The latest state of every customer of one changelog partition, up to its end now."""
    topic = settings.changelog_topic
    policy = MergePolicy(settings.priorities())
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
    profiles: dict[str, Profile] = {}
    if high <= low:
        return profiles
    for messages in read_range(consumer, topic, partition, low, high, batch_size=READ_BATCH):
        for message in messages:
            on_record()
            key, value = message.key(), message.value()
            if key is None or value is None:
                continue
            customer = key.decode()
            state = decode_profile(value)
            known = profiles.get(customer)
            profiles[customer] = state if known is None else join_profiles(known, state, policy)
    return profiles


def profile_row(profile: Profile, include_timestamps: bool) -> dict[str, object]:
    """Properties as the query API shows them (unset properties left out)."""
    return {
        name: {"value": s.value, "last_update": ms_to_seconds(s.last_update)}
        if include_timestamps
        else s.value
        for name, s in sorted(profile.properties.items())
        if s.value is not None
    }


def iter_profiles(
    settings: Settings, on_record: Callable[[], None] = lambda: None
) -> Iterator[tuple[str, Profile]]:
    """Every customer with at least one set property, partition by partition."""
    consumer = Consumer(reader_config(settings, **{"group.id": f"export-{uuid.uuid4().hex}"}))
    try:
        for partition in partition_ends(consumer, settings.changelog_topic):
            profiles = read_partition(settings, consumer, partition, on_record)
            for customer in sorted(profiles):
                profile = profiles[customer]
                if any(s.value is not None for s in profile.properties.values()):
                    yield customer, profile
    finally:
        consumer.close()


def _write_jsonl(out: IO[str], rows: Iterator[tuple[str, Profile]], with_ts: bool) -> int:
    count = 0
    for customer, profile in rows:
        line = {"customer_id": customer, "properties": profile_row(profile, with_ts)}
        out.write(orjson.dumps(line).decode() + "\n")
        count += 1
    return count


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_csv(
    out: IO[str], rows: Iterator[tuple[str, Profile]], columns: list[str], with_ts: bool
) -> int:
    header = ["customer_id"]
    for name in columns:
        header += [name, f"{name}_last_update"] if with_ts else [name]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for customer, profile in rows:
        row = [customer]
        for name in columns:
            state = profile.properties.get(name)
            row.append(_cell(state.value if state else None))
            if with_ts:
                row.append(_cell(ms_to_seconds(state.last_update) if state else None))
        writer.writerow(row)
        count += 1
    return count


def export_profiles(
    settings: Settings,
    fmt: ExportFormat,
    *,
    include_timestamps: bool = False,
    output: Path | None = None,
    console: Console | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> ExportSummary:
    """Write every current profile; to ``output`` atomically (temp file, rename) or stdout.

    ``on_progress(records_read)`` is called every ``PROGRESS_EVERY`` changelog records (for
    callers without a terminal, such as the jobs API). When ``stop`` is set the export ends
    with :class:`StoppedError` within ``PROGRESS_EVERY`` records, leaving no output file."""
    console = console or Console(stderr=True)
    summary = ExportSummary()
    started = time.monotonic()
    columns: list[str] = []
    header_records = 0

    def check_stop(read: int) -> None:
        if stop is not None and stop.is_set():
            raise StoppedError(f"export stopped after {read:,} changelog records")

    def header_tick() -> None:
        nonlocal header_records
        header_records += 1
        if header_records % PROGRESS_EVERY == 0:
            check_stop(header_records)

    check_stop(0)
    if fmt == "csv":
        # CSV needs its header first: one pass to learn the property names.
        names: set[str] = set()
        for _, profile in iter_profiles(settings, header_tick):
            names.update(n for n, s in profile.properties.items() if s.value is not None)
        columns = sorted(names)
    probe = Consumer(reader_config(settings, **{"group.id": f"export-{uuid.uuid4().hex}"}))
    try:
        ends = partition_ends(probe, settings.changelog_topic).values()
        total = sum(max(high - low, 0) for low, high in ends)
    finally:
        probe.close()
    progress = Progress(
        TextColumn("exporting"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("export", total=total)

    def tick() -> None:
        summary.records_read += 1
        if summary.records_read % PROGRESS_EVERY == 0:
            check_stop(summary.records_read)
            progress.update(task, completed=summary.records_read)
            if on_progress is not None:
                on_progress(summary.records_read)

    def write(handle: IO[str]) -> None:
        with progress:
            rows = iter_profiles(settings, tick)
            if fmt == "csv":
                summary.profiles = _write_csv(handle, rows, columns, include_timestamps)
            else:
                summary.profiles = _write_jsonl(handle, rows, include_timestamps)
            progress.update(task, completed=summary.records_read)
        handle.flush()

    if output is None:
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
        write(out)
        out.detach()  # collecting the wrapper would close stdout under the caller
    else:
        with atomic_writer(output) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            write(text)
            text.detach()  # the writer closes the file itself, after its fsync
    summary.seconds = time.monotonic() - started
    return summary
