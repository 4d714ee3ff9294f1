"""Bloomreach's answer shapes: ``"success"`` at the top and per command, failures with
``"errors"`` (a list of sentences). Each failure also carries the service's machine-readable
``reason`` (Bloomreach clients ignore it).
https://documentation.bloomreach.com/engagement/reference/tracking-api-error-messages
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import orjson
from aiohttp import web

from streams.errors import StreamsError
from streams.ingest.http.responses import json_response
from streams.web.bloomreach import failure

_PASSED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BloomreachError(StreamsError):
    """The request as a whole is refused: answered as ``{"success": false, "errors": [...]}``."""

    def __init__(
        self, status: int, reason: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_response(failure(self.reason, self.detail), self.status, self.headers)


def shaped(handler: Handler) -> Handler:
    """``handler`` whose every refusal is Bloomreach-shaped: its own and the service's (the
    body bounds' 408, 413 and 503 are raised in the service's ``{"error", "reason"}`` body)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BloomreachError as exc:
            return exc.response()
        except web.HTTPException as exc:
            try:
                body = orjson.loads(exc.text or "")
                reason, detail = str(body["reason"]), str(body["error"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                reason, detail = "http_error", exc.reason
            headers = {name: exc.headers[name] for name in _PASSED_HEADERS if name in exc.headers}
            return json_response(failure(reason, detail), exc.status, headers)

    return answer
