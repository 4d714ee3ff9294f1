"""What a connector says about itself: counts, state and per-partition progress, one snapshot
read by ``/health``, ``/status`` and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

ConnectorState = Literal["starting", "running", "retrying", "stopping"]


@dataclass(slots=True)
class ConnectorCounts:
    consumed: int = 0
    written: int = 0
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def copy(self) -> ConnectorCounts:
        """A copy another thread may read while the worker goes on counting."""
        return replace(self, rejected_by_reason=dict(self.rejected_by_reason))

    def totals(self) -> dict[str, int]:
        """The ``totals`` of ``/status``."""
        return {
            "batches": self.batches,
            "records": self.consumed,
            "delivered": self.written,
            "retries": self.retries,
            "rejected": self.rejected,
        }


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """``position``: the next upsert to deliver (consumed but undelivered ones included);
    ``end``: the partition's high watermark. None while unknown."""

    partition: int
    position: int | None
    end: int | None
    paused: bool = False

    @property
    def lag(self) -> int | None:
        if self.position is None or self.end is None:
            return None
        return max(self.end - self.position, 0)


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    name: str
    topic: str
    state: ConnectorState
    started_at: float
    counts: ConnectorCounts
    partitions: tuple[PartitionProgress, ...]
    # The type of the error that stopped the connector (its message stays in the log).
    error: str | None = None

    def document(self, url: str, now: float) -> dict[str, object]:
        """The JSON of ``GET /status`` (docs: the interface shared with workers)."""
        return {
            "kind": "connector",
            "name": self.name,
            "url": url,
            "state": self.state,
            "started_at": self.started_at,
            "now": now,
            "totals": self.counts.totals(),
            "dlq_by_reason": dict(sorted(self.counts.rejected_by_reason.items())),
            "partitions": [
                {
                    "topic": self.topic,
                    "partition": p.partition,
                    "position": p.position,
                    "end": p.end,
                    "lag": p.lag,
                    "state": "paused" if p.paused else "owned",
                }
                for p in self.partitions
            ],
        }
