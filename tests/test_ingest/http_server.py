"""Run the ingestion service for a test: a real server on 127.0.0.1, a free port, its own loop.

- ``running_app(app)``: serve any aiohttp application; yields its base URL.
- ``running_service(settings, sections)``: the whole ``streams serve`` application (tracking
  plus the features named by ``sections``, as in the TOML file) over a started
  :class:`IngestProducer`; yields the base URL, closes the producer afterwards.

The server runs in a background thread with its own event loop, so a test talks to it over
HTTP with any client (httpx, aiohttp) exactly as a user would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from streams.ingest.producer import IngestProducer
from streams.ingest.serve import build_app, server_options
from streams.settings import Settings

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


@contextmanager
def running_app(app: web.Application, *, shutdown_timeout: float = 5.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port> until the block ends; yields ``http://host:port``."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    started: Future[str] = Future()

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        started.set_result(f"http://{HOST}:{port}")

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # surface start failures in the test's thread
            started.set_exception(exc)
            return
        loop.run_forever()

    thread = threading.Thread(target=run, name="ingest-test-server", daemon=True)
    thread.start()
    try:
        yield started.result(timeout=START_TIMEOUT)
    finally:
        if started.exception(timeout=0) is None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(START_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        loop.close()


@contextmanager
def running_service(
    settings: Settings,
    sections: Mapping[str, Any] | None = None,
    *,
    send_timeout: float | None = None,
    close_timeout: float = 10.0,
) -> Iterator[str]:
    """The ``streams serve`` application for ``sections`` (default: anonymous tracking);
    ``close_timeout``: how long closing the producer may wait for undelivered records."""
    sections = sections if sections is not None else {"tracking": {"anonymous": True}}
    options = server_options(sections)
    producer = IngestProducer(settings, send_timeout=send_timeout or options.send_timeout_seconds)
    producer.start()
    try:
        app = build_app(settings, sections, producer, options)
        with running_app(app) as base_url:
            yield base_url
    finally:
        producer.close(timeout=close_timeout)
