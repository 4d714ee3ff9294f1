"""The ``GET /status`` document every worker and connector serves: who it is, its state, its
running totals, its dead letters by reason and its partitions (position, end, lag). The status
page and ``streams status`` read it and compute rates from two samples; the process keeps no
history. Each process hands over a function returning its :class:`StatusFigures`; the document
is assembled at most once per ``max_age`` seconds however often it is asked for."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["worker", "connector"]
ProcessState = Literal["starting", "restoring", "running", "retrying", "stopping"]
PartitionState = Literal["restoring", "owned", "paused"]

MAX_AGE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class PartitionFigures:
    """One assigned partition: ``position`` is the next offset the process will handle,
    ``end`` the partition's end (high watermark); None while unknown."""

    topic: str
    partition: int
    state: PartitionState
    position: int | None = None
    end: int | None = None

    @property
    def lag(self) -> int | None:
        if self.position is None or self.end is None:
            return None
        return max(self.end - self.position, 0)


@dataclass(frozen=True, slots=True)
class StatusFigures:
    state: ProcessState
    totals: Mapping[str, int]
    dlq_by_reason: Mapping[str, int]
    partitions: Sequence[PartitionFigures]


class StatusSource:
    """``document()``: the JSON-ready status of one process, from ``figures()`` at most once
    per ``max_age`` seconds. ``url`` may be set once the process knows its address."""

    def __init__(
        self,
        kind: Kind,
        name: str,
        figures: Callable[[], StatusFigures],
        *,
        url: str = "",
        max_age: float = MAX_AGE_SECONDS,
    ) -> None:
        self.kind: Kind = kind
        self.name = name
        self.url = url
        self.started_at = time.time()
        self._figures = figures
        self._max_age = max_age
        self._document: dict[str, Any] | None = None
        self._built_at = float("-inf")

    def document(self) -> dict[str, Any]:
        if self._document is None or time.monotonic() - self._built_at >= self._max_age:
            self._document = status_document(
                self.kind, self.name, self.url, self.started_at, self._figures(), time.time()
            )
            self._built_at = time.monotonic()
        return self._document


def status_document(
    kind: Kind, name: str, url: str, started_at: float, figures: StatusFigures, now: float
) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "url": url,
        "state": figures.state,
        "started_at": started_at,
        "now": now,
        "totals": dict(figures.totals),
        "dlq_by_reason": dict(sorted(figures.dlq_by_reason.items())),
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "position": p.position,
                "end": p.end,
                "lag": p.lag,
                "state": p.state,
            }
            for p in sorted(figures.partitions, key=lambda p: (p.topic, p.partition))
        ],
    }
