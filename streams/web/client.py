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
    """Return the worker's JSON answer for one customer; raise StreamsError on failure."""
    if base_url is None:
        settings = Settings()
        base_url = settings.advertised_url or f"http://127.0.0.1:{settings.web_port}"
    query = "?include_timestamps=1" if include_timestamps else ""
    url = f"{base_url.rstrip('/')}/customers/{quote(customer_id, safe='')}{query}"
    if not url.startswith(("http://", "https://")):
        raise StreamsError(f"not an http(s) URL: {base_url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise StreamsError(f"worker answered {exc.code}: {detail}") from exc
    except OSError as exc:
        raise StreamsError(f"cannot reach the worker at {base_url}: {exc}") from exc
    return body.decode()
