"""Request bodies over raw sockets: authenticated before they are read, read within a time
limit, and bounded in bytes held across requests; origin answers capped (notify)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from benchmarks.serve_process import serve_process
from streams.ingest.http.app import LINGER_SECONDS
from streams.ingest.webhooks.fetch import is_safe_id
from streams.testing import read_topic
from tests.test_ingest.http_server import running_service
from tests.test_ingest.origin_server import OriginServer

KEY = "bodies-key"
TOKEN = "bodies-hook-token"
HOOK_AUTH = {"X-Webhook-Token": TOKEN}
TRACKING: dict[str, Any] = {"tracking": {"api_keys": [KEY]}}
WEBHOOK: dict[str, Any] = {
    "tokens": [TOKEN],
    "id_field": "id",
    "properties": [{"from_path": "name", "to_property": "name"}],
}
AUTH = {"X-API-Key": KEY, "Content-Type": "application/json"}
MIB = 1024 * 1024
CHUNK = 64 * 1024
SOCKET_TIMEOUT_S = 30.0
# 40 uploads of 8 MiB: buffering them took 320 MiB; unread, each costs aiohttp's read buffer.
MAX_RSS_GROWTH = 32 * MIB


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), SOCKET_TIMEOUT_S)
    sock.settimeout(SOCKET_TIMEOUT_S)
    return sock


def head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def answer(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body of one response (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = sock.recv(65536)
        assert received, f"connection closed without an answer: {data!r}"
        data += received
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = header_block.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        received = sock.recv(65536)
        assert received, "connection closed inside the answer"
        body += received
    return int(status_line.split()[1]), headers, orjson.loads(body) if body else None


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within ``seconds`` (we send nothing more)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


# -- authentication before the body ---------------------------------------------------------


def webhook_config(tmp_path: Path) -> Path:
    config = tmp_path / "serve.toml"
    config.write_text(
        f"""
[server]
max_body_bytes = {16 * MIB}
max_in_flight_bytes = {512 * MIB}

[tracking]
api_keys = ["{KEY}"]

