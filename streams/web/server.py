"""An aiohttp application served from an event loop of its own, in a daemon thread: for the
processes whose main work is a blocking loop (a worker's processor, a connector)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

from streams.errors import StreamsError
from streams.settings import Settings

T = TypeVar("T")


class BackgroundServer:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(
        self, make_app: Callable[[], web.Application], host: str, port: int, setting: str
    ) -> int:
        """Build the application on the server's loop and listen; the port bound is returned
        (``port`` 0: a free one). A port that cannot be had is a StreamsError naming
        ``setting``, the variable that chose it."""
        self._thread.start()
        try:
            return self.call(self._bind(make_app, host, port))
        except OSError as exc:
            self.stop(timeout=5.0)
            raise StreamsError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another "
                f"port with {setting} (0: any free one)"
            ) from exc

    def stop(self, timeout: float) -> None:
        """Run the application's cleanup, then end the loop. Idempotent."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            self.call(runner.cleanup())
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    async def _bind(self, make_app: Callable[[], web.Application], host: str, port: int) -> int:
        self._runner = web.AppRunner(make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound: int = sockets[0].getsockname()[1] if sockets else port
        return bound


def service_url(settings: Settings, port: int) -> str:
    """How others reach this process: ``STREAMS_ADVERTISED_URL``, else its host and port
    (the machine's name when it listens on every address)."""
    if settings.advertised_url:
        return settings.advertised_url
    host = settings.web_host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{host}:{port}"
