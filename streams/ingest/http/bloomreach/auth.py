"""Bloomreach's credentials: a private key as HTTP Basic ``key_id:secret``, a public key as
``Authorization: Token <token>`` or the ``access_token`` query parameter (which the access
log never writes: it logs paths only). The project token in the path must be one of the key's.

Secrets are compared in constant time (:func:`streams.http_auth.matching_token`); a refusal
never says which part of the credentials was wrong.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

from aiohttp import web

from streams.http_auth import matching_token
from streams.ingest.binding import SourceBinding
from streams.ingest.http.bloomreach.answers import BloomreachError
from streams.ingest.http.bloomreach.config import BloomreachKey

REALM = "profile-streams-bloomreach"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}", Token realm="{REALM}"'}


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    binding: SourceBinding


class BloomreachAuth:
    def __init__(self, keys: list[BloomreachKey]) -> None:
        self._private = [key for key in keys if not key.public]
        self._public = [key for key in keys if key.public]

    def caller(self, request: web.Request, project: str) -> Caller:
        """The key the request presents, if it may write to ``project``; else 401 or 403."""
        key = self._key(request)
        _check_project(key, project, "write to")
        return Caller(key.id, key.binding())

    def reader(self, request: web.Request, project: str | None) -> str:
        """The id of the private key the request presents, if it may read ``project`` (any of
        its projects when the route names none); else 401 or 403. Public keys, which web pages
        and apps carry, never read profiles."""
        key = self._key(request)
        if key.public:
            raise BloomreachError(
                403, "public_key", f"key {key.id} is public: reading needs a private key"
            )
        if project is not None:
            _check_project(key, project, "read")
        return key.id

    def _key(self, request: web.Request) -> BloomreachKey:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "basic" and credentials:
            return self._basic(credentials)
        if scheme == "token" and credentials:
            return self._token(credentials)
        token = request.query.get("access_token")
        if token and not scheme:
            return self._token(token)
        raise _unauthorized(
            "access key not provided: Authorization: Basic <key_id:secret> (private key), "
            "Token <token> or ?access_token= (public key)"
        )

    def _basic(self, credentials: str) -> BloomreachKey:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
            raise _unauthorized("Basic credentials are not base64 of key_id:secret") from None
        key_id, colon, secret = decoded.partition(":")
        index = matching_token(secret, [key.secret for key in self._private])
        # The id is compared in constant time too, after the secret, whatever the secret gave.
        key = self._private[index] if index is not None else None
        expected = key.id if key is not None else ""
        if not colon or key is None or not hmac.compare_digest(key_id.encode(), expected.encode()):
            raise _unauthorized("could not authenticate")
        return key

    def _token(self, token: str) -> BloomreachKey:
        index = matching_token(token, [key.secret for key in self._public])
        if index is None:
            raise _unauthorized("could not authenticate")
        return self._public[index]


def _check_project(key: BloomreachKey, project: str, verb: str) -> None:
    if project not in key.projects:
        raise BloomreachError(
            403,
            "project_not_allowed",
            f"key {key.id} may not {verb} this project: check the project token",
        )


def _unauthorized(detail: str) -> BloomreachError:
    return BloomreachError(401, "unauthorized", detail, CHALLENGE)
