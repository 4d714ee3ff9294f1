"""Dead letters as read back from a DLQ topic (``streams dlq``): their reason, detail and
source coordinates from the ``dlq.*`` headers, the filters that choose them, and the record
that replays one to where it came from."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import cast

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from streams.kafka.dead_letters import (
    DLQ_PREFIX,
    ORIGINAL_BYTES_HEADER,
    REASON_HEADER,
    TRUNCATED_HEADER,
    Headers,
)
from streams.kafka.output_records import OutputRecord
from streams.kafka.partitioner import partition_for

REPLAYED_HEADER = "replayed.from"


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """One record of a DLQ topic: where it sits, its ``dlq.*`` headers read, and the input's
    own key, value and headers (the ones that follow ours)."""

    partition: int
    offset: int
    timestamp_ms: int | None  # when it was dead-lettered (the letter's Kafka timestamp)
    key: bytes | None
    value: bytes
    dlq_headers: dict[str, str]
    original_headers: Headers

    @classmethod
    def from_message(cls, message: Message) -> StoredLetter:
        kind, stamp = message.timestamp()
        ours: dict[str, str] = {}
        theirs: Headers = []
        # A consumed record's headers are always a list of pairs (a dict is for producing).
        pairs = cast("list[tuple[str, str | bytes | None]]", message.headers() or [])
        for name, data in pairs:
            raw = data if isinstance(data, bytes) else (data or "").encode()
            if name.startswith(DLQ_PREFIX):
                ours.setdefault(name, raw.decode("utf-8", "backslashreplace"))
            else:
                theirs.append((name, raw))
        return cls(
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            timestamp_ms=None if kind == TIMESTAMP_NOT_AVAILABLE else stamp,
            key=message.key(),
            value=message.value() or b"",
            dlq_headers=ours,
            original_headers=theirs,
        )

    @property
    def reason(self) -> str:
        return self.dlq_headers.get(REASON_HEADER, "")

    @property
    def detail(self) -> str:
        return self.dlq_headers.get("dlq.detail", "")

    @property
    def source_topic(self) -> str | None:
        return self.dlq_headers.get("dlq.topic")

    @property
    def source_partition(self) -> int | None:
        return _integer(self.dlq_headers.get("dlq.partition"))

    @property
    def source_offset(self) -> int | None:
        return _integer(self.dlq_headers.get("dlq.offset"))

    @property
    def source_timestamp_ms(self) -> int | None:
        """The input record's Kafka timestamp (``dlq.timestamp``), when it had one."""
        stamp = _integer(self.dlq_headers.get("dlq.timestamp"))
        return stamp if stamp is not None and stamp >= 0 else None

    @property
    def truncated(self) -> bool:
        return self.dlq_headers.get(TRUNCATED_HEADER) == "true"

    @property
    def original_size(self) -> int:
        """The input value's full length (``dlq.original_bytes`` when the letter was cut)."""
        return _integer(self.dlq_headers.get(ORIGINAL_BYTES_HEADER)) or len(self.value)


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which letters a command acts on: any of ``reasons`` (all when empty), dead-lettered
    within ``[since_ms, until_ms]``."""

    reasons: Collection[str] = ()
    since_ms: int | None = None
    until_ms: int | None = None

    def __call__(self, letter: StoredLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        stamp = letter.timestamp_ms
        if self.since_ms is not None and (stamp is None or stamp < self.since_ms):
            return False
        return self.until_ms is None or (stamp is not None and stamp <= self.until_ms)


def replay_record(
    letter: StoredLetter, topic: str, partitions: int, dlq_topic: str
) -> OutputRecord:
    """The input as it was (key, value, its own headers and timestamp) for ``topic`` of
    ``partitions`` partitions, on its key's partition as every producer of the package picks
    it (a keyless one keeps its partition when ``topic`` has it), with a ``replayed.from``
    header naming the letter. A truncated letter cannot be replayed: the caller skips it."""
    if letter.key is not None:
        partition = partition_for(letter.key, partitions)
    else:
        source = letter.source_partition
        partition = source if source is not None and 0 <= source < partitions else 0
    headers: Headers = [
        *letter.original_headers,
        (REPLAYED_HEADER, f"{dlq_topic}/{letter.partition}/{letter.offset}".encode()),
    ]
    return OutputRecord(
        topic, partition, letter.key, letter.value, headers, letter.source_timestamp_ms
    )


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
