"""A Bloomreach Engagement client against ``streams serve`` over real HTTP and the real broker:
``/track/v2/projects/{project_token}/...`` with Bloomreach's requests, answers and credentials.

Requests and answers follow Bloomreach's public documentation, cited where each is used.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from streams.errors import ConfigError, TopicMismatchError
from streams.ingest.config import load_sections
from streams.ingest.http.access_log import PathOnlyAccessLogger
from streams.ingest.http.app import OPENAPI_KEY
from streams.ingest.http.bloomreach.routes import build_feature
from streams.ingest.http.feature import FeatureContext
from streams.ingest.producer import IngestProducer
from streams.ingest.serve import build_app
from streams.kafka.topics import create_topics, verify_topics
from streams.settings import Settings
from streams.testing import read_topic, read_upserts, wait_until
from tests.conftest import SettingsFactory
from tests.test_ingest.http_server import running_service

PROJECT = "c178a8c8-5cea-11e8-aa8c-ac1f6b0ba5e0"
OTHER_PROJECT = "0a1b2c3d-5cea-11e8-aa8c-ac1f6b0ba5e0"
PRIVATE_ID, PRIVATE_SECRET = "crm-backend", "crm-secret-1f6b0ba5e0"
PUBLIC_TOKEN = "web-token-0123456789abcdef"
KEYS: list[dict[str, Any]] = [
    {"id": PRIVATE_ID, "secret": PRIVATE_SECRET, "source": "crm", "projects": [PROJECT]},
    {
        "id": "web-sdk",
        "secret": PUBLIC_TOKEN,
        "source": "web",
        "public": True,
        "projects": [PROJECT, OTHER_PROJECT],
    },
]
SECTIONS: dict[str, Any] = {
    "tracking": {"api_keys": ["tracking-key"]},
    "bloomreach": {"keys": KEYS, "id_kinds": ["registered", "email_id"]},
    "server": {"max_body_bytes": 64 * 1024},
}
BASE = f"/track/v2/projects/{PROJECT}"
UNREACHABLE = Settings(kafka_bootstrap_servers="127.0.0.1:1")
EXAMPLES = Path(__file__).resolve().parents[2] / "ingest"


def basic(key_id: str, secret: str) -> dict[str, str]:
    """Private access: ``Authorization: Basic base64(key_id:secret)``.
    https://documentation.bloomreach.com/engagement/reference/technical-information"""
    credentials = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


PRIVATE = basic(PRIVATE_ID, PRIVATE_SECRET)
PUBLIC = {"Authorization": f"Token {PUBLIC_TOKEN}"}
NOT_UTF8 = base64.b64encode(b"\xff:x").decode()


