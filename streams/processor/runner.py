"""A worker process: the processor loop in a thread, the HTTP API on an asyncio loop."""

from __future__ import annotations

import logging
import signal
import threading

from streams.kafka.topics import verify_topics
from streams.logs import configure_logging
from streams.processor.metrics import WorkerMetrics
from streams.processor.status import worker_figures
from streams.processor.worker import ProcessorWorker
from streams.settings import Settings
from streams.state.store import StateStores
from streams.web.app import ProfileApi
from streams.web.auth import check_exposure
from streams.web.routing import OwnerDirectory, worker_client_id
from streams.web.server import BackgroundServer, service_url
from streams.web.status import StatusFigures, StatusSource

logger = logging.getLogger(__name__)


class WorkerService:
    """One worker: embeddable (tests, demo) or run in the foreground by ``run_worker``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self.worker: ProcessorWorker | None = None
        self._server = BackgroundServer("worker-http")
        self._directory: OwnerDirectory | None = None
        self._processor_thread: threading.Thread | None = None
        self._stopped = False
        self._status = StatusSource("worker", settings.group_id, self._status_figures)

    @property
    def owned_partitions(self) -> frozenset[int]:
        return self.worker.owned_partitions if self.worker is not None else frozenset()

    @property
    def restoring_partitions(self) -> frozenset[int]:
        return self.worker.restoring_partitions if self.worker is not None else frozenset()

    @property
    def alive(self) -> bool:
        thread = self._processor_thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Bind the HTTP API (its URL names this worker in the group), then start processing."""
        check_exposure(self.settings)
        verify_topics(self.settings)
        stores = StateStores.from_settings(self.settings)
        metrics = WorkerMetrics()
        self._directory = OwnerDirectory(self.settings)
        api = ProfileApi(
            self.settings,
            self,
            stores,
            metrics.render,
            self._directory,
            self_url="",
            status=self._status.document,
        )
        settings = self.settings
        port = self._server.start(
            api.application, settings.web_host, settings.web_port, "STREAMS_WEB_PORT (--web-port)"
        )
        self.url = service_url(self.settings, port)
        api.set_self_url(self.url)
        self._status.url = self.url
        self.worker = ProcessorWorker(
            self.settings, client_id=worker_client_id(self.url), stores=stores, metrics=metrics
        )
        self._processor_thread = threading.Thread(
            target=self._run_processor, name="processor", daemon=True
        )
        self._processor_thread.start()
        logger.info(
            "worker started url=%s data_dir=%s queries=%s",
            self.url,
            self.settings.data_dir,
            # Not "auth=...": the log filter masks the value of any key that looks secret.
            "token_required" if self.settings.api_tokens else "open",
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop processing (leaving the group cleanly), then the HTTP API. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.worker is not None:
            self.worker.stop()
        if self._processor_thread is not None:
            self._processor_thread.join(timeout)
        self._server.stop(timeout)
        if self._directory is not None:
            self._directory.close()

    def _status_figures(self) -> StatusFigures:
        ended = self._processor_thread is not None and not self.alive
        return worker_figures(self.worker, stopping=self._stopped or ended)

    def _run_processor(self) -> None:
        assert self.worker is not None
        try:
            self.worker.run()
        except BaseException:  # already logged and kept in worker.error
            return


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM or a processor failure; the exit code says which."""
    configure_logging(settings.log_level, log_format=settings.log_format)
    service = WorkerService(settings)
    service.start()
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        if not service.alive:
            break
    service.stop()
    failed = service.worker is not None and service.worker.error is not None
    return 1 if failed else 0
