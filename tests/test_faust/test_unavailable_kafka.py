"""Where the Faust engine differs from the default one on Kafka's failures. Parking what Kafka
refuses is the same on both engines and tested on both (tests/test_processor/test_poison.py);
Kafka unavailable stops the Faust worker with its batch uncommitted, where the default engine
retries in place."""

from __future__ import annotations

import orjson
import pytest

from streams.testing import read_topic, read_upserts, wait_until
from tests.test_faust.test_engine import answers
from tests.test_processor.cluster import caught_up, spawn_worker
from tests.test_processor.test_poison import (
    event,
    produce,
)

pytestmark = pytest.mark.slow


def test_an_unavailable_topic_parks_nothing_and_stops_the_worker_without_committing(
    streams_settings, kafka_bootstrap, tmp_path
):
    """Kafka unavailable is never a record's fault: the upserts topic deleted, the batch's
    delivery times out, the worker stops with the batch uncommitted (take_events would ack it
    on the agent's error: the engine holds it), and a restart once the topic is back delivers
    the change."""
    from confluent_kafka.admin import AdminClient

    from streams.kafka.topics import create_topics
    from streams.merge import MergePolicy
    from tests.test_processor.cluster import canon, changelog_profiles, expected_profiles

    settings = streams_settings(delivery_timeout_ms=5000)
    first, second = event("c-1", 1, a=1), event("c-1", 2, b=2)
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, tmp_path / "w", log, engine="faust")
    wait_until(lambda: answers(worker.url), timeout=90)
    produce(settings, "c-1", [orjson.dumps(first)])
    wait_until(lambda: caught_up(settings), timeout=60)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_topics([settings.upserts_topic]).values():
        future.result(timeout=30)
    wait_until(lambda: settings.upserts_topic not in admin.list_topics(timeout=10).topics)

    produce(settings, "c-1", [orjson.dumps(second)])
    assert worker.process.wait(120) != 0, "the delivery failure stops the worker"
    assert not caught_up(settings), "the undelivered event's offset was not committed"
    assert read_topic(settings, settings.dlq_topic) == [], "nothing is parked"

    create_topics(settings)
    worker = spawn_worker(settings, tmp_path / "w", log, engine="faust")
    try:
        wait_until(lambda: caught_up(settings), timeout=120)
        [upsert] = read_upserts(settings)  # the recreated topic: the replayed event's only
        assert upsert.properties["b"].value == 2
        policy = MergePolicy(settings.priorities())
        expected = canon(expected_profiles([first, second], policy))
        assert canon(changelog_profiles(settings, policy)) == expected
    finally:
        assert worker.stop() == 0, log.read_text()[-3000:]
