"""An origin's REST API for the notify tests: a real aiohttp server on 127.0.0.1.

``GET /api/contacts/{id}`` answers ``{"data": {...}}`` or 404 for an unknown id, behind the
configured auth scheme (API key, basic, bearer, OAuth2 client credentials from
``POST /oauth/token`` with expiring tokens). Faults (status and Retry-After, slow answers) are
injected per test with ``inject``, in the CRM test server's style (its ``FakeApi`` base, with
``Fault``, is reused). ``chunked = True`` streams answers without a Content-Length.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.app_thread import AppThread
from tests.test_connect.crm_server import FakeApi, Received

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CHUNK_BYTES = 16 * 1024


@dataclass
class OriginServer(FakeApi):
    api_key_header: str = "Api-Key"
    secret: str = "origin-secret"
    username: str = "hub-client"
    chunked: bool = False
    _contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _app_thread: AppThread | None = None

    @property
    def url(self) -> str:
        assert self._app_thread is not None, "OriginServer.start() first"
        return self._app_thread.url

    def start(self) -> OriginServer:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/api/contacts/{id}", self._contact)
        self._app_thread = AppThread(app, "origin-server").start()
        return self

    def stop(self) -> None:
        if self._app_thread is not None:
            self._app_thread.stop()

    # -- control and inspection ------------------------------------------------------------
    def seed(self, contact_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self._contacts[contact_id] = dict(fields)

    def requests(self, path_contains: str = "/api/") -> list[Received]:
        with self._lock:
            return [r for r in self.received if path_contains in r.path]

    # -- plumbing --------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        fault = self._arrived(request, None)
        try:
            if fault is not None:
                await asyncio.sleep(fault.delay_s)  # a slow origin: the client may give up first
                if fault.status is not None:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                    return web.json_response(fault.body or {}, status=fault.status, headers=headers)
            if not self._authorized(request):
                return web.json_response({"error": "unauthorized"}, status=401)
            return await handler(request)
        finally:
            self._done()

    def _new_token(self) -> str:
        return f"origin-token-{self.token_requests}"

    async def _contact(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            contact = self._contacts.get(request.match_info["id"])
        if contact is None:
            return web.json_response({"error": {"code": "not_found"}}, status=404)
        answer = {"data": {"id": request.match_info["id"], **contact}}
        if not self.chunked:
            return web.json_response(answer)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        body = orjson.dumps(answer)
        for start in range(0, len(body), CHUNK_BYTES):
            await response.write(body[start : start + CHUNK_BYTES])
        await response.write_eof()
        return response
