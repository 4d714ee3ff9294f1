"""Run the ingestion service for a test: a real server on 127.0.0.1, a free port, its own loop.

``running_service(settings, sections)``: the whole ``streams serve`` application (tracking plus
the features named by ``sections``, as in the TOML file) over a started :class:`IngestProducer`,
served by :class:`tests.app_thread.AppThread`; yields the base URL, closes the producer
afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from streams.ingest.http.app import RUNNER_OPTIONS
from streams.ingest.producer import IngestProducer
from streams.ingest.serve import build_app, server_options
from streams.settings import Settings
from tests.app_thread import AppThread


@contextmanager
def running_service(
    settings: Settings,
    sections: Mapping[str, Any] | None = None,
    *,
    send_timeout: float | None = None,
    close_timeout: float = 10.0,
) -> Iterator[str]:
    """The ``streams serve`` application for ``sections`` (default: anonymous tracking);
    ``close_timeout``: how long closing the producer may wait for undelivered records."""
    sections = sections if sections is not None else {"tracking": {"anonymous": True}}
    options = server_options(sections)
    producer = IngestProducer(settings, send_timeout=send_timeout or options.send_timeout_seconds)
    producer.start()
    try:
        app = build_app(settings, sections, producer, options)
        server = AppThread(app, "ingest-test-server", shutdown_timeout=5.0, **RUNNER_OPTIONS)
        with server as base_url:
            yield base_url
    finally:
        producer.close(timeout=close_timeout)
