"""The one reachability check: it answers at once with a broker, and names the cause without."""

from __future__ import annotations

import socket
import time

import pytest

from streams.errors import KafkaUnavailableError, SettingsError
from streams.kafka.reachability import require_kafka
from streams.settings import Settings

TIMEOUT = 1.0


def test_a_running_broker_passes_quickly(kafka_bootstrap):
    started = time.monotonic()
    require_kafka(Settings(kafka_bootstrap_servers=kafka_bootstrap), timeout=30)
    assert time.monotonic() - started < 5


def test_an_unreachable_broker_is_one_sentence_with_address_cause_and_remedy(capfd):
    with socket.socket() as reserved:  # bound, not listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{reserved.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(KafkaUnavailableError) as caught:
            require_kafka(Settings(kafka_bootstrap_servers=address), timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + 2
    message = str(caught.value)
    assert "\n" not in message
    assert address in message
    assert "Connection refused" in message
    assert "streams broker" in message
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    captured = capfd.readouterr()
    assert captured.out == captured.err == ""  # librdkafka's own lines went nowhere


def test_connection_settings_librdkafka_refuses_are_a_settings_error_not_a_traceback():
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="BOGUS",
    )
    with pytest.raises(SettingsError) as caught:
        require_kafka(settings, timeout=TIMEOUT)
    assert caught.value.problems == [
        "STREAMS_KAFKA_* settings: Failed to create admin client: Unsupported SASL mechanism: BOGUS"
    ]


def test_librdkafka_warnings_it_resolves_itself_are_dropped_others_kept(configured_log):
    from streams.kafka.clients import LIBRDKAFKA_LOGGER

    LIBRDKAFKA_LOGGER.warning(
        "GETPID [producer-6] [thrd:main]: Failed to acquire idempotence PID from broker "
        "127.0.0.1:9092/1: Broker: Coordinator load in progress: retrying"
    )
    LIBRDKAFKA_LOGGER.warning("FAIL [thrd:127.0.0.1:9092]: Connect to ipv4#127.0.0.1:9092 failed")
    lines = configured_log.getvalue().splitlines()
    assert len(lines) == 1
    assert "Connect to ipv4#127.0.0.1:9092 failed" in lines[0]
