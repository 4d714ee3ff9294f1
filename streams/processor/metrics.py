"""Prometheus metrics of one worker, in its own registry (tests run several per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from streams.processor.records import BatchCounts
from streams.web.metrics import process_registry, render


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = process_registry()
        r = self.registry
        self.events_in = Counter("streams_events_in", "Input records consumed.", registry=r)
        self.applied = Counter(
            "streams_events_applied", "Events that changed a profile.", registry=r
        )
        self.stale_events = Counter(
            "streams_events_stale", "Events whose every write was stale.", registry=r
        )
        self.stale_writes = Counter(
            "streams_stale_writes", "Property writes dropped as stale.", registry=r
        )
        self.rejected = Counter(
            "streams_events_rejected", "Input records sent to the DLQ.", ["reason"], registry=r
        )
        self.upserts_out = Counter("streams_upserts_out", "Upserts produced.", registry=r)
        self.rerouted = Counter(
            "streams_events_rerouted",
            "Records moved to their customer's partition (producer used another partitioner).",
            registry=r,
        )
        self.delivery_failures = Counter(
            "streams_delivery_failures", "Batches retried after a delivery failure.", registry=r
        )
        self.lag = Gauge(
            "streams_partition_lag", "Input records not yet processed.", ["partition"], registry=r
        )
        self.assigned = Gauge("streams_assigned_partitions", "Owned partitions.", registry=r)
        self.batch_seconds = Histogram(
            "streams_batch_seconds",
            "Time to process, deliver and commit one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

    def record(self, counts: BatchCounts) -> None:
        self.events_in.inc(counts.events_in)
        self.applied.inc(counts.applied)
        self.stale_events.inc(counts.stale_events)
        self.stale_writes.inc(counts.stale_writes)
        self.upserts_out.inc(counts.upserts_out)
        self.rerouted.inc(counts.rerouted)
        for reason, count in counts.rejected.items():
            self.rejected.labels(reason=reason).inc(count)

    def render(self) -> bytes:
        return render(self.registry)
