"""The service's access log names paths, never query strings (tokens, ids)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from streams.ingest.http.access_log import PathOnlyAccessLogger


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
