"""Who may read profiles from a worker: a token of ``STREAMS_API_TOKENS``.

Profiles are personal data, so a worker that listens beyond loopback without tokens refuses to
start unless ``STREAMS_ALLOW_UNAUTHENTICATED=true`` says that is intended.
"""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

from streams.errors import ConfigError
from streams.http_auth import presented_token, token_matches, unauthorized
from streams.settings import Settings

logger = logging.getLogger(__name__)

REALM = "profile-streams-query"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; every other name or address (``0.0.0.0``, ``""``,
    a hostname that may resolve anywhere) counts as reachable from elsewhere."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_metrics_tokens(settings: Settings) -> None:
    """Raise ConfigError when ``/metrics`` should need a token but none is configured."""
    if settings.metrics_require_token and not settings.api_tokens:
        raise ConfigError("STREAMS_METRICS_REQUIRE_TOKEN=true needs STREAMS_API_TOKENS")


def check_exposure(settings: Settings) -> None:
    """Raise ConfigError, naming the settings, for a query API open to the network."""
    check_metrics_tokens(settings)
    if settings.api_tokens or is_loopback(settings.web_host):
        return
    if settings.allow_unauthenticated:
        logger.warning(
            "query API open to anyone host=%s (STREAMS_ALLOW_UNAUTHENTICATED=true)",
            settings.web_host,
        )
        return
    raise ConfigError(
        f"the query API would serve customer profiles on {settings.web_host or 'every address'} "
        "to anyone: set STREAMS_API_TOKENS (comma-separated tokens; clients send "
        "Authorization: Bearer <token> or X-API-Key), or STREAMS_ALLOW_UNAUTHENTICATED=true, "
        "or listen on 127.0.0.1 (STREAMS_WEB_HOST)"
    )


def authorize(request: web.Request, settings: Settings) -> str | None:
    """The token the caller presented (forwarded to the owning worker); without configured
    tokens anyone passes. Raises a 401 with ``WWW-Authenticate`` for a missing or wrong one."""
    token = presented_token(request)
    if settings.api_tokens and not token_matches(token, settings.api_tokens):
        raise unauthorized(REALM)
    return token
