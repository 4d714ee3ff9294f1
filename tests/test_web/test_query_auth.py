"""The query API's tokens over real HTTP, on each engine: two workers on loopback sharing the
partitions, the one asked forwarding to the owner with the caller's token; /health and /ready
open; a worker listening beyond loopback without tokens refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from streams.errors import ConfigError
from streams.kafka.partitioner import partition_for
from streams.settings import Settings
from streams.testing import produce_events, wait_until
from streams.web.auth import check_exposure, is_loopback

TOKENS = "token-one,token-two"
CUSTOMERS = [f"c-{i}" for i in range(24)]
UNAUTHORIZED = {"error": "missing or invalid credentials", "reason": "unauthorized"}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_two_workers_answer_any_customer_with_a_token_and_forward_it(
    streams_settings, engine_worker, tmp_path: Path
) -> None:
    settings = streams_settings(api_tokens=TOKENS)
    a, b = engine_worker.start_pair(settings, tmp_path)
    owned_by_b = set(b.partitions())
    events = [
        {
            "customer_id": c,
            "source": "crm",
            "update_timestamp": 1_700_000_000,
            "properties": {"n": c},
        }
        for c in CUSTOMERS
    ]
    produce_events(settings, events)
    on_b = {c for c in CUSTOMERS if partition_for(c.encode(), settings.partitions) in owned_by_b}
    assert 0 < len(on_b) < len(CUSTOMERS), "the customers must span both workers"

    def answers_everyone() -> bool:
        return all(get(f"{a.url}/customers/{c}", bearer("token-two"))[0] == 200 for c in CUSTOMERS)

    wait_until(answers_everyone, timeout=90)
    for customer in CUSTOMERS:
        for headers in (bearer("token-one"), {"X-API-Key": "token-two"}):
            status, answer_headers, body = get(f"{a.url}/customers/{customer}", headers)
            assert status == 200
            assert orjson.loads(body) == {"properties": {"n": customer}}
            # Served by b means b accepted the token a forwarded: b checks tokens too.
            assert answer_headers.get("X-Served-By") == (b.url if customer in on_b else None)

    for customer in (min(on_b), min(set(CUSTOMERS) - on_b)):  # forwarded and local alike
        for headers in ({}, bearer("wrong"), {"X-API-Key": "token-one-"}, bearer("")):
            status, answer_headers, body = get(f"{a.url}/customers/{customer}", headers)
            assert status == 401
            assert orjson.loads(body) == UNAUTHORIZED
            assert answer_headers["WWW-Authenticate"].startswith("Bearer realm=")
    # Asked directly, the owner refuses a caller without a token too.
    assert get(f"{b.url}/customers/{min(on_b)}")[0] == 401

    status, _, body = get(f"{a.url}/health")
    assert status == 200
    assert orjson.loads(body)["status"] == "ok"
    assert get(f"{a.url}/metrics")[0] == 200


def test_metrics_can_require_a_token(streams_settings, engine_worker) -> None:
    settings = streams_settings(api_tokens="s3cret", metrics_require_token=True)
    worker = engine_worker.start(settings)
    assert get(f"{worker.url}/metrics")[0] == 401
    status, _, body = get(f"{worker.url}/metrics", bearer("s3cret"))
    assert status == 200
    assert b"streams_events_in_total" in body
    assert get(f"{worker.url}/status")[0] == 401
    assert get(f"{worker.url}/status", bearer("s3cret"))[0] == 200
    assert get(f"{worker.url}/health")[0] == 200
    assert get(f"{worker.url}/ready")[0] == 200


def test_without_tokens_a_loopback_worker_stays_open(streams_settings, engine_worker) -> None:
    worker = engine_worker.start(streams_settings())
    status, _, body = get(f"{worker.url}/customers/nobody")
    assert status == 404
    assert orjson.loads(body) == {"error": "customer not found", "reason": "not_found"}
    status, headers, _ = get(f"{worker.url}/")  # the status page, reading /status
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/html")


def clean_env(**variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STREAMS_") and name != "KAFKA_BOOTSTRAP_SERVERS"
    }
    return {**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", **variables}


def test_a_worker_on_every_address_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "worker", "--data-dir", str(tmp_path)],
        env=clean_env(STREAMS_WEB_HOST="0.0.0.0"),
        cwd=tmp_path,  # no developer's .env
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "STREAMS_API_TOKENS" in result.stderr
    assert "STREAMS_ALLOW_UNAUTHENTICATED" in result.stderr
    assert "0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_exposure_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.setenv("STREAMS_API_TOKENS", "s3cret")
    from_env = Settings(web_host="0.0.0.0")
    assert [t.get_secret_value() for t in from_env.api_tokens] == ["s3cret"]
    assert "s3cret" not in repr(from_env)
    check_exposure(from_env)
    monkeypatch.delenv("STREAMS_API_TOKENS")
    check_exposure(Settings(web_host="0.0.0.0", allow_unauthenticated=True))
    check_exposure(Settings(web_host="127.0.0.1"))
    for host in ("0.0.0.0", "", "::", "10.1.2.3", "worker-1"):
        with pytest.raises(ConfigError, match="STREAMS_API_TOKENS"):
            check_exposure(Settings(web_host=host))
    with pytest.raises(ConfigError, match="STREAMS_METRICS_REQUIRE_TOKEN"):
        check_exposure(Settings(metrics_require_token=True))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.5", False),
        ("localhost.evil.example", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
