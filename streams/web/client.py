"""The CLI's side of GET /customers/{id}."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import quote

from streams.errors import StreamsError
from streams.settings import Settings


def fetch_profile(
    customer_id: str, *, include_timestamps: bool, base_url: str | None, timeout: float = 10.0
) -> str:
    """Return the worker's JSON answer for one customer; raise StreamsError on failure.

    Sends the first token of ``STREAMS_API_TOKENS``, when set, as a bearer token."""
    settings = Settings()
    if base_url is None:
        base_url = settings.advertised_url or f"http://127.0.0.1:{settings.web_port}"
    query = "?include_timestamps=1" if include_timestamps else ""
    url = f"{base_url.rstrip('/')}/customers/{quote(customer_id, safe='')}{query}"
    if not url.startswith(("http://", "https://")):
        raise StreamsError(f"not an http(s) URL: {base_url}")
    request = urllib.request.Request(url)  # noqa: S310 (checked above)
    if settings.api_tokens:
        token = settings.api_tokens[0].get_secret_value()
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        if exc.code == 401:
            detail += " (set STREAMS_API_TOKENS to a token the worker accepts)"
        raise StreamsError(f"worker answered {exc.code}: {detail}") from exc
    except OSError as exc:
        raise StreamsError(f"cannot reach the worker at {base_url}: {exc}") from exc
    return body.decode()
