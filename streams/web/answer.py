"""A profile answer of ``GET /customers/{id}`` as data: status, JSON body, the headers that
travel with it. The worker builds it locally or from the owner; ``bloomreach`` translates it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from streams.codecs.timestamps import ms_to_seconds
from streams.state.codec import decode_profile

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


def stored_profile_answer(state: bytes | None, with_ts: bool) -> ProfileAnswer:
    """The answer for a customer's stored state (``None``: none stored), whichever engine
    stores it: the values, or each with its ``last_update`` in seconds."""
    if state is None:
        return json_answer({"error": "customer not found", "reason": "not_found"}, status=404)
    properties: dict[str, object] = {}
    for name, prop in sorted(decode_profile(state).properties.items()):
        if prop.value is None:
            continue
        properties[name] = (
            {"value": prop.value, "last_update": ms_to_seconds(prop.last_update)}
            if with_ts
            else prop.value
        )
    return json_answer({"properties": properties})
