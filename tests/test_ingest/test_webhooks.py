"""Webhooks over real HTTP into real Kafka; notify against a real origin REST server."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openapi_spec_validator import validate

from streams.codecs.events import EventDecoder
from streams.errors import ConfigError
from streams.ingest.http.feature import FeatureContext
from streams.ingest.http.openapi import compose_document
from streams.ingest.producer import IngestProducer
from streams.ingest.webhooks.mapping import lookup, split_path
from streams.ingest.webhooks.routes import build_feature
from streams.settings import Settings
from streams.testing import read_topic
from tests.test_connect.crm_server import Fault
from tests.test_ingest.feature_server import running_feature
from tests.test_ingest.origin_server import OriginServer

TOKEN = "hook-token-1"
SIGNING = "hook-signing-secret"
PROPERTIES = [
    {"from_path": "contact.first_name", "to_property": "first_name"},
    {"from_path": "/contact/age", "to_property": "age", "type": "int"},
    {"from_path": "contact.newsletter", "to_property": "newsletter", "type": "bool"},
    {"from_path": "contact.emails.0", "to_property": "email"},
]


def crm_source(**changes: Any) -> dict[str, Any]:
    return {
        "tokens": [TOKEN],
        "signing_secret": SIGNING,
        "id_field": "contact.id",
        "timestamp_field": "changed_at",
        "source": "crm-hooks",
        "properties": PROPERTIES,
        **changes,
    }


def origin_source(origin: OriginServer, **fetch: Any) -> dict[str, Any]:
    return {
        "tokens": [TOKEN],
        "allow_query_token": True,
        "id_field": "data.customer_id",
        "properties": [
            {"from_path": "data.first_name", "to_property": "first_name"},
            {"from_path": "data.points", "to_property": "points", "type": "int"},
        ],
        "fetch": {
            "url": f"{origin.url}/api/contacts/{{id}}",
            "timeout_s": 2.0,
            "max_attempts": 4,
            "max_total_s": 10.0,
            "retry": {"initial_backoff_ms": 20, "max_backoff_ms": 100},
            **fetch,
        },
    }


def serve(
    settings: Settings, section: dict[str, Any], **producer_options: Any
) -> AbstractContextManager[str]:
    """The webhooks feature alone on a real port; yields its base URL."""
    producer = IngestProducer(settings, **producer_options)
    producer.start()
    context = FeatureContext(settings, producer)
    return running_feature(build_feature, section, context, "webhooks-under-test")


@pytest.fixture
def origin() -> Iterator[OriginServer]:
    server = OriginServer().start()
    yield server
    server.stop()


def events(settings: Settings) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Input records, checked by the processor's decoder, as (key, JSON)."""
    decoder = EventDecoder.from_settings(settings)
    out = []
    for record in read_topic(settings, settings.input_topic):
        decoder.decode(record.key, record.value, -1, 2**62)
        out.append((record.key, orjson.loads(record.value or b"")))
    return out


def contact(cid: str, **fields: Any) -> dict[str, Any]:
    base = {"id": cid, "first_name": "Marian", "age": "41", "newsletter": "yes"}
    return {"changed_at": "2026-11-20T08:00:00Z", "contact": {**base, **fields}}


# -- push --------------------------------------------------------------------------------


def test_pushed_profile_is_answered_after_kafka_has_the_event(streams_settings) -> None:
    settings = streams_settings()
    with serve(settings, {"crm": crm_source()}) as url:
        payload = contact("c-1", emails=["marian@example.com"])
        answer = httpx.post(f"{url}/webhooks/crm", json=payload, headers={"X-Webhook-Token": TOKEN})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "accepted", "events": 1}
        # Acknowledged means readable now, without waiting.
        [(key, event)] = events(settings)
    assert key == b"c-1"
    assert event["source"] == "crm-hooks"
    assert event["update_timestamp"] == 1795161600.0  # changed_at, not the receive time
    assert event["properties"] == {
        "first_name": "Marian",
        "age": 41,
        "newsletter": True,
        "email": "marian@example.com",
    }


