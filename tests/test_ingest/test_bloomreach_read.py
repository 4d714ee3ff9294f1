"""Bloomreach's read routes over real HTTP and the real broker: a profile written through the
Bloomreach batch route, read back from the worker itself (its tokens; either engine) and from
``streams serve`` (Bloomreach keys, the owner found in the consumer group), in Bloomreach's
shapes.

- ``GET /api/customers/{id}`` and ``?include_timestamps=1``: the two formats of
  https://documentation.bloomreach.com/engagement/docs/customer-properties-synchronization
- ``POST /data/v2/projects/{project_token}/customers/export-one``:
  https://documentation.bloomreach.com/engagement/reference/export-a-customer-2
- an unknown customer: 404 "Customer does not exist",
  https://support.bloomreach.com/hc/en-us/articles/19231102135453-Most-common-API-requests-errors
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from streams.settings import Settings
from streams.testing import wait_until
from tests.conftest import SettingsFactory
from tests.test_ingest.http_server import running_service
from tests.test_ingest.test_bloomreach import (
    BASE,
    OTHER_PROJECT,
    PRIVATE,
    PROJECT,
    PUBLIC,
    SECTIONS,
    basic,
)

TOKEN = "worker-token-7f3a"
WORKER_AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXPORT = f"/data/v2/projects/{PROJECT}/customers/export-one"
NOT_FOUND = {"success": False, "errors": ["Customer does not exist"], "reason": "not_found"}


@dataclass
class Deployment:
    worker: httpx.Client  # the worker's own query API
    serve: httpx.Client  # streams serve with [bloomreach]


@pytest.fixture
def deployment(streams_settings: SettingsFactory, engine_worker) -> Iterator[Deployment]:
    """A worker of each engine, and ``streams serve`` finding it in the consumer group."""
    settings: Settings = streams_settings(
        api_tokens=TOKEN, bloomreach_id_kinds=["registered", "email_id"]
    )
    process = engine_worker.start(settings)
    with (
        running_service(settings, SECTIONS) as url,
        httpx.Client(base_url=process.url, timeout=30) as worker,
        httpx.Client(base_url=url, timeout=30) as serve,
    ):
        yield Deployment(worker, serve)


def read_back(deployment: Deployment, path: str) -> list[httpx.Response]:
    """``path`` from the worker (its token) and from serve (a private Bloomreach key)."""
    return [
        deployment.worker.get(path, headers=WORKER_AUTH),
        deployment.serve.get(path, headers=PRIVATE),
    ]


def write_mgalik(deployment: Deployment) -> None:
    # Reference 004's tracking example: update_timestamp applies to every property of the
    # command; a property sent with an unknown time (-1) reads back with last_update -1.
    commands: list[dict[str, Any]] = [
        {"name": "system/time"},
        {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": "mgalik"},
                "properties": {"first_name": "Marian"},
                "update_timestamp": 1570001049,
            },
        },
        {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": "mgalik"},
                "properties": {"last_name": "Galik"},
                "update_timestamp": -1,
            },
        },
    ]
    response = deployment.serve.post(f"{BASE}/batch", json={"commands": commands}, headers=PRIVATE)
    assert response.status_code == 200, response.text
    assert [r["success"] for r in response.json()["results"]] == [True, True, True]

    def both_properties() -> bool:
        answer = deployment.worker.get("/customers/mgalik", headers=WORKER_AUTH)
        return answer.status_code == 200 and len(answer.json()["properties"]) == 2

    wait_until(both_properties, timeout=60)


def test_a_profile_reads_back_in_both_formats_from_the_worker_and_serve(deployment) -> None:
    write_mgalik(deployment)
    for response in read_back(deployment, "/api/customers/mgalik"):
        assert response.status_code == 200, response.text
        assert response.json() == {"properties": {"first_name": "Marian", "last_name": "Galik"}}
    for response in read_back(deployment, "/api/customers/mgalik?include_timestamps=1"):
        assert response.status_code == 200, response.text
        assert response.json() == {
            "properties": {
                "first_name": {"value": "Marian", "last_update": 1570001049},
                "last_name": {"value": "Galik", "last_update": -1},
            }
        }
    for response in read_back(deployment, "/api/customers/mgalik?include_timestamps=0"):
        assert response.json()["properties"]["first_name"] == "Marian"


def test_export_one_names_the_customer_by_the_configured_id_kinds(deployment) -> None:
    write_mgalik(deployment)
    expected = {
        "success": True,
        "ids": {"registered": "mgalik"},
        "properties": {"first_name": "Marian", "last_name": "Galik"},
        "events": [],
    }
    body = {"customer_ids": {"cookie": "c-1", "registered": "mgalik"}}
    from_worker = deployment.worker.post(EXPORT, json=body, headers=WORKER_AUTH)
    from_serve = deployment.serve.post(EXPORT, json=body, headers=PRIVATE)
    for response in (from_worker, from_serve):
        assert (response.status_code, response.json()) == (200, expected)
    # The second id kind names a customer too (here an unknown one).
    by_email = {"customer_ids": {"email_id": "nobody@example.com"}}
    for response in (
        deployment.worker.post(EXPORT, json=by_email, headers=WORKER_AUTH),
        deployment.serve.post(EXPORT, json=by_email, headers=PRIVATE),
    ):
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_an_unknown_customer_is_bloomreachs_not_found(deployment) -> None:
    for response in read_back(deployment, "/api/customers/never-seen"):
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"ids": {}}', b'{"customer_ids": {"cookie": "c-1"}}'],
)
def test_a_bad_export_one_body_is_a_400(deployment, body: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    for response in (
        deployment.worker.post(EXPORT, content=body, headers={**headers, **WORKER_AUTH}),
        deployment.serve.post(EXPORT, content=body, headers={**headers, **PRIVATE}),
    ):
        assert response.status_code == 400
        answer = response.json()
        assert answer["success"] is False
        assert answer["errors"]


def test_reading_needs_the_right_credentials(deployment) -> None:
    body = {"customer_ids": {"registered": "mgalik"}}
    worker, serve = deployment.worker, deployment.serve
    refused = [
        (worker.get("/api/customers/mgalik"), 401),
        (worker.get("/api/customers/mgalik", headers={"Authorization": "Bearer nope"}), 401),
        (worker.post(EXPORT, json=body), 401),
        (serve.get("/api/customers/mgalik"), 401),
        (serve.get("/api/customers/mgalik", headers=basic("crm-backend", "nope")), 401),
        # A worker token is no Bloomreach key.
        (serve.get("/api/customers/mgalik", headers=WORKER_AUTH), 401),
        (serve.post(EXPORT, json=body), 401),
        # Public keys, carried by web pages and apps, never read profiles.
        (serve.get("/api/customers/mgalik", headers=PUBLIC), 403),
        (serve.post(EXPORT, json=body, headers=PUBLIC), 403),
        # The project token must be one of the key's.
        (
            serve.post(
                f"/data/v2/projects/{OTHER_PROJECT}/customers/export-one",
                json=body,
                headers=PRIVATE,
            ),
            403,
        ),
    ]
    for response, status in refused:
        assert response.status_code == status, response.text
        answer = response.json()
        assert answer["success"] is False
        assert answer["errors"]
        if status == 401:
            assert "WWW-Authenticate" in response.headers


def test_serve_without_a_worker_is_a_503_with_retry_after(
    streams_settings: SettingsFactory,
) -> None:
    settings = streams_settings()
    with (
        running_service(settings, SECTIONS) as url,
        httpx.Client(base_url=url, timeout=30) as serve,
    ):
        response = serve.get("/api/customers/mgalik", headers=PRIVATE)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["success"] is False
    assert response.json()["reason"] == "no_owner"


def test_the_openapi_document_has_the_read_routes(streams_settings: SettingsFactory) -> None:
    with (
        running_service(streams_settings(), SECTIONS) as url,
        httpx.Client(base_url=url) as serve,
    ):
        document = serve.get("/openapi.json").json()
    read = document["paths"]["/api/customers/{customer_id}"]["get"]
    export = document["paths"]["/data/v2/projects/{project_token}/customers/export-one"]["post"]
    failure = {"$ref": "#/components/schemas/BloomreachFailure"}
    for operation in (read, export):
        assert operation["security"] == [{"BloomreachBasic": []}]
        for status in ("401", "403", "404", "503"):
            assert operation["responses"][status]["content"]["application/json"]["schema"] == (
                failure
            )
    assert export["responses"]["400"]["content"]["application/json"]["schema"] == failure
