"""A connector's /health, /metrics and /status on a real broker, served over real HTTP."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from streams.connect.config import ConnectorConfig
from streams.connect.errors import RetryableSinkError
from streams.connect.runner import ConnectorService
from streams.connect.sinks.file import FileSink
from streams.errors import ConfigError, StreamsError
from streams.httpclient.backoff import RetryConfig
from streams.testing import MemorySink, wait_until
from streams.web.routing import CONNECTOR_CLIENT_ID_PREFIX, endpoint_from_client_id
from tests.test_connect.test_worker import produce_upserts, upserts
from tests.test_processor.cluster import free_port, settings_env

PARTITION_KEYS = {"topic", "partition", "position", "end", "lag", "state"}


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def health(service: ConnectorService) -> int:
    return health_of(service.url)


def health_of(url: str) -> int:
    return get(f"{url}/health").status_code


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the text exposition, None when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name and ",".join(sorted((match[2] or "").split(","))) == wanted:
            return float(match[3])
    return None


def test_health_is_503_while_the_sink_retries_and_200_again(streams_settings, start_connector):
    settings = streams_settings()
    sink = MemorySink(settings)
    sink.fail_next = [RetryableSinkError("db down")] * 3
    service = start_connector(
        settings, sink, retry=RetryConfig(initial_backoff_ms=400, max_backoff_ms=800)
    )
    wait_until(lambda: health(service) == 200)
    produce_upserts(settings, upserts(50, 10))
    answers: list[dict[str, object]] = []

    def unavailable() -> bool:
        answers.append(get(f"{service.url}/health").json())
        return answers[-1]["status"] != "ok"

    wait_until(unavailable, every=0.05)
    assert answers[-1]["status"] == "unavailable"
    assert answers[-1]["reason"] == "retrying"
    assert get(f"{service.url}/status").json()["state"] == "retrying"
    assert service.worker is not None
    wait_until(lambda: service.worker.totals.written == 50)
    assert health(service) == 200
    body = get(f"{service.url}/health").json()
    assert body["status"] == "ok"
    assert sorted(body["partitions"]) == list(range(settings.partitions))
    assert service.worker.totals.retries == 3


def test_health_says_failed_once_the_connector_stopped_on_an_error(
    streams_settings, start_connector
):
    settings = streams_settings()
    sink = MemorySink(settings)
    sink.fail_next = [PermissionError("credentials refused")]
    service = start_connector(settings, sink)
    produce_upserts(settings, upserts(5, 5))
    wait_until(lambda: not service.alive)
    answer = get(f"{service.url}/health")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "failed"
    assert answer.json()["error"] == "PermissionError"


def test_metrics_count_a_file_sink_run(streams_settings, start_connector, tmp_path):
    settings = streams_settings()

    class FlakyFileSink(FileSink):
        failures = 1

        def write(self, batch):
            if self.failures:
                self.failures -= 1
                raise RetryableSinkError("disk busy")
            return super().write(batch)

    sink = FlakyFileSink({"directory": str(tmp_path / "out")}, name="files", settings=settings)
    service = start_connector(settings, sink, max_records=1000, max_wait_ms=300)
    produce_upserts(settings, [*upserts(200, 20), b"not an upsert", b"nor this"])
    worker = service.worker
    assert worker is not None
    wait_until(lambda: worker.totals.written == 200 and worker.totals.rejected == 2)
    metrics = get(f"{service.url}/metrics").text
    name = service.config.name
    totals = worker.totals
    assert sample(metrics, "streams_connector_records_total", connector=name) == 202
    assert sample(metrics, "streams_connector_batches_total", connector=name) == totals.batches
    assert totals.batches >= 1
    assert sample(metrics, "streams_connector_retries_total", connector=name) == 1
    assert (
        sample(metrics, "streams_connector_rejected_total", connector=name, reason="bad_upsert")
        == 2
    )
    count = sample(metrics, "streams_connector_delivery_seconds_count", connector=name)
    assert count == totals.batches
    assert sample(metrics, "process_resident_memory_bytes") is not None
    assert "python_gc_collections_total" in metrics
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".jsonl")


def test_status_matches_the_interface_and_its_lag_drains_to_zero(streams_settings, start_connector):
    settings = streams_settings()
    sink = MemorySink(settings)
    sink.reject = lambda record: "invalid email" if record.customer_id == "c-3" else None
    sink.fail_next = [RetryableSinkError("once")]
    service = start_connector(settings, sink)
    produce_upserts(settings, upserts(300, 30))
    worker = service.worker
    assert worker is not None

    def drained() -> bool:
        partitions = get(f"{service.url}/status").json()["partitions"]
        return bool(partitions) and all(p["lag"] == 0 for p in partitions)

    wait_until(lambda: worker.totals.written + worker.totals.rejected == 300)
    wait_until(drained)
    status = get(f"{service.url}/status").json()
    assert set(status) == {
        "kind", "name", "url", "state", "started_at", "now", "totals", "dlq_by_reason",
        "partitions",
    }  # fmt: skip
    assert (status["kind"], status["name"], status["url"]) == (
        "connector",
        service.config.name,
        service.url,
    )
    assert status["state"] == "running"
    assert status["started_at"] <= status["now"]
    assert status["totals"] == {
        "batches": worker.totals.batches,
        "records": 300,
        "delivered": 290,
        "retries": 1,
        "rejected": 10,
    }
    assert status["dlq_by_reason"] == {"invalid email": 10}
    partitions = status["partitions"]
    assert sorted(p["partition"] for p in partitions) == list(range(settings.partitions))
    for partition in partitions:
        assert set(partition) == PARTITION_KEYS
        assert partition["topic"] == settings.upserts_topic
        assert partition["state"] == "owned"
        assert partition["position"] == partition["end"]
    assert sum(p["end"] for p in partitions) == 300
    metrics = get(f"{service.url}/metrics").text
    for partition in range(settings.partitions):
        labels = {"connector": service.config.name, "partition": str(partition)}
        assert sample(metrics, "streams_connector_lag", **labels) == 0


def test_lag_counts_what_is_not_delivered_while_the_sink_fails(streams_settings, start_connector):
    settings = streams_settings()
    sink = MemorySink(settings)
    sink.fail_next = [RetryableSinkError("down")] * 100_000  # until cleared below
    service = start_connector(
        settings, sink, retry=RetryConfig(initial_backoff_ms=50, max_backoff_ms=100)
    )
    produce_upserts(settings, upserts(80, 80))

    def lag() -> int:
        partitions = get(f"{service.url}/status").json()["partitions"]
        return sum(p["lag"] or 0 for p in partitions)

    wait_until(lambda: lag() == 80)
    assert get(f"{service.url}/status").json()["state"] == "retrying"
    sink.fail_next.clear()
    wait_until(lambda: lag() == 0)


def test_the_consumer_names_the_connector_url_in_its_group(streams_settings, start_connector):
    settings = streams_settings()
    service = start_connector(settings, MemorySink(settings))
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    group = ConnectorConfig(name=service.config.name, type="file").group_id()
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    endpoints = [endpoint_from_client_id(member.client_id) for member in description.members]
    assert endpoints == [("connector", service.url)]
    assert description.members[0].client_id.startswith(CONNECTOR_CLIENT_ID_PREFIX)


def test_metrics_and_status_need_a_token_when_configured(streams_settings, start_connector):
    settings = streams_settings(api_tokens="s3cret", metrics_require_token=True)
    service = start_connector(settings, MemorySink(settings))
    assert get(f"{service.url}/metrics").status_code == 401
    assert get(f"{service.url}/status").status_code == 401
    answer = get(f"{service.url}/metrics", Authorization="Bearer s3cret")
    assert answer.status_code == 200
    assert "streams_connector_records_total" in answer.text
    status = get(f"{service.url}/status", Authorization="Bearer s3cret")
    assert status.json()["kind"] == "connector"
    assert health(service) == 200, "health stays open"


def test_metrics_requiring_a_token_without_tokens_is_refused(streams_settings):
    settings = streams_settings(metrics_require_token=True)
    config = ConnectorConfig(name="refused", type="file")
    with pytest.raises(ConfigError, match="STREAMS_API_TOKENS"):
        ConnectorService(config, settings, MemorySink(settings)).start()


def test_a_port_in_use_is_refused_naming_the_setting(streams_settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = streams_settings(connector_web_port=taken.getsockname()[1])
        config = ConnectorConfig(name="port-taken", type="file")
        with pytest.raises(StreamsError, match="STREAMS_CONNECTOR_WEB_PORT"):
            ConnectorService(config, settings, MemorySink(settings)).start()


def test_streams_connect_serves_on_its_port_and_stops_on_sigterm(streams_settings, tmp_path):
    settings = streams_settings()
    config = tmp_path / "files.toml"
    config.write_text(
        f'name = "files"\ntype = "file"\n[sink]\ndirectory = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    port = free_port()
    command = [sys.executable, "-m", "streams.cli.main", "connect", "files"]
    log = (tmp_path / "connect.log").open("wb")
    process = subprocess.Popen(
        [*command, "--config", str(config), "--port", str(port)],
        env=settings_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def healthy() -> bool:
            try:
                return health_of(f"http://127.0.0.1:{port}") == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy)
        produce_upserts(settings, upserts(10, 10))
        url = f"http://127.0.0.1:{port}/status"
        wait_until(lambda: get(url).json()["totals"]["delivered"] == 10)
        assert get(url).json()["url"] == f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        log.close()
    assert code == 0, (tmp_path / "connect.log").read_text()