def test_an_array_without_timestamps_is_stamped_with_the_receive_time(streams_settings) -> None:
    settings = streams_settings()
    source = crm_source(timestamp_field=None)
    with serve(settings, {"crm": source}) as url:
        before = time.time()
        answer = httpx.post(
            f"{url}/webhooks/crm",
            json=[contact("c-1"), contact("c-2", age=7)],
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        after = time.time()
    assert answer.json() == {"status": "accepted", "events": 2}
    got = dict(events(settings))
    assert set(got) == {b"c-1", b"c-2"}
    assert got[b"c-2"]["properties"]["age"] == 7
    for event in got.values():
        assert before - 0.001 <= event["update_timestamp"] <= after + 0.001


def test_hmac_signature_of_the_raw_body_authenticates(streams_settings) -> None:
    settings = streams_settings()
    body = orjson.dumps(contact("c-9"))
    signature = "sha256=" + hmac.new(SIGNING.encode(), body, hashlib.sha256).hexdigest()
    with serve(settings, {"crm": crm_source()}) as url:
        hook = f"{url}/webhooks/crm"
        json_type = {"Content-Type": "application/json"}
        signed = httpx.post(
            hook, content=body, headers={**json_type, "X-Webhook-Signature": signature}
        )
        tampered = httpx.post(
            hook, content=body.replace(b"c-9", b"c-8"),
            headers={**json_type, "X-Webhook-Signature": signature},
        )  # fmt: skip
        wrong_token = httpx.post(hook, content=body, headers={"X-Webhook-Token": "nope"})
        nothing = httpx.post(hook, content=body)
    assert signed.status_code == 200
    for refused in (tampered, wrong_token, nothing):
        assert refused.status_code == 401
        assert refused.json()["reason"] == "unauthorized"
    assert [key for key, _ in events(settings)] == [b"c-9"]


def test_a_sources_token_writes_only_that_sources_upserts(streams_settings) -> None:
    settings = streams_settings()
    other = crm_source(tokens=["shop-token"], signing_secret=None, source="shop")
    with serve(settings, {"crm": crm_source(), "shop": other}) as url:
        crm_token = {"X-Webhook-Token": TOKEN}
        elsewhere = httpx.post(f"{url}/webhooks/shop", json=contact("c-1"), headers=crm_token)
        assert elsewhere.status_code == 401
        # Fields naming another source or a delete are payload, never the event's own.
        payload = {**contact("c-2"), "source": "shop", "op": "delete"}
        answer = httpx.post(f"{url}/webhooks/crm", json=payload, headers=crm_token)
        assert answer.status_code == 200, answer.text
    [(key, event)] = events(settings)
    assert (key, event["source"], event.get("op", "upsert")) == (b"c-2", "crm-hooks", "upsert")


def test_bad_payloads_are_refused_with_their_reason_and_nothing_is_produced(
    streams_settings,
) -> None:
    settings = streams_settings()
    auth = {"X-Webhook-Token": TOKEN}
    with serve(settings, {"crm": crm_source()}) as url:
        hook = f"{url}/webhooks/crm"
        json_type = {**auth, "Content-Type": "application/json"}
        not_json = httpx.post(hook, content=b"{nope", headers=json_type)
        text = {**auth, "Content-Type": "text/plain"}
        as_text = httpx.post(hook, content=orjson.dumps(contact("c-0")), headers=text)
        no_id = httpx.post(
            hook, json={"changed_at": 1, "contact": {"first_name": "X"}}, headers=auth
        )
        bad_age = httpx.post(hook, json=[contact("c-1"), contact("c-2", age="old")], headers=auth)
        future = httpx.post(
            hook, json={**contact("c-3"), "changed_at": time.time() + 86_400}, headers=auth
        )
        unknown = httpx.post(f"{url}/webhooks/erp", json=contact("c-4"), headers=auth)
        nested = httpx.post(hook, json=contact("c-5", first_name={"a": 1}), headers=auth)
    assert (not_json.status_code, not_json.json()["reason"]) == (400, "bad_json")
    assert (as_text.status_code, as_text.json()["reason"]) == (415, "unsupported_media_type")
    assert (no_id.status_code, no_id.json()["reason"]) == (422, "missing_id")
    assert bad_age.status_code == 422
    assert bad_age.json() == {
        "error": "'/contact/age': cannot convert str to int",
        "reason": "bad_value",
        "index": 1,
    }
    assert (future.status_code, future.json()["reason"]) == (422, "future_timestamp")
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown_source")
    assert (nested.status_code, nested.json()["reason"]) == (422, "bad_type")
    assert read_topic(settings, settings.input_topic) == []  # all or nothing


def test_an_integer_out_of_range_is_refused_as_such_and_the_edges_are_kept(
    streams_settings,
) -> None:
    settings = streams_settings()
    auth = {"X-Webhook-Token": TOKEN, "Content-Type": "application/json"}
    changed = '"changed_at":"2026-11-20T08:00:00Z"'
    with serve(settings, {"crm": crm_source()}) as url:
        answers = {
            value: httpx.post(
                f"{url}/webhooks/crm",
                content=f'[{{{changed},"contact":{{"id":"c-1","age":{value}}}}}]',
                headers=auth,
            )
            for value in (-(2**63) - 1, 2**63, 2**64, 10**30, -(2**63), 2**63 - 1)
        }
    for value in (-(2**63) - 1, 2**63, 2**64, 10**30):
        assert answers[value].status_code == 422, value
        assert answers[value].json()["reason"] == "integer_out_of_range", value
        assert answers[value].json()["index"] == 0
    assert [event["properties"]["age"] for _, event in events(settings)] == [-(2**63), 2**63 - 1]


def test_kafka_down_answers_503_with_retry_after() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    with serve(settings, {"crm": crm_source()}, send_timeout=1.0) as url:
        answer = httpx.post(
            f"{url}/webhooks/crm",
            json=contact("c-1"),
            headers={"X-Webhook-Token": TOKEN},
            timeout=30,
        )
    assert answer.status_code == 503
    assert answer.json()["reason"] == "broker_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


# -- notify ------------------------------------------------------------------------------

AUTHS: dict[str, dict[str, Any]] = {
    "api_key": {"type": "api_key", "header": "Api-Key", "key": "origin-secret"},
    "basic": {"type": "basic", "username": "hub-client", "password": "origin-secret"},
    "bearer": {"type": "bearer", "token": "origin-secret"},
    "oauth2": {"type": "oauth2", "client_id": "hub-client", "client_secret": "origin-secret"},
}


@pytest.mark.parametrize("scheme", sorted(AUTHS))
def test_notify_fetches_the_profile_with_each_auth_scheme(streams_settings, origin, scheme) -> None:
    origin.auth = scheme
    auth = dict(AUTHS[scheme])
    if scheme == "oauth2":
        auth["token_url"] = f"{origin.url}/oauth/token"
    origin.seed("o-17", {"customer_id": "c-17", "first_name": "Lucie", "points": "12"})
    settings = streams_settings()
    with serve(settings, {"shop": origin_source(origin, auth=auth)}) as url:
        before = time.time()
        answer = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "o-17", "token": TOKEN})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "events": 1, "attempts": 1}
    [(key, event)] = events(settings)
    assert key == b"c-17"
    assert event["source"] == "shop"
    assert event["properties"] == {"first_name": "Lucie", "points": 12}
    assert before - 0.001 <= event["update_timestamp"] <= time.time()
    [request] = origin.requests()
    assert request.path == "/api/contacts/o-17"


