"""A consumed chunk's messages with an error: logged and left out, unless the error is fatal."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from streams.kafka.consuming import without_errors


def test_messages_with_an_error_are_logged_and_left_out(caplog: pytest.LogCaptureFixture):
    good = [Message(topic="t", partition=0, offset=n, value=b"{}") for n in range(2)]
    failed = Message(topic="t", partition=1, error=KafkaError(KafkaError._TRANSPORT, "broker down"))
    with caplog.at_level(logging.WARNING, logger="streams.kafka.consuming"):
        kept = without_errors([good[0], failed, good[1]], "connector=pg")
    assert kept == good
    assert [record.getMessage() for record in caplog.records] == [
        "connector=pg consumer error: broker down"
    ]


def test_a_fatal_error_stops_the_consumer():
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    with pytest.raises(KafkaException):
        without_errors([Message(topic="t", error=fatal)], "processor")
