"""Shared-secret checks for the HTTP API, in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from aiohttp import web
from pydantic import SecretStr

from streams.ingest.http.responses import error_exception


def presented_token(request: web.Request, header: str = "X-API-Key") -> str | None:
    """The secret a client sent: ``Authorization: Bearer <token>`` or the named header."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    value = request.headers.get(header)
    return value.strip() if value else None


def token_matches(presented: str | None, accepted: Iterable[SecretStr]) -> bool:
    """Compare digests with ``hmac.compare_digest``: time depends on neither the secret's
    length nor the position of the first differing byte. Every accepted token is checked."""
    if not presented:
        return False
    digest = hashlib.sha256(presented.encode()).digest()
    matched = False
    for token in accepted:
        expected = hashlib.sha256(token.get_secret_value().encode()).digest()
        matched |= hmac.compare_digest(digest, expected)
    return matched


def unauthorized(realm: str) -> web.HTTPException:
    """401 with the JSON error body; never says which part of the credentials was wrong."""
    return error_exception(
        401,
        "unauthorized",
        "missing or invalid credentials",
        {"WWW-Authenticate": f'Bearer realm="{realm}"'},
    )