def test_oauth2_token_is_refreshed_after_a_401(streams_settings, origin) -> None:
    origin.auth = "oauth2"
    origin.seed("o-1", {"customer_id": "c-1", "points": 1})
    auth = {**AUTHS["oauth2"], "token_url": f"{origin.url}/oauth/token"}
    settings = streams_settings()
    with serve(settings, {"shop": origin_source(origin, auth=auth)}) as url:
        notify = f"{url}/webhooks/shop/notify?id=o-1"
        first = httpx.post(notify, headers={"X-Webhook-Token": TOKEN})
        origin.expire_tokens()  # the origin revokes: the cached token now gets 401
        second = httpx.post(notify, headers={"X-Webhook-Token": TOKEN})
    assert (first.status_code, second.status_code) == (200, 200)
    assert origin.token_requests == 2
    assert len(events(settings)) == 2


def test_notify_retries_429_and_500_then_succeeds(streams_settings, origin) -> None:
    origin.seed("o-2", {"customer_id": "c-2", "first_name": "Ana"})
    origin.inject(Fault(status=429, retry_after="0.3"))
    origin.inject(Fault(status=500))
    settings = streams_settings()
    with serve(settings, {"shop": origin_source(origin)}) as url:
        started = time.monotonic()
        answer = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "o-2", "token": TOKEN})
        waited = time.monotonic() - started
    assert answer.json() == {"status": "accepted", "events": 1, "attempts": 3}
    assert waited >= 0.3, "Retry-After was honoured"
    assert [key for key, _ in events(settings)] == [b"c-2"]


