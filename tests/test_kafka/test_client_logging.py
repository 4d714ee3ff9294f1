"""librdkafka's own lines reach the configured handler: its format, mapped levels, redaction;
never the process's stderr."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, KafkaException, Producer

from streams.kafka.clients import (
    LIBRDKAFKA_LOGGER,
    admin_client,
    consumer_config,
    producer_config,
)
from streams.logs import configure_logging
from streams.settings import Settings

# The client id is in the name librdkafka gives the client, which every line of it carries.
CLIENT_ID = "ada.lovelace@example.com"
WAIT_SECONDS = 1.0


@pytest.fixture
def refusing_address() -> Iterator[str]:
    """host:port that refuses connections: bound (so nothing else takes it), not listening."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{reserved.getsockname()[1]}"


def consume(settings: Settings) -> None:
    consumer = Consumer(consumer_config(settings, **{"client.id": CLIENT_ID}))
    try:
        consumer.subscribe(["logging-test"])
        consumer.consume(1, WAIT_SECONDS)  # librdkafka's lines are handed over here
    finally:
        consumer.close()


def produce(settings: Settings) -> None:
    producer = Producer(producer_config(settings, **{"client.id": CLIENT_ID}))
    producer.produce("logging-test", b"value")
    producer.flush(WAIT_SECONDS)  # librdkafka's lines are handed over here
    producer.purge()


def ask_admin(settings: Settings) -> None:
    admin = admin_client(settings, logger=LIBRDKAFKA_LOGGER, **{"client.id": CLIENT_ID})
    with contextlib.suppress(KafkaException):
        admin.list_topics(timeout=WAIT_SECONDS)
    admin.poll(0)  # librdkafka's lines are handed over here


CLIENTS: dict[str, Callable[[Settings], None]] = {
    "consumer": consume,
    "producer": produce,
    "admin": ask_admin,
}


@pytest.mark.parametrize("use", CLIENTS.values(), ids=list(CLIENTS))
def test_a_client_of_an_unreachable_broker_logs_through_logging_not_stderr(
    use, refusing_address, configured_log, capfd
):
    use(Settings(kafka_bootstrap_servers=refusing_address))
    lines = [line for line in configured_log.getvalue().splitlines() if "logger=librdkafka" in line]
    assert lines, configured_log.getvalue()
    # librdkafka's syslog level 3 (error) is logging's ERROR; the email in its name is masked.
    assert " level=ERROR logger=librdkafka FAIL [a***@example.com#" in lines[0]
    assert f"Connect to ipv4#{refusing_address} failed: Connection refused" in lines[0]
    assert "ada.lovelace" not in configured_log.getvalue()
    captured = capfd.readouterr()
    assert captured.out == captured.err == ""


def test_librdkafka_lines_are_json_lines_too(refusing_address):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, log_format="json")
    try:
        consume(Settings(kafka_bootstrap_servers=refusing_address))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    ours = [entry for entry in entries if entry["logger"] == "librdkafka"]
    assert ours
    assert ours[0]["level"] == "ERROR"
    assert str(ours[0]["message"]).startswith("FAIL [a***@example.com#consumer-")
