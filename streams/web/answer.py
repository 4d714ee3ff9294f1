"""A profile answer of ``GET /customers/{id}`` as data: status, JSON body, the headers that
travel with it. The worker builds it locally or from the owner; ``bloomreach`` translates it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True, slots=True)
class ProfileAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        return web.Response(
            body=self.body,
            status=self.status,
            content_type="application/json",
            headers=dict(self.headers),
        )


def json_answer(body: object, status: int = 200) -> ProfileAnswer:
    return ProfileAnswer(status, orjson.dumps(body))


def unavailable(reason: str, error: str) -> ProfileAnswer:
    """503 in the one error shape of every HTTP API: ``reason`` a code, ``error`` for humans."""
    answer = json_answer({"error": error, "reason": reason}, status=503)
    return ProfileAnswer(answer.status, answer.body, {"Retry-After": RETRY_AFTER_SECONDS})