def dead_letters(settings: Settings) -> list[Any]:
    return read_topic(settings, settings.dlq_topic)


def test_repeated_500_dead_letters_the_notification(streams_settings, origin) -> None:
    origin.seed("o-3", {"customer_id": "c-3"})
    origin.inject(Fault(status=503), times=10)
    settings = streams_settings()
    with serve(settings, {"shop": origin_source(origin, max_attempts=3)}) as url:
        answer = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "o-3", "token": TOKEN})
    assert answer.status_code == 202
    assert answer.json() == {
        "status": "dead_lettered",
        "reason": "origin_error",
        "detail": "HTTP 503; gave up after 3 attempt(s)",
        "attempts": 3,
    }
    assert len(origin.requests()) == 3
    assert read_topic(settings, settings.input_topic) == []
    [letter] = dead_letters(settings)
    assert letter.key == b"o-3"
    notification = orjson.loads(letter.value or b"")
    assert (notification["webhook"], notification["id"], notification["method"]) == (
        "shop",
        "o-3",
        "GET",
    )
    assert letter.headers["dlq.reason"] == b"origin_error"
    assert letter.headers["dlq.origin"] == b"webhooks/shop/notify"
    assert letter.headers["dlq.attempts"] == b"3"
    assert int(letter.headers["dlq.timestamp"]) == notification["received_at"]


def test_unknown_id_is_dead_lettered_at_once(streams_settings, origin) -> None:
    settings = streams_settings()
    with serve(settings, {"shop": origin_source(origin)}) as url:
        answer = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "gone", "token": TOKEN})
    assert answer.status_code == 202
    assert (answer.json()["reason"], answer.json()["attempts"]) == ("origin_not_found", 1)
    assert len(origin.requests()) == 1, "a 404 is not retried"
    assert dead_letters(settings)[0].headers["dlq.detail"] == b"HTTP 404"


def test_a_profile_that_does_not_map_is_dead_lettered_with_the_origin_bytes(
    streams_settings, origin
) -> None:
    origin.seed("o-4", {"customer_id": "c-4", "points": "many"})
    settings = streams_settings()
    with serve(settings, {"shop": origin_source(origin)}) as url:
        answer = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "o-4", "token": TOKEN})
    assert (answer.status_code, answer.json()["reason"]) == (202, "bad_value")
    [letter] = dead_letters(settings)
    assert orjson.loads(letter.value or b"")["data"]["points"] == "many"


def test_slow_origin_times_out_within_the_bounds(streams_settings, origin) -> None:
    origin.seed("o-5", {"customer_id": "c-5"})
    origin.inject(Fault(delay_s=3.0), times=5)
    settings = streams_settings()
    section = {"shop": origin_source(origin, timeout_s=0.3, max_attempts=2)}
    with serve(settings, section) as url:
        started = time.monotonic()
        answer = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "o-5", "token": TOKEN})
        elapsed = time.monotonic() - started
    assert (answer.status_code, answer.json()["reason"]) == (202, "origin_timeout")
    assert elapsed < 2.0


def test_origin_fetches_are_bounded_per_source(streams_settings, origin) -> None:
    for n in range(6):
        origin.seed(f"o-{n}", {"customer_id": f"c-{n}"})
    origin.inject(Fault(delay_s=0.2), times=6)
    settings = streams_settings()
    answers: list[int] = []
    with serve(settings, {"shop": origin_source(origin, max_concurrency=2)}) as url:

        def notify(n: int) -> None:
            reply = httpx.get(
                f"{url}/webhooks/shop/notify", params={"id": f"o-{n}", "token": TOKEN}
            )
            answers.append(reply.status_code)

        threads = [threading.Thread(target=notify, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [200] * 6
    assert origin.max_in_flight == 2


def test_notify_refusals(streams_settings, origin) -> None:
    settings = streams_settings()
    section = {"shop": origin_source(origin), "crm": crm_source()}
    with serve(settings, section) as url:
        no_token = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "o-1"})
        no_id = httpx.get(f"{url}/webhooks/shop/notify", params={"token": TOKEN})
        push_only = httpx.get(f"{url}/webhooks/crm/notify", params={"id": "x", "token": TOKEN})
    assert no_token.status_code == 401
    assert (no_id.status_code, no_id.json()["reason"]) == (400, "missing_id")
    assert (push_only.status_code, push_only.json()["reason"]) == (404, "no_fetch")
    assert origin.requests() == []


