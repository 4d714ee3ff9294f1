"""Request authentication: API key header, basic, static bearer, OAuth2 client credentials."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from streams.httpclient.errors import HttpRefusedError
from streams.httpclient.failures import classify_failure
from streams.optional import requires

with requires("httpx", "the REST sink and webhook fetches"):
    import httpx

logger = logging.getLogger(__name__)

Headers = dict[str, str]


class _AuthModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKeyAuth(_AuthModel):
    type: Literal["api_key"]
    header: str = Field(default="X-API-Key", min_length=1)
    key: SecretStr


class BasicAuth(_AuthModel):
    type: Literal["basic"]
    username: str
    password: SecretStr


class BearerAuth(_AuthModel):
    type: Literal["bearer"]
    token: SecretStr


class OAuth2Auth(_AuthModel):
    """Client credentials grant; the token is cached until ``refresh_margin_s`` before expiry."""

    type: Literal["oauth2"]
    token_url: str = Field(pattern=r"^https?://")
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    client_auth: Literal["basic", "body"] = "basic"
    refresh_margin_s: float = Field(default=30.0, ge=0)


AuthOptions = Annotated[
    ApiKeyAuth | BasicAuth | BearerAuth | OAuth2Auth, Field(discriminator="type")
]


class Authenticator:
    """Static credentials: headers never change, so a 401 cannot be fixed by a retry."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._headers = dict(headers or {})

    async def headers(self, client: httpx.AsyncClient) -> Headers:
        return self._headers

    async def refresh(self, client: httpx.AsyncClient, used: Mapping[str, str]) -> bool:
        """After a 401 with ``used``: True when new credentials are worth one more try."""
        return False


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class OAuth2ClientCredentials(Authenticator):
    """Fetches, caches and refreshes an access token; one refresh at a time."""

    def __init__(self, options: OAuth2Auth, *, timeout_s: float) -> None:
        super().__init__()
        self._options = options
        self._timeout_s = timeout_s
        self._token: str | None = None
        self._expires_at = 0.0  # time.monotonic(); 0 means "no expiry known"
        self._lock: asyncio.Lock | None = None

    def _valid(self) -> bool:
        return self._token is not None and (
            self._expires_at == 0.0 or time.monotonic() < self._expires_at
        )

    async def headers(self, client: httpx.AsyncClient) -> Headers:
        if not self._valid():
            await self._fetch_locked(client, stale=self._token)
        return {"Authorization": f"Bearer {self._token}"}

    async def refresh(self, client: httpx.AsyncClient, used: Mapping[str, str]) -> bool:
        stale = used.get("Authorization", "").removeprefix("Bearer ") or None
        await self._fetch_locked(client, stale=stale)
        return True

    async def _fetch_locked(self, client: httpx.AsyncClient, *, stale: str | None) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # Another request may have refreshed while this one waited.
            if self._token is not None and self._token != stale and self._valid():
                return
            await self._fetch(client)

    async def _fetch(self, client: httpx.AsyncClient) -> None:
        options = self._options
        secret = options.client_secret.get_secret_value()
        form = {"grant_type": "client_credentials"}
        if options.scope:
            form["scope"] = options.scope
        headers = {"Accept": "application/json"}
        if options.client_auth == "basic":
            headers["Authorization"] = _basic(options.client_id, secret)
        else:
            form.update(client_id=options.client_id, client_secret=secret)
        try:
            response = await client.post(
                options.token_url, data=form, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            raise classify_failure(exc, "token request") from exc
        if response.status_code in (400, 401, 403):
            error = _error_code(response)
            raise HttpRefusedError(
                f"token endpoint refused the client credentials (HTTP {response.status_code}"
                f"{', ' + error if error else ''})",
                status=response.status_code,
            )
        if not response.is_success:
            raise classify_failure(response, "token request")
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise HttpRefusedError("token endpoint answered without an access_token") from exc
        self._token = token
        if expires_in > 0:
            margin = min(options.refresh_margin_s, expires_in / 2)
            self._expires_at = time.monotonic() + expires_in - margin
        else:
            self._expires_at = 0.0
        logger.info(
            "oauth2 token fetched client_id=%s expires_in=%.0fs", options.client_id, expires_in
        )


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", ""))[:100] if isinstance(body, dict) else ""


def build_authenticator(options: AuthOptions | None, *, timeout_s: float) -> Authenticator:
    if options is None:
        return Authenticator()
    if isinstance(options, ApiKeyAuth):
        return Authenticator({options.header: options.key.get_secret_value()})
    if isinstance(options, BasicAuth):
        return Authenticator(
            {"Authorization": _basic(options.username, options.password.get_secret_value())}
        )
    if isinstance(options, BearerAuth):
        return Authenticator({"Authorization": f"Bearer {options.token.get_secret_value()}"})
    return OAuth2ClientCredentials(options, timeout_s=timeout_s)