@pytest.fixture
def events_settings(streams_settings: SettingsFactory) -> Settings:
    return streams_settings(customer_events_topic=f"profile-customer-events-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def client(events_settings: Settings) -> Iterator[httpx.Client]:
    with running_service(events_settings, SECTIONS) as url, httpx.Client(base_url=url) as http:
        yield http


def values(settings: Settings, topic: str) -> dict[bytes, list[dict[str, Any]]]:
    found: dict[bytes, list[dict[str, Any]]] = {}
    for record in read_topic(settings, topic):
        found.setdefault(record.key or b"", []).append(orjson.loads(record.value or b""))
    return found


def test_the_documented_batch_is_answered_per_command(events_settings, client) -> None:
    # The example request of https://documentation.bloomreach.com/engagement/reference/batch-commands-2
    # (system/time, customers with a command_id, customers/events); the answer's shape is that of
    # https://documentation.bloomreach.com/engagement/reference/tracking-api-error-messages
    commands = [
        {"name": "system/time"},
        {
            "name": "customers",
            "command_id": "abc",
            "data": {
                "customer_ids": {"registered": "marian.galik@exponea.com"},
                "properties": {"first_name": "Marian", "last_name": "Galik"},
            },
        },
        {
            "name": "customers/events",
            "command_id": "def",
            "data": {
                "customer_ids": {"registered": "marian.galik@exponea.com"},
                "event_type": "purchase",
                "timestamp": 1570001049,
                "properties": {"total_price": 10.5, "items": [{"id": "X1"}]},
            },
        },
        {"name": "customers", "data": {"customer_ids": {"cookie": "c-1"}}},
    ]
    before = time.time()
    response = client.post(f"{BASE}/batch", json={"commands": commands}, headers=PRIVATE)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["success"] is True
    assert before <= answer["start_time"] <= answer["end_time"] <= time.time()
    first, second, third, fourth = answer["results"]
    assert first["success"] is True
    assert before <= first["time"] <= time.time()
    assert second == {"success": True, "command_id": "abc"}
    assert third == {"success": True, "command_id": "def"}
    assert fourth["success"] is False
    assert fourth["errors"] == ["customer_ids has none of: registered, email_id"]

    key = b"marian.galik@exponea.com"
    [change] = values(events_settings, events_settings.input_topic)[key]
    assert change["source"] == "crm"  # the private key's source
    assert change["properties"] == {"first_name": "Marian", "last_name": "Galik"}
    [event] = values(events_settings, events_settings.customer_events_topic or "")[key]
    assert event == {
        "customer_id": "marian.galik@exponea.com",
        "customer_ids": {"registered": "marian.galik@exponea.com"},
        "source": "crm",
        "event_type": "purchase",
        "timestamp": 1570001049.0,
        "properties": {"total_price": 10.5, "items": [{"id": "X1"}]},
    }


def test_single_routes_answer_success_or_a_4xx_with_errors(events_settings, client) -> None:
    # https://documentation.bloomreach.com/engagement/reference/update-customer-properties-2 and
    # https://documentation.bloomreach.com/engagement/docs/add-event: {"success": true}; a
    # failure of a single-command route is a 4xx with {"success": false, "errors": [...]}
    # (https://documentation.bloomreach.com/engagement/reference/tracking-api-error-messages).
    customers = {
        "customer_ids": {"email_id": "e-7"},
        "properties": {"first_name": "Marian"},
        "update_timestamp": 1570001049,
    }
    response = client.post(f"{BASE}/customers", json=customers, headers=PUBLIC)
    assert (response.status_code, response.json()) == (200, {"success": True})
    event = {"customer_ids": {"email_id": "e-7"}, "event_type": "session_start"}
    response = client.post(f"{BASE}/customers/events", json=event, headers=PUBLIC)
    assert (response.status_code, response.json()) == (200, {"success": True})

    response = client.post(f"{BASE}/customers", json={"properties": {}}, headers=PUBLIC)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "errors": ["data.customer_ids must be an object"],
        "reason": "missing_customer_id",
    }
    response = client.post(
        f"{BASE}/customers/events", json={"customer_ids": {"registered": "r"}}, headers=PUBLIC
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "missing_event_type"

    # email_id names the customer when registered is absent (id_kinds, first present wins).
    [change] = values(events_settings, events_settings.input_topic)[b"e-7"]
    assert (change["source"], change["update_timestamp"]) == ("web", 1570001049)
    [stored] = values(events_settings, events_settings.customer_events_topic or "")[b"e-7"]
    assert stored["event_type"] == "session_start"
    assert stored["source"] == "web"


def test_system_time_is_the_server_time_in_seconds(client) -> None:
    # https://documentation.bloomreach.com/engagement/reference/system-time-2
    before = time.time()
    response = client.get(f"{BASE}/system/time", headers=PUBLIC)
    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True
    assert before <= answer["time"] <= time.time()


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        (PRIVATE, "", 200),
        (PUBLIC, "", 200),
        ({}, f"?access_token={PUBLIC_TOKEN}", 200),  # the public key's URL parameter
        ({}, "", 401),  # access key not provided
        (basic(PRIVATE_ID, "wrong"), "", 401),
        (basic("someone-else", PRIVATE_SECRET), "", 401),
        ({"Authorization": "Basic not-base64!"}, "", 401),
        ({"Authorization": f"Basic {base64.b64encode(b'no-colon').decode()}"}, "", 401),
        ({"Authorization": f"Basic {NOT_UTF8}"}, "", 401),
        (basic("web-sdk", PUBLIC_TOKEN), "", 401),  # a public key is no private key
        ({"Authorization": f"Token {PRIVATE_SECRET}"}, "", 401),  # nor the other way round
        ({}, f"?access_token={PRIVATE_SECRET}", 401),
        ({"Authorization": f"Bearer {PUBLIC_TOKEN}"}, "", 401),
        ({"X-API-Key": "tracking-key"}, "", 401),  # /track/batch's key is not a Bloomreach key
    ],
)
def test_private_keys_are_basic_public_keys_token(
    client, headers: dict[str, str], query: str, status: int
) -> None:
    # https://documentation.bloomreach.com/engagement/reference/technical-information
    response = client.get(f"{BASE}/system/time{query}", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["success"] is False
        assert response.json()["errors"]
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_the_project_must_be_one_of_the_keys(client) -> None:
    # A 403: "check if you are using the correct destination project"
    # (https://documentation.bloomreach.com/engagement/reference/tips-and-best-practices).
    other = f"/track/v2/projects/{OTHER_PROJECT}"
    assert client.get(f"{other}/system/time", headers=PUBLIC).status_code == 200
    response = client.post(
        f"{other}/customers", json={"customer_ids": {"registered": "r"}}, headers=PRIVATE
    )
    assert response.status_code == 403
    assert response.json() == {
        "success": False,
        "errors": ["key crm-backend may not write to this project: check the project token"],
        "reason": "project_not_allowed",
    }


@pytest.mark.parametrize(
    ("content", "content_type", "status", "reason"),
    [
        (b"{oops", "application/json", 400, "bad_json"),
        (b"[]", "application/json", 400, "bad_shape"),
        (b'{"commands": []}', "application/json", 400, "empty"),
        (b'{"commands": [], "extra": 1}', "application/json", 400, "bad_shape"),
        (b'{"commands": {}}', "application/json", 400, "bad_shape"),
        (orjson.dumps({"commands": [{"name": "system/time"}] * 51}), "application/json", 413,
         "too_many_commands"),
        (b"{}", "text/plain", 415, "unsupported_media_type"),
        (b" " * 70_000 + b"{}", "application/json", 413, "body_too_large"),
    ],
)  # fmt: skip
def test_a_refused_request_is_a_status_with_success_false(
    client, content: bytes, content_type: str, status: int, reason: str
) -> None:
    # Whole-request failures: 4xx with success false
    # (https://documentation.bloomreach.com/engagement/reference/tracking-api-error-messages);
    # at most 50 commands (https://documentation.bloomreach.com/engagement/reference/batch-commands-2).
    response = client.post(
        f"{BASE}/batch", content=content, headers={**PRIVATE, "Content-Type": content_type}
    )
    assert response.status_code == status
    answer = response.json()
    assert (answer["success"], answer["reason"]) == (False, reason)
    assert answer["errors"]
    assert all(type(error) is str for error in answer["errors"])
    if status == 400:
        metrics = client.get("/metrics").text
        assert (
            f'streams_ingest_commands_rejected_total{{feature="bloomreach",reason="{reason}"}} 1.0'
            in metrics
        )


def test_invalid_commands_fail_alone_with_their_errors(events_settings, client) -> None:
    ids = {"registered": "r-1"}
    commands = [
        {"name": "customers", "data": {"customer_ids": ids, "properties": {"a": 1}}},
        {"name": "purchase", "data": {}},
        {"name": "customers", "command_id": 7, "data": {"customer_ids": ids}},
        {"name": "customers", "data": {"customer_ids": ids, "properties": {"a": [1]}}},
        {"name": "customers/events", "data": {"customer_ids": ids, "event_type": ""}},
        {"name": "customers/events", "data": {"customer_ids": ids, "event_type": "x", "n": 1}},
        {"name": "customers/events", "data": {"customer_ids": ids, "event_type": "x",
                                              "timestamp": 4_000_000_000}},
        {"name": "customers/events", "data": {"customer_ids": ids, "event_type": "x",
                                              "properties": {"big": 2**70}}},
        {"name": "customers", "command_id": "last", "data": {"customer_ids": ids,
                                                             "update_timestamp": "x"}},
    ]  # fmt: skip
    response = client.post(f"{BASE}/batch", json={"commands": commands}, headers=PRIVATE)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {"success": True}
    assert [result.get("reason") for result in results[1:]] == [
        "unknown_command",
        "bad_command",
        "bad_type",
        "missing_event_type",
        "unknown_field",
        "future_timestamp",
        "integer_out_of_range",
        "bad_timestamp",
    ]
    assert results[-1]["command_id"] == "last"
    assert all(result["errors"] for result in results[1:])
    assert list(values(events_settings, events_settings.input_topic)) == [b"r-1"]
    assert read_topic(events_settings, events_settings.customer_events_topic or "") == []


def test_without_an_events_topic_customer_events_are_refused(streams_settings) -> None:
    settings = streams_settings()
    assert settings.customer_events_topic is None
    event = {"customer_ids": {"registered": "r-1"}, "event_type": "purchase"}
    commands = [
        {"name": "customers/events", "data": event},
        {"name": "customers", "data": {"customer_ids": {"registered": "r-1"}}},
    ]
    with running_service(settings, SECTIONS) as url, httpx.Client(base_url=url) as client:
        batch = client.post(f"{BASE}/batch", json={"commands": commands}, headers=PRIVATE).json()
        single = client.post(f"{BASE}/customers/events", json=event, headers=PRIVATE)
    assert batch["success"] is True
    assert batch["results"][0]["reason"] == "events_not_configured"
    assert "no events topic is configured" in batch["results"][0]["errors"][0]
    assert batch["results"][1] == {"success": True}
    assert (single.status_code, single.json()["reason"]) == (400, "events_not_configured")


def test_an_older_update_timestamp_after_a_newer_one_is_dropped_as_stale(
    events_settings, client, engine_worker
) -> None:
    # Customer properties synchronization: "if an update with older timestamp is present, we
    # won't overwrite the property"
    # (https://documentation.bloomreach.com/engagement/docs/customer-properties-synchronization).
    worker = engine_worker.start(events_settings)
    ids = {"registered": "sync-1"}
    newer = {"customer_ids": ids, "properties": {"city": "Brno"}, "update_timestamp": 1570001050}
    older = {"customer_ids": ids, "properties": {"city": "Praha"}, "update_timestamp": 1570001049}
    for data in (newer, older):
        response = client.post(f"{BASE}/customers", json=data, headers=PRIVATE)
        assert (response.status_code, response.json()) == (200, {"success": True})
    wait_until(lambda: worker.totals().events_in >= 2 and worker.totals().stale_events >= 1)

    upserts = read_upserts(events_settings)
    assert [(u.customer_id, u.properties["city"].value) for u in upserts] == [("sync-1", "Brno")]
    stale = values(events_settings, events_settings.stale_topic)[b"sync-1"]
    assert [(s["customer_id"], s["property"], s["reason"]) for s in stale] == [
        ("sync-1", "city", "older")
    ]


def test_unreachable_kafka_is_a_503_with_success_false() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", delivery_timeout_ms=60_000)
    with (
        running_service(settings, SECTIONS, send_timeout=1.0, close_timeout=0) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        data = {"customer_ids": {"registered": "r"}, "properties": {"a": 1}}
        response = client.post(f"{BASE}/customers", json=data, headers=PRIVATE)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    answer = response.json()
    assert (answer["success"], answer["reason"]) == (False, "broker_unavailable")
    assert "retry the whole request" in answer["errors"][0]


def test_the_openapi_document_has_the_bloomreach_routes(client) -> None:
    document = client.get("/openapi.json").json()
    validate(document)
    paths = {path: sorted(item) for path, item in document["paths"].items()}
    prefix = "/track/v2/projects/{project_token}"
    assert paths[f"{prefix}/batch"] == ["post"]
    assert paths[f"{prefix}/customers"] == ["post"]
    assert paths[f"{prefix}/customers/events"] == ["post"]
    assert paths[f"{prefix}/system/time"] == ["get"]
    batch = document["paths"][f"{prefix}/batch"]["post"]
    failure = {"$ref": "#/components/schemas/BloomreachFailure"}
    for status in ("400", "401", "403", "408", "413", "415", "503"):
        assert batch["responses"][status]["content"]["application/json"]["schema"] == failure
    schemes = document["components"]["securitySchemes"]
    assert schemes["BloomreachBasic"] == {
        "type": "http",
        "scheme": "basic",
        "description": "A private key: key_id:secret.",
    }
    customer_ids = document["components"]["schemas"]["BloomreachCustomers"]["properties"][
        "customer_ids"
    ]
    assert sorted(customer_ids["properties"]) == ["email_id", "registered"]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"keys": []}, "keys"),
        ({"keys": [{**KEYS[0], "projects": []}]}, "projects"),
        ({"keys": [{**KEYS[0], "projects": ["a/b"]}]}, "projects"),
        ({"keys": [KEYS[0], {**KEYS[1], "secret": PRIVATE_SECRET}]}, "configured twice"),
        ({"keys": [KEYS[0], {**KEYS[1], "id": PRIVATE_ID}]}, "key ids used twice"),
        ({"keys": KEYS, "max_commands": 0}, "max_commands"),
        ({"keys": [{**KEYS[0], "ops": ["merge"]}]}, "ops"),
    ],
)
def test_a_bad_section_is_a_config_error(section: dict[str, Any], problem: str) -> None:
    producer = IngestProducer(UNREACHABLE)
    try:
        with pytest.raises(ConfigError, match=problem):
            build_feature(section, FeatureContext(UNREACHABLE, producer))
    finally:
        producer.close(timeout=0)


