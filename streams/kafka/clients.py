"""librdkafka configuration for the clients of the processor."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka.admin import AdminClient

from streams.settings import Settings

KafkaConfig = dict[str, object]

# librdkafka's own log lines go through Python logging (the handler configure_logging installs:
# its format, text or JSON, and redaction), warnings and errors only: its info lines would
# drown a worker's log at STREAMS_LOG_LEVEL=DEBUG. confluent-kafka maps their syslog levels
# (3 error, 4 warning, 6 info...) to logging's and hands them over in the client's poll(),
# consume() and flush() calls: lines of connection events, none per record.
LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")
LIBRDKAFKA_LOGGER.setLevel(logging.WARNING)


class TransientRetryFilter(logging.Filter):
    """Drops the warnings librdkafka resolves itself ("Coordinator load in progress:
    retrying" while a fresh broker starts): they are not the operator's to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().rstrip().endswith(": retrying")


LIBRDKAFKA_LOGGER.addFilter(TransientRetryFilter())


def _client_config(settings: Settings) -> KafkaConfig:
    """What every client shares: the connection and security settings, and the logger."""
    return {**settings.kafka_config(), "logger": LIBRDKAFKA_LOGGER}


def producer_config(settings: Settings, **overrides: object) -> KafkaConfig:
    """Idempotent, fully acknowledged producer with the Java-compatible partitioner."""
    config: KafkaConfig = {
        **_client_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "delivery.timeout.ms": settings.delivery_timeout_ms,
        "message.max.bytes": settings.max_message_bytes,
    }
    config.update(overrides)
    return config


def consumer_config(settings: Settings, **overrides: object) -> KafkaConfig:
    """Group consumer that commits only what was processed (never automatically)."""
    config: KafkaConfig = {
        **_client_config(settings),
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(settings.session_timeout_ms // 5, 500),
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 8_388_608,
        "queued.max.messages.kbytes": 262_144,
    }
    config.update(overrides)
    return config


def reader_config(settings: Settings, **overrides: object) -> KafkaConfig:
    """Consumer for assigned (not subscribed) reads such as state restore."""
    config: KafkaConfig = {
        **_client_config(settings),
        "group.id": f"{settings.group_id}-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 8_388_608,
        # Reads to a known end: at a partition's end the broker holds a fetch this long for
        # new data, and the next request on the connection (the next partition's offsets or
        # fetch) waits behind it; librdkafka's 500 ms cost an export ~1.5 s per partition.
        "fetch.wait.max.ms": 10,
    }
    config.update(overrides)
    return config


def admin_client(
    settings: Settings, *, logger: logging.Logger = LIBRDKAFKA_LOGGER, **overrides: object
) -> AdminClient:
    """An admin client whose librdkafka lines (connection refusals and such) go to Python
    logging, not stderr."""
    # Any: the overrides may hold a callable (error_cb).
    config: dict[str, Any] = {**_client_config(settings), "logger": logger, **overrides}
    return AdminClient(config)
