"""The service's logs: paths as sent (never decoded, never a query string), and the notify
fetcher's request lines without the origin's secrets or full email addresses."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import aiohttp
import httpx
import pytest
from aiohttp import web

from streams.ingest.http.access_log import PathOnlyAccessLogger
from streams.ingest.serve import serve, server_options
from streams.ingest.webhooks.fetch import FetchConfig, ProfileFetcher
from streams.settings import Settings
from tests.app_thread import AppThread

LISTENING = re.compile(r"listening on (http://\S+)")
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=[A-Z]+ logger=[\w.]+ ")
START_TIMEOUT = 60.0


async def _request_once(url_path: str) -> int:
    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/webhooks/shop/notify", hello)
    runner = web.AppRunner(app, access_log_class=PathOnlyAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}{url_path}") as response,
        ):
            return response.status
    finally:
        await runner.cleanup()


def test_access_log_leaves_out_the_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    status = asyncio.run(_request_once("/webhooks/shop/notify?id=ada@example.com&token=s3cr3t"))
    assert status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /webhooks/shop/notify status=200")
    assert "s3cr3t" not in caplog.text
    assert "ada@example.com" not in caplog.text


@contextmanager
def _serving(settings: Settings, log: StringIO) -> Iterator[str]:
    """``streams serve``'s own ``serve()`` on a free port in a thread; yields its base URL,
    read from its log line."""
    sections = {"tracking": {"api_keys": ["k-1"]}}
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def main() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        await serve(settings, sections, server_options(sections, port=0), stop)

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="serve")
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while (match := LISTENING.search(log.getvalue())) is None:
            assert thread.is_alive(), log.getvalue()
            assert time.monotonic() < deadline, log.getvalue()
            time.sleep(0.05)
        yield match.group(1)
    finally:
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT)


def test_a_path_cannot_forge_a_line_or_make_the_log_binary(streams_settings, configured_log):
    settings = streams_settings()
    with _serving(settings, configured_log) as url:
        forged = "/track/x%0A2026-01-01 level=ERROR logger=forged%00%1B[31m"
        assert httpx.get(url + forged, timeout=30).status_code == 404
        email = "/customers/ada.lovelace%40example.com"
        assert httpx.get(url + email, timeout=30).status_code == 404
    text = configured_log.getvalue()
    access = [line for line in text.splitlines() if "logger=aiohttp.access" in line]
    assert len(access) == 2, text
    assert (
        "GET /track/x%0A2026-01-01%20level=ERROR%20logger=forged%00%1B[31m status=404"
        in (access[0])
    )
    assert "GET /customers/a***@example.com status=404" in access[1]
    # Every line is a record of its own: none starts with the request's forged text.
    assert all(RECORD_START.match(line) for line in text.splitlines()), text
    assert "\x00" not in text
    assert "\x1b" not in text
    assert "ada.lovelace" not in text


def test_the_fetchers_request_lines_carry_no_secret_or_email(configured_log):
    async def profile(_request: web.Request) -> web.Response:
        return web.json_response({"id": "x"})

    app = web.Application()
    app.router.add_get("/api/{id}", profile)
    with AppThread(app, "origin") as origin:
        config = FetchConfig(url=f"{origin}/api/{{id}}?token=abc&email=a.person@example.com")

        async def fetch() -> bytes:
            fetcher = ProfileFetcher(config)
            await fetcher.start()
            try:
                return (await fetcher.fetch("b.person@example.com")).body
            finally:
                await fetcher.close()

        assert asyncio.run(fetch()) == b'{"id": "x"}'
    text = configured_log.getvalue()
    [line] = [line for line in text.splitlines() if "HTTP Request: GET" in line]
    assert "/api/b***@example.com?token=***&email=a***@example.com" in line
    for secret in ("abc", "a.person", "b.person"):
        assert secret not in text
