"""What a sink receives and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from streams.model import Upsert


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

    record: SinkRecord
    reason: str
    detail: str = ""


@dataclass(slots=True)
class WriteResult:
    """What a successful ``write`` reports: every record not rejected was accepted."""

    rejected: list[Rejection] = field(default_factory=list)
