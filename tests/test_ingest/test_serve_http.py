"""The ingestion service over real HTTP against the real broker: POST /track/batch & co."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openapi_spec_validator import validate

from benchmarks.serve_process import serve_process
from streams.codecs.events import EventDecoder
from streams.errors import ConfigError
from streams.ingest.config import load_sections
from streams.ingest.http.app import OPENAPI_KEY
from streams.ingest.http.feature import FeatureContext
from streams.ingest.producer import IngestProducer
from streams.ingest.serve import build_app, build_features, load_factory
from streams.kafka.partitioner import partition_for
from streams.settings import Settings
from streams.testing import read_topic, wait_until
from tests.test_ingest.http_server import running_service

KEY = "k-1-secret"
AUTH = {"X-API-Key": KEY}
SECTIONS: dict[str, Any] = {"tracking": {"api_keys": [KEY], "max_commands": 50}}
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "ingest" / "serve.example.toml"
UNREACHABLE = Settings(kafka_bootstrap_servers="127.0.0.1:1")


def customers(customer: str, properties: dict[str, Any], ts: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"customer_ids": {"registered": customer}, "properties": properties}
    if ts is not None:
        data["update_timestamp"] = ts
    return {"name": "customers", "data": data}


@pytest.fixture
def service(streams_settings) -> Iterator[tuple[Settings, httpx.Client]]:
    settings = streams_settings()
    sections = {**SECTIONS, "server": {"max_body_bytes": 64 * 1024}}
    with running_service(settings, sections) as url, httpx.Client(base_url=url) as client:
        yield settings, client


def test_accepted_commands_land_on_the_input_topic_keyed_by_customer(service) -> None:
    settings, client = service
    commands = [
        {"name": "system/time"},
        customers("mgalik", {"first_name": "Marian"}, 1570001049),
        customers("c-2", {"city": "Oslo"}),
        {"name": "customers", "data": {"customer_ids": {"cookie": "x"}}},
        customers("c-3", {"bad": [1, 2]}),
        customers("c-4", {"city": None}, 1570001050),
    ]
    before_ms = time.time_ns() // 1_000_000
    response = client.post("/track/batch", json={"commands": commands}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["success"] for r in body["results"]] == [True, True, True, False, False, True]
    assert [r.get("reason") for r in body["results"]][3:5] == ["missing_customer_id", "bad_type"]
    assert (body["accepted"], body["rejected"]) == (4, 2)
    assert body["results"][0]["time"] >= before_ms / 1000

    records = read_topic(settings, settings.input_topic)
    by_key = {record.key or b"": record for record in records}
    assert sorted(by_key) == [b"c-2", b"c-4", b"mgalik"]
    decoder = EventDecoder.from_settings(settings)
    for key, record in by_key.items():
        assert record.partition == partition_for(key, settings.partitions)
        decoder.decode(record.key, record.value, -1, time.time_ns() // 1_000_000)
    assert orjson.loads(by_key[b"mgalik"].value or b"") == {
        "customer_id": "mgalik",
        "source": "track",
        "update_timestamp": 1570001049,
        "properties": {"first_name": "Marian"},
    }
    stamped = orjson.loads(by_key[b"c-2"].value or b"")["update_timestamp"]
    assert before_ms / 1000 <= stamped <= time.time()

    metrics = client.get("/metrics").text
    assert 'streams_ingest_commands_accepted_total{feature="tracking"} 4.0' in metrics
    assert 'reason="bad_type"' in metrics


def test_native_events_one_or_an_array(service) -> None:
    settings, client = service
    one = {"customer_id": "n-1", "source": "track", "properties": {"a": 1}}
    assert client.post("/track/batch", json=one, headers=AUTH).json()["accepted"] == 1
    response = client.post("/track/batch", json=[one, {"customer_id": "n-2"}], headers=AUTH).json()
    assert response["results"][1]["reason"] == "missing_source"
    keys = [record.key for record in read_topic(settings, settings.input_topic)]
    assert keys == [b"n-1", b"n-1"]


def test_every_command_invalid_is_a_400_with_the_per_command_body(service) -> None:
    settings, client = service
    response = client.post(
        "/track/batch",
        json={"commands": [{"name": "purchase"}, customers("c", {}, 1_570_001_049_000)]},
        headers=AUTH,
    )
    assert response.status_code == 400
    body = response.json()
    assert [r["reason"] for r in body["results"]] == ["unknown_command", "bad_timestamp"]
    assert "milliseconds?" in body["results"][1]["error"]
    assert (body["accepted"], body["rejected"]) == (0, 2)
    assert read_topic(settings, settings.input_topic) == []


@pytest.mark.parametrize(
    ("headers", "content", "status", "reason"),
    [
        ({}, b'{"commands": []}', 401, "unauthorized"),
        ({"X-API-Key": "wrong"}, b'{"commands": []}', 401, "unauthorized"),
        ({**AUTH, "Content-Type": "text/plain"}, b"{}", 415, "unsupported_media_type"),
        ({**AUTH, "Content-Type": "application/json"}, b"{oops", 400, "bad_json"),
        ({**AUTH, "Content-Type": "application/json"}, b'{"commands": []}', 400, "empty"),
        ({**AUTH, "Content-Type": "application/json"}, b"[" + b"1," * 60 + b"1]", 413, None),
        ({**AUTH, "Content-Type": "application/json"}, b" " * 70_000 + b"{}", 413, None),
    ],
)
def test_request_errors_have_a_status_and_a_precise_reason(
    service, headers: dict[str, str], content: bytes, status: int, reason: str | None
) -> None:
    _, client = service
    response = client.post("/track/batch", content=content, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["error"]
    if reason == "unauthorized":
        assert body == {"error": "missing or invalid credentials", "reason": "unauthorized"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    elif reason is not None:
        assert body["reason"] == reason
    else:
        assert body["reason"] in ("too_many_commands", "body_too_large")


def test_a_chunked_body_over_the_limit_is_a_413(service) -> None:
    _, client = service
    chunks = iter([b'{"commands": [', b" " * 70_000, b"]}"])  # no Content-Length: chunked
    response = client.post(
        "/track/batch", content=chunks, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "the request body exceeds 65536 bytes",
        "reason": "body_too_large",
    }


def test_bearer_token_is_accepted(service) -> None:
    _, client = service
    response = client.post(
        "/track/batch",
        json=[{"customer_id": "b-1", "source": "track"}],
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200


def test_unknown_routes_and_methods_answer_json(service) -> None:
    _, client = service
    missing = client.get("/nope")
    assert (missing.status_code, missing.json()["reason"]) == (404, "not_found")
    wrong = client.get("/track/batch")
    assert (wrong.status_code, wrong.json()["reason"]) == (405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]
    assert client.get("/health").json() == {"status": "ok", "kafka": "reachable"}


def test_unreachable_kafka_is_a_503_with_retry_after() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", delivery_timeout_ms=60_000)
    sections = {"tracking": {"anonymous": True}}
    with (
        running_service(settings, sections, send_timeout=1.0, close_timeout=0) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        response = client.post("/track/batch", json={"customer_id": "c", "source": "track"})
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["reason"] == "broker_unavailable"
        assert "retry the whole request" in response.json()["error"]
        wait_until(lambda: client.get("/health").status_code == 503, timeout=20)


def test_openapi_document_is_valid_and_documents_every_route(
    service, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = service
    served = client.get("/openapi.json").json()
    validate(served)
    monkeypatch.setenv("STREAMS_TRACK_API_KEY", "example")
    sections = load_sections(EXAMPLE)  # every feature the example configures
    producer = IngestProducer(UNREACHABLE)
    try:
        app = build_app(UNREACHABLE, sections, producer)
    finally:
        producer.close(timeout=0)
    document = orjson.loads(app[OPENAPI_KEY])
    validate(document)
    routes = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    assert ("/track/batch", "post") in routes


def test_a_configured_feature_without_its_module_is_a_config_error() -> None:
    factories = {"surveys": "streams.ingest.http.no_such_module:build_feature"}
    with pytest.raises(ConfigError, match="no_such_module"):
        load_factory("surveys", factories)
    producer = IngestProducer(UNREACHABLE)
    context = FeatureContext(UNREACHABLE, producer)
    try:
        with pytest.raises(ConfigError, match=r"\[surveys\]"):
            build_features({"tracking": {"anonymous": True}, "surveys": {}}, context, factories)
        with pytest.raises(ConfigError, match="api_keys is required"):
            build_features({"tracking": {}}, context, factories)
        with pytest.raises(ConfigError, match=r"nothing to serve: .*\[tracking\], \[surveys\]"):
            build_features({"server": {"port": 0}}, context, factories)
        anonymous = {"tracking": {"anonymous": True}}
        assert [f.name for f in build_features(anonymous, context, factories)] == ["tracking"]
    finally:
        producer.close(timeout=0)


def test_streams_serve_starts_answers_and_stops_on_sigterm(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    config = tmp_path / "serve.toml"
    config.write_text('[tracking]\napi_keys = ["${SERVE_TEST_KEY}"]\n', encoding="utf-8")
    options = ("--host", "127.0.0.1")
    with serve_process(settings, config, *options, env={"SERVE_TEST_KEY": KEY}) as (process, url):
        with httpx.Client(base_url=url) as client:
            assert client.get("/health").json()["status"] == "ok"
            response = client.post("/track/batch", json=[customers("s-1", {})], headers=AUTH)
            assert response.status_code == 400  # a native array: commands are not events
            response = client.post(
                "/track/batch", json={"commands": [customers("s-1", {"a": 1})]}, headers=AUTH
            )
            assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert [r.key for r in read_topic(settings, settings.input_topic)] == [b"s-1"]


def test_request_latency_is_labelled_by_route_template_never_by_path(streams_settings) -> None:
    settings = streams_settings()
    properties = [{"from_path": "name", "to_property": "name"}]
    webhook = {"tokens": ["hook-1"], "id_field": "id", "properties": properties}
    sections = {**SECTIONS, "webhooks": {"crm": webhook}}
    with running_service(settings, sections) as url, httpx.Client(base_url=url) as client:
        assert client.post("/webhooks/customer-8f3a2c", json={}).status_code == 404
        command = {"commands": [{"name": "system/time"}]}
        assert client.post("/track/batch", json=command, headers=AUTH).status_code == 200
        assert client.request("PROPFIND", "/track/batch").status_code == 405
        metrics = client.get("/metrics").text
    series = {
        line.split(" ")[0]
        for line in metrics.splitlines()
        if line.startswith("streams_http_request_seconds_count")
    }
    assert series == {
        'streams_http_request_seconds_count{method="POST",route="/webhooks/{source}",status="404"}',
        'streams_http_request_seconds_count{method="POST",route="/track/batch",status="200"}',
        'streams_http_request_seconds_count{method="OTHER",route="unmatched",status="405"}',
    }
    assert "customer-8f3a2c" not in metrics
    assert 'streams_http_request_seconds_bucket{le="0.005",method="POST"' in metrics
    assert "process_cpu_seconds_total" in metrics
