"""The query API serves only what it is handed (the worker's partitions and liveness, its
stores, a metrics renderer): it answers without a processor or a broker."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from streams.kafka.partitioner import partition_for
from streams.model import Profile, PropertyState
from streams.settings import Settings
from streams.state.codec import encode_profile
from streams.state.store import StateStores
from streams.web.app import ProfileApi
from streams.web.routing import OwnerDirectory
from tests.app_thread import AppThread

PARTITIONS = 4
STORED = "c-stored"
HOME = partition_for(STORED.encode(), PARTITIONS)
NEIGHBOUR = next(  # a customer of the same partition, never stored
    name
    for name in (f"c-{i}" for i in range(1000))
    if partition_for(name.encode(), PARTITIONS) == HOME
)
RENDERED = b"# rendered by the worker\nstreams_events_in_total 7.0\n"
STATUS = {"kind": "worker", "name": "g", "totals": {"events_in": 7}}
PROFILE = Profile(
    {
        "city": PropertyState("Brno", 1_700_000_000_500, "crm"),
        "age": PropertyState(41, 1_700_000_000_000, "web"),
        "erased": PropertyState(None, 1_700_000_000_000, "web"),
    }
)


@dataclass
class FakeWorker:
    owned_partitions: frozenset[int] = frozenset({HOME})
    restoring_partitions: frozenset[int] = frozenset()
    alive: bool = True


Serve = Callable[..., str]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """``serve(worker, **settings)`` starts a ProfileApi over stores holding ``PROFILE`` for
    ``STORED``; returns its URL."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    stores = StateStores(tmp_path)
    stores.open(HOME).write({STORED.encode(): encode_profile(PROFILE)}, None)
    threads: list[AppThread] = []

    def start(
        worker: FakeWorker, status: Callable[[], dict[str, Any]] = lambda: STATUS, **overrides: Any
    ) -> str:
        # Nothing listens on port 1: the closed directory knows no owner without asking.
        settings = Settings(
            kafka_bootstrap_servers="127.0.0.1:1", partitions=PARTITIONS, **overrides
        )
        directory = OwnerDirectory(settings)
        directory.close()
        api = ProfileApi(
            settings,
            worker,
            stores,
            lambda: RENDERED,
            directory,
            self_url="",
            status=status,
        )
        threads.append(AppThread(api.application(), "query-api").start())
        return threads[-1].url

    yield start
    for thread in threads:
        thread.stop()
    stores.close()


def test_an_owned_customer_is_answered_from_the_stores_handed_over(serve: Serve) -> None:
    url = serve(FakeWorker())
    status, _, body = get(f"{url}/customers/{STORED}")
    assert status == 200
    assert orjson.loads(body) == {"properties": {"age": 41, "city": "Brno"}}
    _, _, body = get(f"{url}/customers/{STORED}?include_timestamps=1")
    assert orjson.loads(body) == {
        "properties": {
            "age": {"value": 41, "last_update": 1_700_000_000},
            "city": {"value": "Brno", "last_update": 1_700_000_000.5},
        }
    }
    status, _, body = get(f"{url}/customers/{NEIGHBOUR}")
    assert status == 404
    assert orjson.loads(body) == {"error": "customer not found", "reason": "not_found"}


def test_a_customer_not_served_here_is_unavailable_with_the_reason(serve: Serve) -> None:
    restoring = serve(
        FakeWorker(owned_partitions=frozenset(), restoring_partitions=frozenset({HOME}))
    )
    status, headers, body = get(f"{restoring}/customers/{STORED}")
    assert (status, headers["Retry-After"]) == (503, "1")
    assert orjson.loads(body)["reason"] == "partition_moving"
    elsewhere = serve(FakeWorker(owned_partitions=frozenset()))
    status, _, body = get(f"{elsewhere}/customers/{STORED}")
    assert (status, orjson.loads(body)["reason"]) == (503, "no_owner")
    status, _, body = get(f"{elsewhere}/customers/{STORED}?routed=1")
    assert (status, orjson.loads(body)["reason"]) == (503, "partition_moving")


def test_health_reports_the_worker_handed_over(serve: Serve) -> None:
    worker = FakeWorker(owned_partitions=frozenset({3}), restoring_partitions=frozenset({1}))
    url = serve(worker)
    status, _, body = get(f"{url}/health")
    assert status == 200
    assert orjson.loads(body) == {"status": "ok", "worker": "", "partitions": [1, 3]}
    worker.alive = False
    status, _, body = get(f"{url}/health")
    assert (status, orjson.loads(body)["status"]) == (503, "failed")


def test_ready_only_while_the_worker_serves_its_partitions(serve: Serve) -> None:
    document = {**STATUS, "state": "starting"}
    url = serve(FakeWorker(), status=lambda: document)
    for state, code in [
        ("starting", 503),
        ("restoring", 503),
        ("running", 200),
        ("retrying", 200),
        ("stopping", 503),
    ]:
        document["state"] = state
        status, _, body = get(f"{url}/ready")
        assert (status, orjson.loads(body)) == (code, {"ready": code == 200, "state": state})
    # Open for probes even where /status needs a token.
    guarded = serve(
        FakeWorker(), status=lambda: document, api_tokens="s3cret", metrics_require_token=True
    )
    assert get(f"{guarded}/ready")[0] == 503


def test_metrics_are_what_the_worker_renders(serve: Serve) -> None:
    status, headers, body = get(f"{serve(FakeWorker())}/metrics")
    assert (status, body) == (200, RENDERED)
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    guarded = serve(FakeWorker(), api_tokens="s3cret", metrics_require_token=True)
    assert get(f"{guarded}/metrics")[0] == 401
    assert get(f"{guarded}/metrics", {"Authorization": "Bearer s3cret"})[2] == RENDERED


def test_status_is_what_the_worker_hands_over_and_guarded_like_metrics(serve: Serve) -> None:
    status, headers, body = get(f"{serve(FakeWorker())}/status")
    assert (status, orjson.loads(body)) == (200, STATUS)
    assert headers["Content-Type"] == "application/json"
    guarded = serve(FakeWorker(), api_tokens="s3cret", metrics_require_token=True)
    assert get(f"{guarded}/status")[0] == 401
    assert orjson.loads(get(f"{guarded}/status", {"X-API-Key": "s3cret"})[2]) == STATUS
    # The page holds no figures: open, and it may load nothing but ./status.
    status, headers, body = get(f"{guarded}/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert b'fetch("./status"' in body


def test_bloomreach_reads_translate_the_profile_answer(serve: Serve) -> None:
    url = serve(FakeWorker())
    status, _, body = get(f"{url}/api/customers/{STORED}?include_timestamps=1")
    assert status == 200
    assert orjson.loads(body)["properties"]["city"] == {
        "value": "Brno",
        "last_update": 1_700_000_000.5,
    }
    restoring = serve(
        FakeWorker(owned_partitions=frozenset(), restoring_partitions=frozenset({HOME}))
    )
    status, headers, body = get(f"{restoring}/api/customers/{STORED}")
    assert (status, headers["Retry-After"]) == (503, "1")
    assert orjson.loads(body) == {
        "success": False,
        "errors": ["partition is being restored on this worker"],
        "reason": "partition_moving",
    }