[webhooks.crm]
tokens = ["{TOKEN}"]
max_body_bytes = {16 * MIB}
id_field = "id"
properties = [{{ from_path = "name", to_property = "name" }}]
""",
        encoding="utf-8",
    )
    return config


UPLOAD_HEADERS = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}


def send_chunks(sock: socket.socket, total: int) -> None:
    """Send ``total`` bytes of chunks, until the server closes the connection."""
    sent = 0
    try:
        while sent < total:
            sock.sendall(chunk(b" " * CHUNK))
            sent += CHUNK
        sock.sendall(b"0\r\n\r\n")
    except OSError:  # closed by the server: what a refusal should do
        pass


def unauthenticated_upload(url: str, total: int) -> tuple[int, Any]:
    """POST ``total`` bytes chunked without a token, reading the answer while sending."""
    with connect(url) as sock:
        sock.sendall(head("/webhooks/crm", UPLOAD_HEADERS))
        sender = threading.Thread(target=send_chunks, args=(sock, total))
        sender.start()
        status, headers, body = answer(sock)
        sender.join(SOCKET_TIMEOUT_S)
        assert headers.get("connection") == "close"
        return status, body


def test_an_unauthenticated_upload_is_answered_after_its_headers(streams_settings) -> None:
    sections = {**TRACKING, "webhooks": {"crm": {**WEBHOOK, "max_body_bytes": 16 * MIB}}}
    with running_service(streams_settings(), sections) as url, connect(url) as sock:
        sock.sendall(head("/webhooks/crm", UPLOAD_HEADERS) + chunk(b" " * CHUNK))
        status, headers, body = answer(sock)  # 8 MiB announced, 64 KiB sent
        assert (status, body["reason"]) == (401, "unauthorized")
        assert headers["connection"] == "close"
        assert closed_within(sock, LINGER_SECONDS + 10)


def test_unauthenticated_8_mib_uploads_are_refused_before_the_body_is_read(
    streams_settings, tmp_path
) -> None:
    """40 parallel 8 MiB chunked POSTs without a token (the webhook allows 16 MiB): each is
    answered 401 and the service's peak RSS grows by far less than the 320 MiB it took when
    it buffered every body before checking the token."""
    settings = streams_settings()
    uploads = 40
    with serve_process(settings, webhook_config(tmp_path)) as (process, url):
        httpx.get(f"{url}/health").raise_for_status()
        before = peak_rss_bytes(process.pid)
        results: list[tuple[int, Any]] = []
        threads = [
            threading.Thread(target=lambda: results.append(unauthenticated_upload(url, 8 * MIB)))
            for _ in range(uploads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        growth = peak_rss_bytes(process.pid) - before
        # The service still answers an authorized request on a fresh connection.
        ok = httpx.post(
            f"{url}/webhooks/crm",
            json={"id": "c-1", "name": "Ann"},
            headers=HOOK_AUTH,
        )
    assert len(results) == uploads
    for status, body in results:
        assert (status, body["reason"]) == (401, "unauthorized")
    assert growth < MAX_RSS_GROWTH, f"peak RSS grew by {growth / MIB:.1f} MiB"
    assert ok.status_code == 200, ok.text


def test_a_signed_webhook_is_read_only_with_a_well_formed_signature(streams_settings) -> None:
    settings = streams_settings()
    source = {
        "signing_secret": "s3cret",
        "id_field": "id",
        "properties": [{"from_path": "name", "to_property": "name"}],
    }
    sections = {**TRACKING, "webhooks": {"crm": source}}
    with running_service(settings, sections) as url, connect(url) as sock:
        sock.sendall(
            head(
                "/webhooks/crm",
                {
                    "Content-Type": "application/json",
                    "Content-Length": str(MIB),
                    "X-Webhook-Signature": "sha256=not-hex",
                },
            )
        )
        status, headers, body = answer(sock)  # no byte of the body was sent
    assert (status, body["reason"]) == (401, "unauthorized")
    assert headers["connection"] == "close"


# -- time and bytes in flight ---------------------------------------------------------------


def test_a_slow_body_gets_408_within_the_timeout_and_the_connection_is_closed(
    streams_settings,
) -> None:
    settings = streams_settings()
    sections = {**TRACKING, "server": {"body_timeout_seconds": 1.0}}
    with running_service(settings, sections) as url, connect(url) as sock:
        sock.sendall(head("/track/batch", {**AUTH, "Content-Length": "1000"}) + b'{"comm')
        started = time.monotonic()
        status, headers, body = answer(sock)
        waited = time.monotonic() - started
        assert (status, body["reason"]) == (408, "body_timeout")
        assert headers["connection"] == "close"
        assert 0.9 <= waited < 10, waited
        assert closed_within(sock, LINGER_SECONDS + 10)


def test_bytes_in_flight_are_bounded_with_503_and_retry_after(streams_settings) -> None:
    settings = streams_settings()
    server = {"max_body_bytes": 64 * 1024, "max_in_flight_bytes": 100 * 1024}
    body = orjson.dumps({"customer_id": "c-1", "source": "track", "properties": {"a": 1}})
    padded = body + b" " * (60_000 - len(body))
    with running_service(settings, {**TRACKING, "server": server}) as url:
        with connect(url) as holding, connect(url) as refused:
            holding.sendall(head("/track/batch", {**AUTH, "Content-Length": "60000"}))
            holding.sendall(padded[:1000])  # 60,000 bytes reserved, the rest still to come
            time.sleep(0.5)
            refused.sendall(head("/track/batch", {**AUTH, "Content-Length": "60000"}))
            status, headers, answer_body = answer(refused)
            assert (status, answer_body["reason"]) == (503, "server_busy")
            assert headers["retry-after"] == "1"
            assert headers["connection"] == "close"
            holding.sendall(padded[1000:])
            assert answer(holding)[0] == 200
        # Answered, the first request gave its bytes back: the same request is accepted now.
        accepted = httpx.post(f"{url}/track/batch", content=padded, headers=AUTH)
        assert accepted.status_code == 200, accepted.text
    assert [r.key for r in read_topic(settings, settings.input_topic)] == [b"c-1", b"c-1"]


def test_a_chunked_body_counts_against_the_bytes_in_flight(streams_settings) -> None:
    settings = streams_settings()
    server = {"max_body_bytes": 64 * 1024, "max_in_flight_bytes": 100 * 1024}
    with (
        running_service(settings, {**TRACKING, "server": server}) as url,
        connect(url) as holding,
        connect(url) as refused,
    ):
        holding.sendall(head("/track/batch", {**AUTH, "Transfer-Encoding": "chunked"}))
        holding.sendall(chunk(b" " * 60_000))
        time.sleep(0.5)
        refused.sendall(head("/track/batch", {**AUTH, "Transfer-Encoding": "chunked"}))
        refused.sendall(chunk(b" " * 50_000))
        status, _, body = answer(refused)
        assert (status, body["reason"]) == (503, "server_busy")
        holding.sendall(chunk(b"{}") + b"0\r\n\r\n")
        assert answer(holding)[0] == 400  # {} is no event, but it was read whole


# -- origin answers ---------------------------------------------------------------------------


@pytest.fixture
def origin() -> Iterator[OriginServer]:
    server = OriginServer().start()
    yield server
    server.stop()


def notify_source(origin: OriginServer, **fetch: Any) -> dict[str, Any]:
    return {
        "tokens": [TOKEN],
        "id_field": "data.customer_id",
        "properties": [{"from_path": "data.first_name", "to_property": "first_name"}],
        "fetch": {"url": f"{origin.url}/api/contacts/{{id}}", "max_attempts": 2, **fetch},
    }


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_origin_answer_is_dead_lettered_as_such(
    streams_settings, origin, chunked: bool
) -> None:
    """1.2 MB and unmappable: it was buffered whole, its dead letter exceeded the producer's
    limit and the sender heard 503 kafka_unavailable."""
    origin.chunked = chunked
    origin.seed("o-big", {"first_name": {"blob": "x" * 1_200_000}})  # not a scalar: unmappable
    settings = streams_settings()
    sections = {**TRACKING, "webhooks": {"shop": notify_source(origin)}}
    with running_service(settings, sections) as url:
        reply = httpx.get(
            f"{url}/webhooks/shop/notify",
            params={"id": "o-big"},
            headers=HOOK_AUTH,
        )
    assert reply.status_code == 202, reply.text
    assert reply.json()["reason"] == "origin_too_large"
    assert len(origin.requests()) == 1, "too large is final: not retried"
    [letter] = read_topic(settings, settings.dlq_topic)
    assert letter.headers["dlq.reason"] == b"origin_too_large"
    assert orjson.loads(letter.value or b"")["id"] == "o-big"


@pytest.mark.parametrize("profile_id", [".", ".."])
def test_a_dot_segment_id_never_reaches_the_origin(
    streams_settings, origin, profile_id: str
) -> None:
    settings = streams_settings()
    sections = {**TRACKING, "webhooks": {"shop": notify_source(origin)}}
    with running_service(settings, sections) as url:
        reply = httpx.get(
            f"{url}/webhooks/shop/notify",
            params={"id": profile_id},
            headers=HOOK_AUTH,
        )
        dotted = httpx.get(f"{url}/webhooks/shop/notify", params={"id": "..."}, headers=HOOK_AUTH)
    assert (reply.status_code, reply.json()["reason"]) == (400, "bad_id")
    assert dotted.json()["reason"] == "origin_not_found"  # "..." is an id like any other
    assert [r.path for r in origin.requests("/")] == ["/api/contacts/..."]


def test_only_dot_segments_are_unsafe_ids() -> None:
    assert [is_safe_id(unsafe) for unsafe in ("..", ".", "")] == [False] * 3
    assert [is_safe_id(safe) for safe in ("...", "a/b", "%2e%2e", "a..")] == [True] * 4
