"""``streams connect NAME --config FILE``: run one connector worker in the foreground, with its
HTTP endpoints (:mod:`streams.connect.api`) on ``connector_web_port``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from pathlib import Path

from streams.connect.api import ConnectorApi
from streams.connect.config import ConnectorConfig, build_sink, load_config
from streams.connect.sink import Sink
from streams.connect.status import ConnectorStatus
from streams.connect.worker import ConnectorWorker
from streams.kafka.topics import ensure_topic, verify_topics
from streams.logs import configure_logging
from streams.settings import Settings
from streams.web.auth import check_metrics_tokens
from streams.web.routing import connector_client_id
from streams.web.server import BackgroundServer, service_url
from streams.web.status import StatusFigures, StatusSource

logger = logging.getLogger(__name__)


class ConnectorService:
    """One connector worker and its endpoints: embeddable (tests) or run by ``run_connector``.
    The endpoints are bound first: their URL names the connector in its consumer group."""

    def __init__(self, config: ConnectorConfig, settings: Settings, sink: Sink) -> None:
        self.config = config
        self.settings = settings
        self.sink = sink
        self.url = ""
        self.worker: ConnectorWorker | None = None
        self._server = BackgroundServer(f"connector-{config.name}-http")
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._status = StatusSource("connector", config.name, self._status_figures)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> ConnectorStatus | None:
        return self.worker.status() if self.worker is not None else None

    def status_document(self) -> Mapping[str, object]:
        return self._status.document()

    def render_metrics(self) -> bytes:
        return self.worker.metrics.render() if self.worker is not None else b""

    def start(self) -> None:
        check_metrics_tokens(self.settings)
        api = ConnectorApi(self.settings, self)
        settings = self.settings
        port = self._server.start(
            api.application,
            settings.web_host,
            settings.connector_web_port,
            "STREAMS_CONNECTOR_WEB_PORT (--port)",
        )
        self.url = service_url(settings, port)
        self._status.url = self.url
        self.worker = ConnectorWorker(
            self.config, settings, self.sink, client_id=connector_client_id(self.url)
        )
        self._thread = threading.Thread(
            target=self._run, args=(self.worker,), name=f"connector-{self.config.name}"
        )
        self._thread.start()
        logger.info("connector=%s started url=%s", self.config.name, self.url)

    def stop(self, timeout: float = 60.0) -> None:
        """Final flush and commit, then the endpoints. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.worker is not None:
            self.worker.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self._server.stop(timeout)

    def _status_figures(self) -> StatusFigures:
        status = self.status()
        if status is None:
            return StatusFigures("starting", {}, {}, ())
        return status.figures()

    @staticmethod
    def _run(worker: ConnectorWorker) -> None:
        try:
            worker.run()
        except BaseException:  # logged by the worker, kept in worker.error
            return


def run_connector(name: str, config_path: Path, settings: Settings) -> int:
    """Run until SIGINT/SIGTERM (final flush and commit) or a fatal error (exit code 1)."""
    configure_logging(settings.log_level, log_format=settings.log_format)
    config = load_config(config_path, name)
    verify_topics(settings)
    ensure_topic(settings, config.dead_letter_topic(settings))
    service = ConnectorService(config, settings, build_sink(config, settings))
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    service.start()
    while not stopping.wait(0.5):
        if not service.alive:
            break
    service.stop()
    assert service.worker is not None
    return 1 if service.worker.error is not None else 0
