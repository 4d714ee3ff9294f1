"""Every process's /metrics (worker, serve, connector) after real traffic passes
``promtool check metrics``: Prometheus's own parser and naming lint."""

from __future__ import annotations

import subprocess

import httpx

from streams.testing import MemorySink, produce_events, wait_until
from tests.test_connect.test_worker import produce_upserts, upserts
from tests.test_ingest.http_server import running_service

EVENTS = [
    {
        "customer_id": f"c-{i}",
        "source": "crm",
        "update_timestamp": 1_700_000_000,
        "properties": {"n": i},
    }
    for i in range(20)
]


def check(promtool: str, exposition: bytes) -> None:
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, problems
    assert problems.strip() == ""


def test_a_workers_metrics_pass_promtool(promtool, streams_settings, start_worker) -> None:
    settings = streams_settings()
    worker = start_worker(settings)
    produce_events(settings, [*EVENTS, b"not json"])
    wait_until(
        lambda: b"streams_events_rejected_total{" in httpx.get(f"{worker.url}/metrics").content
    )
    exposition = httpx.get(f"{worker.url}/metrics").content
    assert b"process_resident_memory_bytes" in exposition
    assert b"python_info" in exposition
    check(promtool, exposition)


def test_serves_metrics_pass_promtool(promtool, streams_settings) -> None:
    settings = streams_settings()
    sections = {"tracking": {"anonymous": True}}
    with running_service(settings, sections) as url, httpx.Client(base_url=url) as client:
        body = {"commands": [{"name": "system/time"}]}
        assert client.post("/track/batch", json=body).status_code == 200
        assert client.get("/no/such/route").status_code == 404
        exposition = client.get("/metrics").content
    assert b"streams_http_request_seconds_bucket" in exposition
    assert b"python_gc_objects_collected_total" in exposition
    check(promtool, exposition)


def test_a_connectors_metrics_pass_promtool(promtool, streams_settings, start_connector) -> None:
    settings = streams_settings()
    service = start_connector(settings, MemorySink(settings))
    produce_upserts(settings, [*upserts(30, 10), b"not an upsert"])
    worker = service.worker
    assert worker is not None
    wait_until(lambda: worker.totals.written == 30 and worker.totals.rejected == 1)

    def lag_known() -> bool:
        return b"streams_connector_lag{" in httpx.get(f"{service.url}/metrics").content

    wait_until(lag_known)
    exposition = httpx.get(f"{service.url}/metrics").content
    assert b"streams_connector_delivery_seconds_bucket" in exposition
    assert b"process_cpu_seconds_total" in exposition
    check(promtool, exposition)
