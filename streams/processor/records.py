"""Records crossing the processor's boundary, independent of the Kafka client (the records it
produces are :class:`streams.kafka.output_records.OutputRecord`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from streams.kafka.dead_letters import Headers
from streams.kafka.output_records import OutputRecord


class InputRecord(NamedTuple):
    """One consumed input record (tuples: one of these is made per event)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Headers | None = None


@dataclass(slots=True)
class BatchCounts:
    events_in: int = 0
    applied: int = 0
    stale_events: int = 0
    stale_writes: int = 0
    upserts_out: int = 0
    rerouted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, other: BatchCounts) -> None:
        self.events_in += other.events_in
        self.applied += other.applied
        self.stale_events += other.stale_events
        self.stale_writes += other.stale_writes
        self.upserts_out += other.upserts_out
        self.rerouted += other.rerouted
        self.rejected.update(other.rejected)


@dataclass(slots=True)
class BatchResult:
    """What a batch produces: phase-1 outputs, then the new states, then offsets to commit."""

    outputs: list[OutputRecord] = field(default_factory=list)
    states: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    next_offsets: dict[int, int] = field(default_factory=dict)
    counts: BatchCounts = field(default_factory=BatchCounts)
    # (partition, customer key) -> offsets of the input records merged into that new state
    contributors: Mapping[tuple[int, bytes], list[int]] = field(default_factory=dict)
