"""Prometheus metrics of one connector, in its own registry: counts and lag are read from the
worker's status when scraped (the worker counts once, in ``ConnectorCounts``); delivery
latency is observed by the worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from streams.connect.status import ConnectorStatus
from streams.web.metrics import process_registry, render

DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ConnectorMetrics:
    def __init__(self, name: str, status: Callable[[], ConnectorStatus]) -> None:
        self.registry = process_registry()
        self._name = name
        self._status = status
        self.delivery = Histogram(
            "streams_connector_delivery_seconds",
            "Time to write one batch to the destination and commit its offsets.",
            ["connector"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        ).labels(name)
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        counts, name = status.counts, self._name
        for metric, help_text, value in (
            ("batches", "Batches written to the destination.", counts.batches),
            ("records", "Upserts consumed.", counts.consumed),
            ("retries", "Sink retries after a retryable failure.", counts.retries),
        ):
            family = CounterMetricFamily(
                f"streams_connector_{metric}", help_text, labels=["connector"]
            )
            family.add_metric([name], value)
            yield family
        rejected = CounterMetricFamily(
            "streams_connector_rejected",
            "Records sent to the connector's dead-letter topic, by reason.",
            labels=["connector", "reason"],
        )
        for reason, count in sorted(counts.rejected_by_reason.items()):
            rejected.add_metric([name, reason], count)
        yield rejected
        lag = GaugeMetricFamily(
            "streams_connector_lag",
            "Upserts not yet delivered, per assigned partition.",
            labels=["connector", "partition"],
        )
        for progress in status.partitions:
            if progress.lag is not None:
                lag.add_metric([name, str(progress.partition)], progress.lag)
        yield lag

    def describe(self) -> list[Metric]:
        # Registered before the worker runs: no status to read yet, and no names to clash.
        return []

    def render(self) -> bytes:
        return render(self.registry)
