"""A small, honest CRM for tests: a real aiohttp server on 127.0.0.1 in a background thread.

Endpoints (under ``/api``): ``PUT|DELETE /people/{id}`` (upsert by our id);
``GET /contacts/search?field=value``, ``POST /contacts``, ``PATCH|DELETE /contacts/{contact_id}``
(separate create and update; a second create makes a duplicate, as real CRMs do);
``POST /imports`` and ``GET /imports/{job}`` (bulk jobs, done after ``bulk_polls`` polls, with
per-record results). ``POST /oauth/token`` issues expiring client-credentials tokens. Faults
(status codes, Retry-After, slow answers) are injected per test with ``inject``.

:class:`FakeApi` is what this server shares with the other fake REST APIs of the tests: the auth
schemes and the token endpoint, the log of received requests, injected faults, requests in flight.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.app_thread import AppThread

AuthScheme = Literal["none", "api_key", "basic", "bearer", "oauth2"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Fault:
    """Instead of (``status``) or after (``delay_s``) handling the next matching request."""

    status: int | None = None
    retry_after: str | None = None
    body: Any = None
    delay_s: float = 0.0
    method: str | None = None
    path_contains: str | None = None

    def matches(self, request: web.Request) -> bool:
        return (self.method is None or request.method == self.method) and (
            self.path_contains is None or self.path_contains in request.path
        )


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    """A dataclass base: a server subclasses it (changing the defaults as it likes), routes
    ``POST /oauth/token`` to ``_token`` and, per API request, calls ``_arrived`` (then
    ``_authorized``) and finally ``_done``. ``_new_token()`` names a token, under ``_lock``."""

    auth: AuthScheme = "none"
    api_key_header: str = "X-API-Key"
    secret: str = "s3cret-key"  # API key, basic password, bearer token or client secret
    username: str = "sync-user"  # basic user name or OAuth client id
    token_ttl_s: float = 3600.0
    received: list[Received] = field(default_factory=list)
    token_requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _tokens: dict[str, float] = field(default_factory=dict)
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._faults.extend(Fault(**vars(fault)) for _ in range(times))

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def _arrived(self, request: web.Request, body: Any) -> Fault | None:
        """Log ``request`` and count it in flight; the first injected fault it matches, taken."""
        with self._lock:
            self.received.append(
                Received(
                    request.method, request.path, dict(request.query), dict(request.headers), body
                )
            )
            fault = next((f for f in self._faults if f.matches(request)), None)
            if fault is not None:
                self._faults.remove(fault)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return fault

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _new_token(self) -> str:
        return f"token-{self.token_requests}"

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "api_key":
            return request.headers.get(self.api_key_header) == self.secret
        if self.auth == "basic":
            return header == "Basic " + _b64(f"{self.username}:{self.secret}")
        if self.auth == "bearer":
            return header == f"Bearer {self.secret}"
        if self.auth == "oauth2":
            with self._lock:
                expiry = self._tokens.get(header.removeprefix("Bearer "))
            return expiry is not None and time.monotonic() < expiry
        return True

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client = (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            client = (user, password)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if client != (self.username, self.secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        with self._lock:
            self.token_requests += 1
            token = self._new_token()
            self._tokens[token] = time.monotonic() + self.token_ttl_s
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s}
        return web.json_response(body)


@dataclass
class Job:
    records: list[dict[str, Any]]
    polls: int = 0
    results: list[dict[str, Any]] | None = None


@dataclass
class CrmServer(FakeApi):
    latency_s: float = 0.0  # every /api request takes this long (for concurrency tests)
    bulk_polls: int = 2
    id_field: str = "id"
    _contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _jobs: dict[str, Job] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _app_thread: AppThread | None = None

    @property
    def url(self) -> str:
        assert self._app_thread is not None, "CrmServer.start() first"
        return self._app_thread.url

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> CrmServer:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/oauth/token", self._token)
        app.router.add_put("/api/people/{id}", self._put_person)
        app.router.add_delete("/api/people/{id}", self._delete_person)
        app.router.add_get("/api/contacts/search", self._search)
        app.router.add_post("/api/contacts", self._create)
        app.router.add_patch("/api/contacts/{cid}", self._update)
        app.router.add_delete("/api/contacts/{cid}", self._delete_contact)
        app.router.add_post("/api/imports", self._submit)
        app.router.add_get("/api/imports/{job}", self._job_status)
        self._app_thread = AppThread(app, "crm-server").start()
        return self

    def stop(self) -> None:
        if self._app_thread is not None:
            self._app_thread.stop()
        self._app_thread = None

    # -- control and inspection ------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._contacts.clear()
            self._jobs.clear()
            self._faults.clear()
            self.received.clear()
            self.max_in_flight = 0

    def seed(self, fields: dict[str, Any]) -> str:
        """Add a contact as another system would; returns its contact id."""
        with self._lock:
            key = f"ct-{next(self._ids)}"
            self._contacts[key] = dict(fields)
        return key

    def contacts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(fields) for fields in self._contacts.values()]

    def contact(self, external_id: str) -> dict[str, Any] | None:
        found = [c for c in self.contacts() if c.get(self.id_field) == external_id]
        assert len(found) <= 1, f"duplicate contacts for {external_id}: {found}"
        return found[0] if found else None

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if (method is None or r.method == method) and path_contains in r.path
            ]

    # -- plumbing --------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        body = await request.json() if request.can_read_body else None
        fault = self._arrived(request, body)
        try:
            await asyncio.sleep(self.latency_s)
            if fault is not None and fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return web.json_response(fault.body or {}, status=fault.status, headers=headers)
            if not self._authorized(request):
                return web.json_response({"error": "unauthorized"}, status=401)
            response = await handler(request)
            if fault is not None:
                await asyncio.sleep(fault.delay_s)  # the write is done, the answer is late
            return response
        finally:
            self._done()

    def _new_token(self) -> str:
        return f"token-{next(self._ids)}"  # one counter with contacts and jobs

    # -- upsert by our id ------------------------------------------------------------------
    async def _put_person(self, request: web.Request) -> web.Response:
        fields = await request.json()
        errors = _validate(fields)
        if errors:
            return web.json_response({"errors": errors}, status=422)
        external = request.match_info["id"]
        with self._lock:
            self._upsert(external, fields)
        return web.json_response({"status": "ok"})

    def _upsert(self, external: str, fields: dict[str, Any]) -> None:
        for contact in self._contacts.values():
            if contact.get(self.id_field) == external:
                contact.update(fields)
                return
        self._contacts[f"ct-{next(self._ids)}"] = {**fields, self.id_field: external}

    async def _delete_person(self, request: web.Request) -> web.Response:
        external = request.match_info["id"]
        with self._lock:
            gone = [k for k, c in self._contacts.items() if c.get(self.id_field) == external]
            for key in gone:
                del self._contacts[key]
        return web.Response(status=204 if gone else 404)

    # -- search, create, update ------------------------------------------------------------
    async def _search(self, request: web.Request) -> web.Response:
        if len(request.query) != 1:
            return web.json_response({"error": {"code": "bad_query"}}, status=400)
        ((name, value),) = request.query.items()
        with self._lock:
            found = [
                {**c, "contact_id": k} for k, c in self._contacts.items() if c.get(name) == value
            ]
        return web.json_response({"results": found})

    async def _create(self, request: web.Request) -> web.Response:
        fields = await request.json()
        errors = _validate(fields)
        if errors:
            return web.json_response({"errors": errors}, status=400)
        with self._lock:
            key = f"ct-{next(self._ids)}"
            self._contacts[key] = dict(fields)
        return web.json_response({"contact_id": key}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        fields = await request.json()
        errors = _validate(fields)
        if errors:
            return web.json_response({"errors": errors}, status=400)
        with self._lock:
            contact = self._contacts.get(request.match_info["cid"])
            if contact is None:
                return web.json_response({"error": {"code": "not_found"}}, status=404)
            contact.update(fields)
        return web.json_response({"status": "ok"})

    async def _delete_contact(self, request: web.Request) -> web.Response:
        with self._lock:
            gone = self._contacts.pop(request.match_info["cid"], None)
        return web.Response(status=204 if gone is not None else 404)

    # -- bulk import jobs ------------------------------------------------------------------
    async def _submit(self, request: web.Request) -> web.Response:
        records = (await request.json()).get("records")
        if not isinstance(records, list):
            return web.json_response({"error": {"code": "no_records"}}, status=400)
        with self._lock:
            job_id = f"job-{next(self._ids)}"
            self._jobs[job_id] = Job(records)
        link = f"/api/imports/{job_id}"
        return web.json_response({"id": job_id, "status_url": link}, status=202)

    async def _job_status(self, request: web.Request) -> web.Response:
        with self._lock:
            job = self._jobs.get(request.match_info["job"])
            if job is None:
                return web.json_response({"error": {"code": "not_found"}}, status=404)
            job.polls += 1
            if job.polls < self.bulk_polls:
                body = {
                    "status": "running",
                    "records_processed": 0,
                    "total_records": len(job.records),
                }
                return web.json_response(body)
            if job.results is None:
                job.results = [self._import_one(i, r) for i, r in enumerate(job.records)]
            body = {
                "status": "completed",
                "total_records": len(job.records),
                "results": job.results,
            }
        return web.json_response(body)

    def _import_one(self, index: int, record: dict[str, Any]) -> dict[str, Any]:
        errors = _validate(record)
        if errors or not record.get(self.id_field):
            first = errors[0] if errors else {"code": "missing_id", "message": "no id"}
            return {"index": index, "status": "error", **first}
        self._upsert(str(record[self.id_field]), record)
        return {"index": index, "status": "ok"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _validate(fields: dict[str, Any]) -> list[dict[str, str]]:
    email = fields.get("email")
    if email is not None and not (isinstance(email, str) and EMAIL.match(email)):
        return [{"field": "email", "code": "invalid_email", "message": "not a valid address"}]
    return []
