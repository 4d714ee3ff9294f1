"""``streams connect NAME --config FILE``: run one connector worker in the foreground."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from streams.connect.config import build_sink, load_config
from streams.connect.worker import ConnectorWorker
from streams.kafka.topics import ensure_topic, verify_topics
from streams.logs import configure_logging
from streams.settings import Settings

logger = logging.getLogger(__name__)


def run_connector(name: str, config_path: Path, settings: Settings) -> int:
    """Run until SIGINT/SIGTERM (final flush and commit) or a fatal error (exit code 1)."""
    configure_logging(settings.log_level, log_format=settings.log_format)
    config = load_config(config_path, name)
    verify_topics(settings)
    ensure_topic(settings, config.dead_letter_topic(settings))
    worker = ConnectorWorker(config, settings, build_sink(config, settings))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: worker.stop())
    thread = threading.Thread(target=_run, args=(worker,), name=f"connector-{name}")
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
    return 1 if worker.error is not None else 0


def _run(worker: ConnectorWorker) -> None:
    try:
        worker.run()
    except BaseException:  # logged by the worker, kept in worker.error
        return
