"""One record never stops a partition: too large for its dead letter, or refused by Kafka.

Each poison record is followed by good events of the same customer (so the same partition);
all of them must be applied, the poison one dead-lettered with its reason.
"""

from __future__ import annotations

import base64
import random
import uuid

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.merge import MergePolicy
from streams.testing import read_topic, read_upserts, wait_until
from tests.conftest import TEST_PARTITIONS
from tests.test_processor.cluster import (
    canon,
    changelog_profiles,
    expected_profiles,
    replayed_profiles,
)

T0 = 1_700_000_000
GOOD = 40
# A default librdkafka producer sends the first; the second is near the broker's own limit
# (message.max.bytes 1048588), both beyond what a dead letter with headers may be (1000000).
SIZES = [999_950, 1_048_000]
BIG_PRODUCER = {"message.max.bytes": 2_000_000, "compression.type": "none", "linger.ms": 20}


def event(customer: str, index: int, **properties: object) -> dict[str, object]:
    return {
        "customer_id": customer,
        "source": "crm",
        "update_timestamp": T0 + index,
        "event_id": f"e{index}",
        "properties": properties or {"n": index},
    }


def padded_event(customer: str, size: int) -> bytes:
    """A JSON event of exactly ``size`` bytes (far over max_event_bytes), incompressible."""
    head = orjson.dumps(event(customer, 0, note=""))[:-3]  # ...,"note":""}} minus '"}}'
    room = size - len(head) - 3
    noise = base64.b64encode(random.Random(size).randbytes(room))[:room]  # lz4 cannot shrink it
    return head + noise + b'"}}'


def produce(settings, customer: str, values: list[bytes]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "partitioner": "murmur2_random",
            **BIG_PRODUCER,
        }
    )
    failures: list[str] = []
    for value in values:
        producer.produce(
            settings.input_topic,
            value,
            customer.encode(),
            on_delivery=lambda err, _msg: failures.append(err.str()) if err else None,
        )
    assert producer.flush(60) == 0
    assert failures == []


def limited_topics(kafka_bootstrap: str, limits: dict[str, int]) -> dict[str, str]:
    """Create topics (by settings field) whose max.message.bytes is below the producers'."""
    names = {field: f"{field}-{uuid.uuid4().hex[:8]}" for field in limits}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(names[field], TEST_PARTITIONS, 1, config={"max.message.bytes": str(limit)})
            for field, limit in limits.items()
        ]
    )
    for future in futures.values():
        future.result(timeout=30)
    return names


def applied_or_dead(worker, count: int):
    """Until ``count`` events are applied, or the worker died (as it did of a poison record)."""

    def check() -> bool:
        try:
            return not worker.alive or worker.totals().applied >= count
        except OSError:  # stopping
            return not worker.alive

    return check


def assert_consistent(settings, events: list[dict[str, object]]) -> None:
    """State (changelog) and a replay of profile-upserts both equal the merge of ``events``."""
    policy = MergePolicy(settings.priorities())
    expected = canon(expected_profiles(events, policy))
    assert canon(changelog_profiles(settings, policy)) == expected
    assert canon(replayed_profiles(settings, policy)) == expected


@pytest.mark.parametrize("size", SIZES)
def test_a_record_too_large_for_its_dead_letter_is_truncated_and_the_partition_goes_on(
    streams_settings, engine_worker, size
):
    settings = streams_settings()
    worker = engine_worker.start(settings)
    good = [event("c-1", i) for i in range(1, GOOD + 1)]
    produce(settings, "c-1", [padded_event("c-1", size), *map(orjson.dumps, good)])

    wait_until(applied_or_dead(worker, GOOD), timeout=120)
    assert worker.alive, worker.log_tail()
    upserts = read_upserts(settings)
    assert {u.properties["n"].value for u in upserts} == set(range(1, GOOD + 1))
    [letter] = read_topic(settings, settings.dlq_topic)
    assert letter.headers["dlq.reason"] == b"too_large"
    assert letter.headers["dlq.truncated"] == b"true"
    assert letter.headers["dlq.original_bytes"] == str(size).encode()
    assert letter.headers["dlq.offset"] == b"0"
    assert letter.key == b"c-1"
    assert letter.value is not None
    assert padded_event("c-1", size).startswith(letter.value)
    assert len(letter.value) > 990_000
    assert_consistent(settings, good)


def test_outputs_and_dead_letters_kafka_refuses_are_parked_and_the_partition_goes_on(
    streams_settings, engine_worker, kafka_bootstrap
):
    """The upserts topic refuses an upsert and the DLQ topic a full-size dead letter (their
    max.message.bytes below the producer's): the event is parked, the letter cut further."""
    limits = {"upserts_topic": 60_000, "dlq_topic": 200_000}
    settings = streams_settings(produce_attempts=2, **limited_topics(kafka_bootstrap, limits))
    worker = engine_worker.start(settings)
    # Valid (< max_event_bytes) and its upsert > 60 kB even compressed.
    wide = event("c-1", 1, note=base64.b64encode(random.Random(1).randbytes(120_000)).decode())
    good = [event("c-1", i) for i in range(2, GOOD + 2)]
    produce(
        settings,
        "c-1",
        [orjson.dumps(good[0]), orjson.dumps(wide), padded_event("c-1", 999_950)]
        + [orjson.dumps(e) for e in good[1:]],
    )

    wait_until(applied_or_dead(worker, GOOD), timeout=120)
    assert worker.alive, worker.log_tail()
    upserts = read_upserts(settings)
    assert {u.properties["n"].value for u in upserts} == set(range(2, GOOD + 2))
    # Retried batches may repeat a letter (at least once); each input offset has one kind.
    letters = {int(r.headers["dlq.offset"]): r for r in read_topic(settings, settings.dlq_topic)}
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
    # The parked event is in neither the state nor the upserts: a replay rebuilds the state.
    assert_consistent(settings, good)
    assert worker.totals().rejected == {"output_too_large": 1, "too_large": 1}


def test_states_are_capped_to_what_the_changelog_topic_takes(
    streams_settings, engine_worker, kafka_bootstrap
):
    """The changelog takes 60 kB records: an event that would grow a state past that (less
    headroom) goes to the DLQ before its upsert is sent, so state and upserts stay equal."""
    limits = {"changelog_topic": 60_000}
    settings = streams_settings(**limited_topics(kafka_bootstrap, limits))
    worker = engine_worker.start(settings)
    noise = random.Random(7)
    wide = [
        event("c-1", i, **{f"w{i}": base64.b64encode(noise.randbytes(19_000)).decode()})
        for i in range(1, 4)
    ]  # 25 kB each: the second would make a 50 kB state, the third 75 kB (refused)
    good = [event("c-1", i) for i in range(10, 10 + GOOD)]
    produce(settings, "c-1", [orjson.dumps(e) for e in [*wide, *good]])

    wait_until(applied_or_dead(worker, GOOD + 1), timeout=120)
    assert worker.alive, worker.log_tail()
    assert worker.totals().rejected == {"profile_too_large": 2}
    letters = read_topic(settings, settings.dlq_topic)
    assert sorted(int(r.headers["dlq.offset"]) for r in letters) == [1, 2]
    assert_consistent(settings, [wide[0], *good])
