"""Is the configured Kafka there? One metadata request with a short timeout, asked by every
command that needs Kafka before it does anything else, so that a broker that is down is said
in one line within seconds instead of minutes of retries."""

from __future__ import annotations

import logging
import re

from confluent_kafka import KafkaError, KafkaException

from streams.errors import KafkaUnavailableError, SettingsError
from streams.kafka.clients import admin_client
from streams.kafka.topics import kafka_error_text
from streams.settings import Settings

# The check's own connection refusals are summarised in its one error line, not logged.
CHECK_LOGGER = logging.getLogger("librdkafka.reachability")
CHECK_LOGGER.propagate = False
CHECK_LOGGER.addHandler(logging.NullHandler())

LOCAL_BROKER_HINT = (
    "start a local broker with `streams broker` (or `make broker`), "
    "or point KAFKA_BOOTSTRAP_SERVERS at a running one"
)
# "127.0.0.1:1/bootstrap: Connect to ... failed: Connection refused (after 0ms in state CONNECT)"
_BROKER_PREFIX = re.compile(r"^\S+/(?:bootstrap|\d+): ")
_STATE_SUFFIX = re.compile(r" \(after \d+ms in state \w+\)$")


def require_kafka(settings: Settings, timeout: float | None = None) -> None:
    """Return once Kafka answers a metadata request; raise :class:`KafkaUnavailableError`
    naming the address, the cause and how to start a local broker when it does not answer
    within ``timeout`` (default: ``kafka_connect_timeout_seconds``)."""
    wait = settings.kafka_connect_timeout_seconds if timeout is None else timeout
    errors: list[KafkaError] = []
    try:
        admin = admin_client(settings, logger=CHECK_LOGGER, error_cb=errors.append)
    except KafkaException as exc:  # librdkafka refuses the configuration itself
        raise SettingsError([f"STREAMS_KAFKA_* settings: {kafka_error_text(exc)}"]) from exc
    try:
        admin.list_topics(timeout=wait)
    except KafkaException as exc:
        admin.poll(0)  # serves the error callbacks queued meanwhile: they say why
        raise KafkaUnavailableError(
            f"Kafka at {settings.kafka_bootstrap_servers} is unreachable "
            f"({_cause(errors, exc)}; no answer within {wait:g} s): {LOCAL_BROKER_HINT}"
        ) from exc


def _cause(errors: list[KafkaError], exc: KafkaException) -> str:
    for error in errors:
        if error.code() != KafkaError._ALL_BROKERS_DOWN:
            return _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", error.str()))
    return kafka_error_text(exc)
