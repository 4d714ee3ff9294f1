"""Serve an aiohttp application for a test: a real server on 127.0.0.1, a free port, its own
event loop in a background thread, so the test talks to it over HTTP like any client."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


class AppThread:
    """``start()`` serves ``app``; ``url`` then names it; ``stop()`` (or the end of a ``with``
    block) shuts it down, cancelling answers still sleeping. ``runner_options`` go to the
    :class:`aiohttp.web.AppRunner` (``streams serve`` passes ``lingering_time``)."""

    def __init__(
        self,
        app: web.Application,
        name: str = "test-app",
        *,
        shutdown_timeout: float = 0.5,
        **runner_options: Any,
    ) -> None:
        self.app = app
        self._runner_options = runner_options
        self.name = name
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self._shutdown_timeout = shutdown_timeout
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start(self) -> AppThread:
        ready = threading.Event()
        runner = web.AppRunner(
            self.app,
            shutdown_timeout=self._shutdown_timeout,
            access_log=None,
            **self._runner_options,
        )

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, HOST, 0)
                self.loop.run_until_complete(site.start())
            except BaseException as exc:  # startup hooks failed: tell start()
                self._failure = exc
                ready.set()
                return
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(runner.cleanup())
            pending = asyncio.all_tasks(self.loop)  # slow answers still sleeping
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError(f"{self.name} did not start")
        if self._failure is not None:
            raise RuntimeError(f"{self.name} failed to start") from self._failure
        return self

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> str:
        return self.start().url

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
