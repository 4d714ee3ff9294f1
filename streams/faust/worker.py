"""``streams worker --engine faust``: a Faust app configured from the settings, with the
processor installed, run by Faust's worker until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from streams.errors import ConfigError
from streams.faust.install import install
from streams.logs import configure_logging
from streams.optional import requires
from streams.settings import Settings
from streams.web.routing import worker_client_id

with requires("faust", "the Faust engine"):
    import faust

logger = logging.getLogger(__name__)

# STREAMS_FAUST_DRIVER -> the scheme of Faust's broker URLs that picks the driver.
DRIVER_SCHEMES = {"aiokafka": "kafka", "confluent": "confluent"}
# Why ``confluent://`` is refused (faust-streaming 0.15.3, tried 2026-12-02 with
# tests/test_faust): the broker assigns the partitions, but confluent-kafka hands them over
# only inside consume(), which only Faust's fetcher calls, and the fetcher starts only after
# the first assignment: the worker never processes anything. Its producer also drops the
# records' headers and timestamps, so dead letters would lose their reason.
CONFLUENT_REFUSED = (
    "STREAMS_FAUST_DRIVER=confluent: faust-streaming {version}'s confluent driver never "
    "starts fetching (it learns its partitions only from the fetcher, which waits for them) "
    "and drops record headers, which dead letters need: use aiokafka (the default)"
)

# What aiokafka authenticates with by username and password (GSSAPI and OAUTHBEARER need
# settings Profile Streams does not have).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# A member's heartbeats per session timeout, as Kafka's clients recommend (at least three).
HEARTBEATS_PER_SESSION = 10


def app_config(settings: Settings, *, web_port: int | None = None) -> dict[str, Any]:
    """faust.App keyword arguments from the settings: broker, group timeouts, producer limits,
    web server, RocksDB under ``STREAMS_DATA_DIR``. A user's own app may take them too."""
    port = settings.web_port if web_port is None else web_port
    if port == 0:
        raise ConfigError(
            "the Faust engine needs a fixed STREAMS_WEB_PORT (or --web-port): its URL names "
            "the worker to the others, which forward queries to it"
        )
    if settings.faust_driver == "confluent":
        raise ConfigError(CONFLUENT_REFUSED.format(version=faust.__version__))
    session = settings.session_timeout_ms / 1000
    scheme = DRIVER_SCHEMES[settings.faust_driver]
    url = settings.advertised_url or _default_url(settings.web_host, port)
    config: dict[str, Any] = {
        "broker": ";".join(
            f"{scheme}://{server.strip()}"
            for server in settings.kafka_bootstrap_servers.split(",")
            if server.strip()
        ),
        "broker_credentials": _credentials(settings),
        "store": "rocksdb://",
        "datadir": str(settings.data_dir / "faust"),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "consumer_auto_offset_reset": "earliest",
        # Group membership: how soon a dead worker's partitions move, how long a join may take.
        "broker_session_timeout": session,
        "broker_heartbeat_interval": max(session / HEARTBEATS_PER_SESSION, 0.1),
        "broker_rebalance_timeout": settings.max_poll_interval_ms / 1000,
        "broker_max_poll_interval": settings.max_poll_interval_ms / 1000,
        "producer_acks": -1,
        "producer_max_request_size": settings.max_message_bytes,
        "producer_request_timeout": settings.delivery_timeout_ms / 1000,
        "table_standby_replicas": 1,
        "web_host": settings.web_host,
        "web_port": port,
        "canonical_url": url,
        # The default workers' client id: `streams serve` and `streams status` find the owner
        # of a partition, and every worker, in the consumer group's description.
        "broker_client_id": worker_client_id(url),
    }
    return config


def _credentials(settings: Settings) -> Any:
    """The Kafka security settings as Faust's credentials (aiokafka's): TLS verifies the
    brokers against the system's certificate authorities, as librdkafka does for the default
    engine."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context() if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    mechanism = settings.kafka_sasl_mechanism or "PLAIN"
    if mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            f"STREAMS_KAFKA_SASL_MECHANISM={mechanism}: the Faust engine supports "
            f"{', '.join(SASL_MECHANISMS)}; the default engine (librdkafka) supports more"
        )
    if not settings.kafka_sasl_username:
        raise ConfigError(
            f"STREAMS_KAFKA_SECURITY_PROTOCOL={protocol} needs STREAMS_KAFKA_SASL_USERNAME "
            "(and STREAMS_KAFKA_SASL_PASSWORD)"
        )
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else "",
        mechanism=mechanism,
        ssl_context=context,
    )


def _default_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{host}:{port}"


def faust_app(settings: Settings) -> faust.App:
    """The app ``streams worker --engine faust`` runs: id (and consumer group)
    ``STREAMS_GROUP_ID``, the processor installed."""
    app = faust.App(settings.group_id, **app_config(settings))
    install(app, settings)
    return app


def run_faust_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; the exit code is Faust's worker's."""
    configure_logging(settings.log_level)
    app = faust_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        override_logging=False,  # streams' own logging (redacted, key=value) stays
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0  # pragma: no cover - execute_from_commandline always exits
