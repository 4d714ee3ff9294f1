"""What a connector says about itself: counts, state and per-partition progress, one snapshot
read by ``/health``, ``/status`` (through :mod:`streams.web.status`) and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from streams.web.status import PartitionFigures, StatusFigures

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
class ConnectorStatus:
    name: str
    topic: str
    state: ConnectorState
    started_at: float
    counts: ConnectorCounts
    partitions: tuple[PartitionFigures, ...]
    # The type of the error that stopped the connector (its message stays in the log).
    error: str | None = None

    def figures(self) -> StatusFigures:
        """What ``GET /status`` shows (:mod:`streams.web.status` assembles the document)."""
        counts = self.counts
        return StatusFigures(
            self.state, counts.totals(), counts.rejected_by_reason, self.partitions
        )
