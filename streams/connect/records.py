"""What a sink receives and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from streams.codecs.upserts import UpsertCodec
from streams.errors import InvalidEventError
from streams.model import Upsert


class RawRecord(NamedTuple):
    """One message of ``profile-upserts``, not decoded yet (for a sink that decodes itself)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class SinkRecord(NamedTuple):
    """One upsert from ``profile-upserts``, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes  # the original bytes, kept for the dead-letter topic
    upsert: Upsert

    @property
    def customer_id(self) -> str:
        return self.upsert.customer_id


class Rejection(NamedTuple):
    """A record the destination refused for good, and its reason (goes to the DLQ)."""

    record: RawRecord | SinkRecord
    reason: str
    detail: str = ""


@dataclass(slots=True)
class WriteResult:
    """What a successful ``write`` reports: every record not rejected was accepted."""

    rejected: list[Rejection] = field(default_factory=list)


BAD_UPSERT = "bad_upsert"


def decoded(record: RawRecord, codec: UpsertCodec) -> SinkRecord | Rejection:
    """The record with its upsert, or its rejection when the bytes are not an upsert."""
    try:
        upsert = codec.decode(record.value)
    except InvalidEventError as exc:
        return Rejection(record, BAD_UPSERT, exc.detail)
    return SinkRecord(*record, upsert)
