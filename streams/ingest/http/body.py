"""Reading request bodies: bounded in size, in time, and in bytes held across all requests.

Every route reads its body through :func:`read_body`, and only after it authenticated the
caller (a webhook signed with HMAC is the one exception: the signature covers the body, so the
body is read first, under the same bounds). A body over the limit is a 413, one that does not
arrive within ``timeout_s`` a 408, and one that would take the service over ``max_in_flight``
bytes held at once a 503 with Retry-After. Each of these closes the connection: the rest of
the body is never read into memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from streams.ingest.http.responses import error_exception

DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024
BUSY_RETRY_AFTER_SECONDS = 1
# Per request: the bytes to give back when it is answered.
_HELD = web.RequestKey("body_bytes_held", int)


@dataclass
class BodyReader:
    """The service's bounds; ``held`` is the bytes of bodies read by requests not yet
    answered (one event loop: no lock)."""

    timeout_s: float = DEFAULT_BODY_TIMEOUT_SECONDS
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT_BYTES
    held: int = 0

    def reserve(self, request: web.Request, size: int) -> None:
        if self.held + size > self.max_in_flight:
            raise error_exception(
                503,
                "server_busy",
                "the service holds too many request bodies at once; retry shortly",
                {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            )
        self.held += size
        request[_HELD] = request.get(_HELD, 0) + size

    def release(self, request: web.Request) -> None:
        """Give back what ``request`` held: called once it is answered."""
        self.held -= request.pop(_HELD, 0)

    async def read(self, request: web.Request, limit: int) -> bytes:
        limit = min(limit, request.client_max_size)
        length = request.content_length
        if length is not None:
            if length > limit:
                raise too_large(limit)
            self.reserve(request, length)  # all at once: refused before a byte is read
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                async for chunk in request.content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    if length is None:
                        self.reserve(request, len(chunk))
                    chunks.append(chunk)
        except TimeoutError:
            raise error_exception(
                408, "body_timeout", f"the request body did not arrive within {self.timeout_s} s"
            ) from None
        return b"".join(chunks)


BODY_READER_KEY = web.AppKey("body_reader", BodyReader)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body of an authenticated request: at most ``limit`` bytes (and the
    application's ``client_max_size``), within the service's time and in-flight bounds."""
    return await request.app[BODY_READER_KEY].read(request, limit)


def too_large(limit: int) -> web.HTTPException:
    return error_exception(413, "body_too_large", f"the request body exceeds {limit} bytes")
