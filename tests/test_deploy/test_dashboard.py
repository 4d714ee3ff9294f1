"""The Grafana dashboard (deploy/grafana/dashboards/profile-streams.json) plots only metrics the
processes export: every metric name in its PromQL is a sample name of a worker's registry,
serve's, or (until their branches are merged) the names agreed in INTERFACE.md."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from streams.ingest.http.app import IngestMetrics
from streams.processor.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "profile-streams.json"

# What a family of each type exposes (the OpenMetrics `_created` series are never plotted).
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}
# PromQL words that are not metric names.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def pending_registry() -> CollectorRegistry:
    """The metrics INTERFACE.md agrees on that are built on other branches.

    TODO(merge): replace with the connector's and serve's real registries (branch opsmetrics)
    and drop what they export from this list.
    """
    r = CollectorRegistry()
    Counter("streams_connector_batches", "", ["connector"], registry=r)
    Counter("streams_connector_records", "", ["connector"], registry=r)
    Counter("streams_connector_retries", "", ["connector"], registry=r)
    Counter("streams_connector_rejected", "", ["connector", "reason"], registry=r)
    Gauge("streams_connector_lag", "", ["connector", "partition"], registry=r)
    Histogram("streams_connector_delivery_seconds", "", ["connector"], registry=r)
    Histogram("streams_http_request_seconds", "", ["route", "method", "status"], registry=r)
    ProcessCollector(registry=r)  # every process's registry carries it (INTERFACE.md)
    return r


def sample_names(registry: CollectorRegistry) -> set[str]:
    """The series names a registry exposes, labelled families without children included."""
    return {
        family.name + suffix for family in registry.collect() for suffix in _SUFFIXES[family.type]
    }


@cache
def exported() -> frozenset[str]:
    registries = [WorkerMetrics().registry, IngestMetrics().registry, pending_registry()]
    return frozenset(name for registry in registries for name in sample_names(registry))


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query, rows' nested panels included."""
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: identifiers that are not functions,
    keywords, label names (in `by (...)`, `{...}`) or range durations (`[5m]`)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", stripped)  # matchers, ranges
    stripped = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", stripped)
    names = set()
    for match in _IDENTIFIER.finditer(stripped):
        word = match.group()
        if word.lower() in _KEYWORDS or stripped[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


@cache
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(streams_http_request_seconds_bucket"
        '{route="/track"}[$__rate_interval]))) / on (job) group_left up'
    )
    assert metric_names(expr) == {"streams_http_request_seconds_bucket", "up"}
    assert metric_names("sum without (partition) (streams_partition_lag) > bool 0") == {
        "streams_partition_lag"
    }


def test_every_plotted_metric_is_exported() -> None:
    unknown = {
        f"{title}: {name}"
        for title, expr in expressions(dashboard())
        for name in metric_names(expr)
        if name not in exported()
    }
    assert not unknown, f"the dashboard plots metrics no process exports: {sorted(unknown)}"


@pytest.mark.parametrize(
    "name",
    [
        "streams_events_in_total",
        "streams_events_applied_total",
        "streams_events_stale_total",
        "streams_events_rejected_total",
        "streams_partition_lag",
        "streams_batch_seconds_bucket",
        "streams_upserts_out_total",
        "streams_http_request_seconds_count",
        "streams_http_request_seconds_bucket",
        "streams_connector_records_total",
        "streams_connector_lag",
        "streams_connector_retries_total",
        "streams_connector_rejected_total",
        "streams_connector_delivery_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ],
)
def test_the_dashboard_plots_the_pipeline(name: str) -> None:
    plotted = {metric for _, expr in expressions(dashboard()) for metric in metric_names(expr)}
    assert name in plotted


def test_panels_have_unique_ids_and_queries_unique_ref_ids() -> None:
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard()["panels"]:
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
    assert dashboard()["uid"] == "profile-streams"