def test_dead_letter_write_failing_answers_503(origin) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    section = {"dlq_timeout_s": 1.0, "shop": origin_source(origin)}
    with serve(settings, section, send_timeout=1.0) as url:
        answer = httpx.get(
            f"{url}/webhooks/shop/notify", params={"id": "gone", "token": TOKEN}, timeout=30
        )
    assert answer.status_code == 503
    assert "Retry-After" in answer.headers


# -- configuration, OpenAPI, paths -------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"crm": {**crm_source(), "tokens": [], "signing_secret": None}}, "never open"),
        ({"crm": {**crm_source(), "colour": "red"}}, "crm]: colour: Extra inputs"),
        ({"crm": crm_source(fetch={"url": "https://origin/api/contacts"})}, "fetch.url"),
        ({"crm": crm_source(properties=PROPERTIES * 2)}, "written twice"),
        ({"bad name": crm_source()}, "source name"),
        ({"dlq_timeout_s": 1}, "no source"),
    ],
)
def test_bad_configuration_is_refused_precisely(section, message) -> None:
    context = FeatureContext(Settings(), IngestProducer(Settings()))
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as caught:
        build_feature(section, context)
    assert SIGNING not in str(caught.value)


def test_openapi_fragment_is_valid() -> None:
    context = FeatureContext(Settings(), IngestProducer(Settings()))
    pushed_only = crm_source(fetch=None)
    fetching = crm_source(fetch={"url": "http://127.0.0.1:1/api/{id}"})
    feature = build_feature({"crm": pushed_only, "erp": fetching}, context)
    document = compose_document([feature], {})
    validate(document)
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert documented == {
        ("POST", "/webhooks/crm"),
        ("POST", "/webhooks/erp"),
        ("GET", "/webhooks/erp/notify"),
        ("POST", "/webhooks/erp/notify"),
    }
    routes = {(r.method, r.path) for r in feature.routes}  # type: ignore[attr-defined]
    assert {(m, re.sub(r"/webhooks/[^/]+", "/webhooks/{source}", p)) for m, p in documented} == (
        routes
    )
    push = document["paths"]["/webhooks/crm"]["post"]
    assert {"401", "408", "413", "415", "503"} <= set(push["responses"])
    assert push["parameters"] == []
    profile = push["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert profile["required"] == ["contact", "changed_at"]
    contact = profile["properties"]["contact"]
    assert contact["required"] == ["id"]
    assert contact["properties"]["age"] == {"anyOf": [INT64, {"type": "null"}]}
    assert contact["properties"]["emails"]["properties"]["0"]["type"] == [
        "string", "number", "boolean", "null"
    ]  # fmt: skip


INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}


_KEYS = st.text(min_size=1, max_size=8)


@given(st.lists(_KEYS, min_size=1, max_size=4), st.integers())
def test_json_pointer_escapes_reach_any_key(keys: list[str], leaf: int) -> None:
    document: Any = leaf
    for key in reversed(keys):
        document = {key: document}
    pointer = "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)
    assert lookup(document, split_path(pointer)) == leaf


def test_an_unmappable_answer_over_the_producers_limit_is_dead_lettered_cut_to_fit(
    streams_settings, origin
) -> None:
    """An answer under the fetch cap can still make a dead letter over the producer's limit
    (here lowered to 200 kB): it keeps a prefix."""
    origin.seed("o-9", {"customer_id": "c-9", "points": "many", "blob": "b" * 300_000})
    settings = streams_settings(max_message_bytes=200_000, max_state_bytes=100_000)
    with serve(settings, {"shop": origin_source(origin)}) as url:
        answer = httpx.get(
            f"{url}/webhooks/shop/notify", params={"id": "o-9", "token": TOKEN}, timeout=30
        )
    assert (answer.status_code, answer.json()["reason"]) == (202, "bad_value")
    [letter] = dead_letters(settings)
    assert letter.headers["dlq.reason"] == b"bad_value"
    assert letter.headers["dlq.truncated"] == b"true"
    assert int(letter.headers["dlq.original_bytes"]) > 300_000
    assert (letter.value or b"").startswith(b'{"data"')
    assert 190_000 < len(letter.value or b"") < 200_000