def test_the_access_token_never_reaches_the_log(configured_log: io.StringIO) -> None:
    producer = IngestProducer(UNREACHABLE)  # system/time writes nothing
    app = build_app(UNREACHABLE, SECTIONS, producer)

    async def get(path: str) -> int:
        runner = web.AppRunner(app, access_log_class=PathOnlyAccessLogger)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                return (await http.get(path)).status_code
        finally:
            await runner.cleanup()

    try:
        assert asyncio.run(get(f"{BASE}/system/time?access_token={PUBLIC_TOKEN}")) == 200
    finally:
        producer.close(timeout=0)
    text = configured_log.getvalue()
    assert f"GET {BASE}/system/time status=200" in text
    assert PUBLIC_TOKEN not in text


def test_the_example_builds_the_bloomreach_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STREAMS_TRACK_API_KEY", "BLOOMREACH_CRM_SECRET", "BLOOMREACH_WEB_TOKEN"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    sections = load_sections(EXAMPLES / "serve-bloomreach.example.toml")
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
    assert ("/track/v2/projects/{project_token}/customers/events", "post") in routes


def test_topics_create_provisions_the_events_topic_once_it_is_set(streams_settings) -> None:
    settings = streams_settings()
    name = f"profile-customer-events-{uuid.uuid4().hex[:8]}"
    with_events = settings.model_copy(update={"customer_events_topic": name})
    with pytest.raises(TopicMismatchError, match=f"topic {name} is missing"):
        verify_topics(with_events)
    statuses = create_topics(with_events)
    assert [(s.name, s.created) for s in statuses if s.name == name] == [(name, True)]
    verify_topics(with_events)
