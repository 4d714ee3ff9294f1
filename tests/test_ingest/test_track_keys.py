"""Tracking keys are bound to a source over real HTTP into the real broker: a web key can
neither write as the CRM nor delete, and what it may not write never reaches Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from streams.errors import ConfigError
from streams.ingest.config import load_sections
from streams.ingest.http.feature import FeatureContext
from streams.ingest.http.track_routes import build_feature
from streams.ingest.producer import IngestProducer
from streams.settings import Settings
from streams.testing import read_topic
from tests.test_ingest.http_server import running_service

WEB_KEY = "web-key-secret"
CRM_KEY = "crm-key-secret"
NOW = 1_790_000_000
UNREACHABLE = Settings(kafka_bootstrap_servers="127.0.0.1:1")


def upsert(customer: str, source: str, **fields: Any) -> dict[str, Any]:
    event = {"customer_id": customer, "source": source, "update_timestamp": NOW}
    return {**event, "properties": {"city": "Brno"}, **fields}


def delete(customer: str, source: str) -> dict[str, Any]:
    return {"customer_id": customer, "source": source, "op": "delete", "update_timestamp": NOW}


def produced(settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(r.value or b"") for r in read_topic(settings, settings.input_topic)]


def post(client: httpx.Client, key: str, body: object) -> httpx.Response:
    return client.post("/track/batch", json=body, headers={"X-API-Key": key})


@pytest.fixture
def per_key(streams_settings) -> Iterator[tuple[Settings, httpx.Client]]:
    settings = streams_settings()
    tracking = {
        "keys": [
            {"id": "web", "secret": WEB_KEY, "source": "web"},
            {"id": "crm", "secret": CRM_KEY, "source": "crm", "ops": ["upsert", "delete"]},
        ]
    }
    with (
        running_service(settings, {"tracking": tracking}) as url,
        httpx.Client(base_url=url) as client,
    ):
        yield settings, client


def test_a_web_key_cannot_write_as_the_crm_nor_delete(per_key) -> None:
    settings, client = per_key
    response = post(
        client,
        WEB_KEY,
        [upsert("c-1", "web"), upsert("c-1", "crm"), delete("c-2", "web"), delete("c-2", "crm")],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r.get("reason") for r in body["results"]] == [
        None,
        "source_not_allowed",
        "op_not_allowed",
        "source_not_allowed",
    ]
    assert (body["accepted"], body["rejected"]) == (1, 3)
    assert [(e["customer_id"], e["source"]) for e in produced(settings)] == [("c-1", "web")]

    commands = {
        "commands": [{"name": "customers", "data": {"customer_ids": {"registered": "c-3"}}}]
    }
    assert post(client, WEB_KEY, commands).status_code == 200
    assert [e["source"] for e in produced(settings)] == ["web", "web"]


def test_a_request_with_only_refused_events_is_a_400_and_produces_nothing(per_key) -> None:
    settings, client = per_key
    response = post(client, WEB_KEY, delete("c-1", "crm"))
    assert response.status_code == 400
    assert response.json()["results"][0]["reason"] == "source_not_allowed"
    assert produced(settings) == []


def test_a_key_whose_ops_allow_delete_deletes_as_its_own_source(per_key) -> None:
    settings, client = per_key
    response = post(client, CRM_KEY, [upsert("c-1", "crm"), delete("c-1", "crm")])
    assert response.json()["accepted"] == 2, response.text
    refused = post(client, CRM_KEY, delete("c-1", "web")).json()["results"][0]["reason"]
    assert refused == "source_not_allowed"
    assert [(e["source"], e.get("op", "upsert")) for e in produced(settings)] == [
        ("crm", "upsert"),
        ("crm", "delete"),
    ]


def test_api_keys_of_the_first_form_are_bound_to_source_and_upsert_only(streams_settings) -> None:
    settings = streams_settings()
    tracking = {"api_keys": [WEB_KEY, "second-web-key"], "source": "web"}
    with (
        running_service(settings, {"tracking": tracking}) as url,
        httpx.Client(base_url=url) as client,
    ):
        for key in (WEB_KEY, "second-web-key"):
            answer = post(client, key, [upsert("c-1", "web"), upsert("c-1", "crm")]).json()
            assert [r.get("reason") for r in answer["results"]] == [None, "source_not_allowed"]
            answer = post(client, key, [delete("c-1", "web")]).json()
            assert answer["results"][0]["reason"] == "op_not_allowed"
        assert post(client, "not-a-key", upsert("c-1", "web")).status_code == 401
    assert [e["source"] for e in produced(settings)] == ["web", "web"]


def test_key_secrets_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACK_KEYS_TEST_SECRET", "from-the-environment")
    config = tmp_path / "serve.toml"
    config.write_text(
        '[[tracking.keys]]\nid = "web"\nsecret = "${TRACK_KEYS_TEST_SECRET}"\nsource = "web"\n',
        encoding="utf-8",
    )
    [key] = load_sections(config)["tracking"]["keys"]
    assert key["secret"] == "from-the-environment"


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        ({"anonymous": True, "keys": [{"id": "a", "secret": "s-1", "source": "web"}]}, "not both"),
        ({"keys": [{"id": "a", "secret": "", "source": "web"}]}, "empty secret"),
        ({"api_keys": ["s-1"], "keys": [{"id": "a", "secret": "s-1", "source": "web"}]}, "twice"),
        (
            {
                "keys": [
                    {"id": "a", "secret": "s-1", "source": "web"},
                    {"id": "a", "secret": "s-2", "source": "crm"},
                ]
            },
            "key ids used twice",
        ),
        ({"keys": [{"id": "a", "secret": "s-1", "source": "web", "ops": []}]}, "keys.0.ops"),
        ({"keys": [{"id": "a", "secret": "s-1", "source": "web", "ops": ["drop"]}]}, "keys.0.ops"),
        ({"keys": [{"id": "a", "secret": "s-1"}]}, "keys.0.source"),
    ],
)
def test_bad_key_configuration_names_the_problem_and_never_the_secret(
    tracking: dict[str, Any], message: str
) -> None:
    producer = IngestProducer(UNREACHABLE)
    try:
        with pytest.raises(ConfigError, match=message) as caught:
            build_feature(tracking, FeatureContext(UNREACHABLE, producer))
    finally:
        producer.close(timeout=0)
    assert "s-1" not in str(caught.value)
    assert str(caught.value).startswith("[tracking]")
