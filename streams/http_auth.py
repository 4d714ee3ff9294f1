"""Shared-secret checks for every HTTP API (the worker's query API, the ingestion service), in
constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import orjson
from aiohttp import web
from pydantic import SecretStr

UNAUTHORIZED_BODY = orjson.dumps(
    {"error": "missing or invalid credentials", "reason": "unauthorized"}
).decode()


def presented_token(request: web.Request, header: str = "X-API-Key") -> str | None:
    """The secret a client sent: ``Authorization: Bearer <token>`` or the named header."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    value = request.headers.get(header)
    return value.strip() if value else None


def matching_token(presented: str | None, accepted: Sequence[SecretStr]) -> int | None:
    """The index of the accepted token ``presented`` equals, else ``None``.

    Digests are compared with ``hmac.compare_digest`` against every accepted token, without
    stopping at a match: the time depends neither on the secret's length, nor on the position
    of the first differing byte, nor on which token matched."""
    if not presented:
        return None
    digest = hashlib.sha256(presented.encode()).digest()
    found: int | None = None
    for index, token in enumerate(accepted):
        expected = hashlib.sha256(token.get_secret_value().encode()).digest()
        if hmac.compare_digest(digest, expected) and found is None:
            found = index
    return found


def token_matches(presented: str | None, accepted: Sequence[SecretStr]) -> bool:
    return matching_token(presented, accepted) is not None


def unauthorized(realm: str) -> web.HTTPUnauthorized:
    """401 with the JSON error body; never says which part of the credentials was wrong."""
    return web.HTTPUnauthorized(
        text=UNAUTHORIZED_BODY,
        content_type="application/json",
        headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
    )
