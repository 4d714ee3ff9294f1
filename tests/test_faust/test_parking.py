"""The Faust engine parks what Kafka refuses as the default engine does
(tests/test_processor/test_poison.py, the same input): the refused output's input goes to the
DLQ with the refusal's reason and is not merged, a dead letter the DLQ topic refuses is cut
further, states are capped to what the changelog topic takes, and the partition goes on."""

from __future__ import annotations

import base64
import random
import urllib.request

import orjson
import pytest

from streams.testing import read_topic, read_upserts, wait_until
from tests.test_faust.test_engine import answers
from tests.test_processor.cluster import caught_up, spawn_worker
from tests.test_processor.test_poison import (
    GOOD,
    assert_consistent,
    event,
    limited_topics,
    padded_event,
    produce,
)

pytestmark = pytest.mark.slow


def rejected(url: str) -> dict[str, float]:
    """streams_events_rejected_total by reason, from the worker's /metrics."""
    prefix = 'streams_events_rejected_total{reason="'
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    return {
        line[len(prefix) :].split('"')[0]: float(line.split()[-1])
        for line in lines
        if line.startswith(prefix)
    }


def test_outputs_and_dead_letters_kafka_refuses_are_parked_and_the_partition_goes_on(
    streams_settings, kafka_bootstrap, tmp_path
):
    """The upserts topic refuses an upsert and the DLQ topic a full-size dead letter (their
    max.message.bytes below the producer's): the event is parked, the letter cut further."""
    limits = {"upserts_topic": 60_000, "dlq_topic": 200_000}
    settings = streams_settings(produce_attempts=2, **limited_topics(kafka_bootstrap, limits))
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, tmp_path / "w", log, engine="faust")
    try:
        wait_until(lambda: answers(worker.url), timeout=90)
        # Valid (< max_event_bytes) and its upsert > 60 kB even compressed.
        note = base64.b64encode(random.Random(1).randbytes(120_000)).decode()
        wide = event("c-1", 1, note=note)
        good = [event("c-1", i) for i in range(2, GOOD + 2)]
        produce(
            settings,
            "c-1",
            [orjson.dumps(good[0]), orjson.dumps(wide), padded_event("c-1", 999_950)]
            + [orjson.dumps(e) for e in good[1:]],
        )

        wait_until(lambda: worker.process.poll() is not None or caught_up(settings), timeout=120)
        assert worker.process.poll() is None, "the refusal must not stop the worker"
        upserts = read_upserts(settings)
        assert {u.properties["n"].value for u in upserts} == set(range(2, GOOD + 2))
        # Retried batches may repeat a letter (at least once); each input offset has one kind.
        letters = {
            int(r.headers["dlq.offset"]): r for r in read_topic(settings, settings.dlq_topic)
        }
        assert sorted(letters) == [1, 2]
        parked = letters[1].headers
        assert parked["dlq.reason"] == b"output_too_large"
        assert settings.upserts_topic.encode() in parked["dlq.detail"]
        assert letters[1].value == orjson.dumps(wide), "parked whole: it fits the DLQ"
        cut = letters[2].headers
        assert cut["dlq.reason"] == b"too_large"
        assert cut["dlq.truncated"] == b"true"
        assert cut["dlq.original_bytes"] == b"999950"
        assert 0 < len(letters[2].value or b"") < 16 * 1024
        # The parked event is in neither the state nor the upserts: a replay rebuilds it.
        assert_consistent(settings, good)
        assert rejected(worker.url) == {"output_too_large": 1.0, "too_large": 1.0}
    finally:
        assert worker.stop() == 0, log.read_text()[-3000:]


def test_states_are_capped_to_what_the_changelog_topic_takes(
    streams_settings, kafka_bootstrap, tmp_path
):
    """The changelog takes 60 kB records: an event that would grow a state past that (less
    headroom) goes to the DLQ before its upsert is sent, so state and upserts stay equal."""
    settings = streams_settings(**limited_topics(kafka_bootstrap, {"changelog_topic": 60_000}))
    log = tmp_path / "worker.log"
    worker = spawn_worker(settings, tmp_path / "w", log, engine="faust")
    try:
        wait_until(lambda: answers(worker.url), timeout=90)
        noise = random.Random(7)
        wide = [
            event("c-1", i, **{f"w{i}": base64.b64encode(noise.randbytes(19_000)).decode()})
            for i in range(1, 4)
        ]  # 25 kB each: the second would make a 50 kB state, the third 75 kB (refused)
        good = [event("c-1", i) for i in range(10, 10 + GOOD)]
        produce(settings, "c-1", [orjson.dumps(e) for e in [*wide, *good]])

        wait_until(lambda: worker.process.poll() is not None or caught_up(settings), timeout=120)
        assert worker.process.poll() is None
        assert rejected(worker.url) == {"profile_too_large": 2.0}
        letters = read_topic(settings, settings.dlq_topic)
        assert sorted(int(r.headers["dlq.offset"]) for r in letters) == [1, 2]
        assert_consistent(settings, [wide[0], *good])
    finally:
        assert worker.stop() == 0, log.read_text()[-3000:]


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
