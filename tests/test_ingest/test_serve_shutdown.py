"""``streams serve`` on SIGTERM: a request in flight still gets its answer and its event."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.serve_process import serve_process
from streams.testing import read_topic, wait_until
from tests.test_connect.crm_server import Fault
from tests.test_ingest.origin_server import OriginServer

TOKEN = "shutdown-token"
ORIGIN_DELAY_S = 2.0


@pytest.fixture
def origin() -> Iterator[OriginServer]:
    server = OriginServer().start()
    yield server
    server.stop()


def _config(path: Path, origin: OriginServer) -> Path:
    path.write_text(
        f"""
[tracking]
api_keys = ["unused-here"]

[webhooks.shop]
tokens = ["{TOKEN}"]
allow_query_token = true
id_field = "data.customer_id"
[[webhooks.shop.properties]]
from_path = "data.first_name"
to_property = "first_name"
[webhooks.shop.fetch]
url = "{origin.url}/api/contacts/{{id}}"
timeout_s = 10.0
max_attempts = 1
auth = {{ type = "api_key", header = "{origin.api_key_header}", key = "{origin.secret}" }}
""",
        encoding="utf-8",
    )
    return path


def test_a_request_in_flight_is_answered_before_the_service_stops(
    streams_settings, origin, tmp_path
) -> None:
    origin.auth = "api_key"
    origin.seed("o-1", {"customer_id": "c-1", "first_name": "Ada"})
    origin.inject(Fault(delay_s=ORIGIN_DELAY_S))  # the fetch is still running at SIGTERM
    settings = streams_settings()
    answers: list[httpx.Response] = []
    with serve_process(settings, _config(tmp_path / "serve.toml", origin)) as (process, url):

        def notify() -> None:
            params = {"id": "o-1", "token": TOKEN}
            answers.append(httpx.get(f"{url}/webhooks/shop/notify", params=params, timeout=30))

        caller = threading.Thread(target=notify)
        caller.start()
        wait_until(lambda: len(origin.requests()) == 1, timeout=10)
        sent_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        caller.join(timeout=30)
        assert process.wait(timeout=30) == 0
    assert time.monotonic() - sent_at < ORIGIN_DELAY_S + 10
    [answer] = answers
    assert answer.status_code == 200, answer.text
    [record] = read_topic(settings, settings.input_topic)
    assert record.key == b"c-1"
