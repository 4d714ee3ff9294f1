"""End to end on the real broker, on each engine: events in, upserts, stale audit and dead
letters out, and the query API's answers."""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request

import orjson
import pytest

from streams.codecs.events import encode_change_event_avro
from streams.merge import MergePolicy
from streams.model import Op
from streams.testing import produce_events, read_topic, read_upserts, wait_until
from tests.test_processor.cluster import (
    canon,
    caught_up,
    changelog_profiles,
    expected_profiles,
    replayed_profiles,
    workload,
)

T0 = 1_700_000_000


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_fresh_writes_emit_upserts_and_older_ones_are_audited_as_stale(
    streams_settings, engine_worker
):
    settings = streams_settings()
    worker = engine_worker.start(settings)
    events = [
        {
            "customer_id": "c-1",
            "source": "crm",
            "update_timestamp": T0 + 10,
            "properties": {"first_name": "Marian", "city": "Brno"},
        },
        {
            "customer_id": "c-1",
            "source": "import",
            "update_timestamp": T0,
            "properties": {"city": "Praha", "last_name": "Galik"},
        },
        {
            "customer_id": "c-1",
            "source": "crm",
            "update_timestamp": T0 + 10,
            "properties": {"first_name": "Marian", "city": "Brno"},
        },
    ]
    produce_events(settings, events)
    wait_until(lambda: worker.processed(3))

    upserts = read_upserts(settings)
    assert [u.source for u in upserts] == ["crm", "import"]
    assert [sorted(u.properties) for u in upserts] == [["city", "first_name"], ["last_name"]]
    assert upserts[1].properties["last_name"].last_update == T0 * 1000
    stale = [orjson.loads(r.value or b"") for r in read_topic(settings, settings.stale_topic)]
    assert [(s["property"], s["reason"]) for s in stale] == [
        ("city", "older"),
        ("first_name", "duplicate"),
        ("city", "duplicate"),
    ]
    assert worker.totals().stale_events == 1

    status, body = get_json(f"{worker.url}/customers/c-1")
    assert status == 200
    assert body == {"properties": {"city": "Brno", "first_name": "Marian", "last_name": "Galik"}}
    status, body = get_json(f"{worker.url}/customers/c-1?include_timestamps=1")
    assert body == {
        "properties": {
            "city": {"value": "Brno", "last_update": T0 + 10},
            "first_name": {"value": "Marian", "last_update": T0 + 10},
            "last_name": {"value": "Galik", "last_update": T0},
        }
    }
    assert get_json(f"{worker.url}/customers/nobody")[0] == 404

    def metrics() -> str:
        with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as response:
            return str(response.read().decode())

    wait_until(lambda: 'streams_partition_lag{partition="' in metrics())
    text = metrics()
    for line in (
        "streams_events_in_total 3.0",
        "streams_events_applied_total 2.0",
        "streams_events_stale_total 1.0",
        "streams_stale_writes_total 3.0",
        "streams_upserts_out_total 2.0",
    ):
        assert line in text


def test_bad_input_goes_to_the_dlq_with_its_reason_and_the_worker_keeps_going(
    streams_settings, engine_worker
):
    settings = streams_settings(max_event_bytes=1024)
    worker = engine_worker.start(settings)
    future = time.time() + 86_400
    bad = [
        b'{"customer_id": "c-2", "source": "web", "properties": {',
        orjson.dumps({"customer_id": "c-2", "source": "web", "properties": {"a": [1]}}),
        orjson.dumps(
            {
                "customer_id": "c-2",
                "source": "web",
                "update_timestamp": future,
                "properties": {"a": 1},
            }
        ),
        orjson.dumps({"customer_id": "c-2", "source": "web", "properties": {"a": "x" * 2000}}),
        b"\xc3\x01garbage-after-the-avro-marker",
    ]
    good = {"customer_id": "c-2", "source": "web", "update_timestamp": T0, "properties": {"a": 1}}
    produce_events(settings, [*bad, good])
    wait_until(lambda: worker.processed(len(bad) + 1))

    dead = read_topic(settings, settings.dlq_topic)
    # The DLQ keeps the original bytes, with the reason in a header.
    reasons = {r.value: r.headers["dlq.reason"].decode() for r in dead}
    assert reasons == dict(
        zip(
            bad,
            ["bad_json", "bad_type", "future_timestamp", "too_large", "unknown_schema"],
            strict=True,
        )
    )
    assert all(r.headers["dlq.topic"] == settings.input_topic.encode() for r in dead)
    assert [u.customer_id for u in read_upserts(settings)] == ["c-2"]
    assert worker.alive


def test_a_kafka_key_that_disagrees_with_customer_id_is_rejected(streams_settings, engine_worker):
    from confluent_kafka import Producer

    settings = streams_settings()
    worker = engine_worker.start(settings)
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "partitioner": "murmur2_random"}
    )
    event = {"customer_id": "c-3", "source": "web", "properties": {"a": 1}}
    producer.produce(settings.input_topic, orjson.dumps(event), b"c-other")
    producer.flush(10)
    wait_until(lambda: worker.processed(1))
    dead = read_topic(settings, settings.dlq_topic)
    assert [r.headers["dlq.reason"] for r in dead] == [b"key_mismatch"]


def test_avro_and_json_input_end_in_the_same_profile(streams_settings, engine_worker):
    settings = streams_settings()
    worker = engine_worker.start(settings)
    avro = encode_change_event_avro(
        {
            "customer_id": "c-4",
            "source": "crm",
            "op": "upsert",
            "update_timestamp": T0 + 5,
            "properties": {"vip": True, "score": 7, "ratio": 0.5, "city": None},
        }
    )
    json_event = {
        "customer_id": "c-5",
        "source": "crm",
        "update_timestamp": T0 + 5,
        "properties": {"vip": True, "score": 7, "ratio": 0.5, "city": None},
    }
    produce_events(settings, [avro, json_event])
    wait_until(lambda: worker.processed(2))
    by_customer = {u.customer_id: u for u in read_upserts(settings)}
    assert dict(by_customer["c-4"].properties) == dict(by_customer["c-5"].properties)
    assert get_json(f"{worker.url}/customers/c-4")[1] == {
        "properties": {"ratio": 0.5, "score": 7, "vip": True}
    }


def test_records_on_the_wrong_partition_are_moved_to_their_customer(
    streams_settings, engine_worker
):
    from confluent_kafka import Producer

    from streams.kafka.partitioner import partition_for

    settings = streams_settings()
    worker = engine_worker.start(settings)
    home = partition_for(b"c-6", settings.partitions)
    elsewhere = (home + 1) % settings.partitions
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for ts, city in ((T0 + 2, "Brno"), (T0 + 1, "Praha")):
        event = {
            "customer_id": "c-6",
            "source": "web",
            "update_timestamp": ts,
            "properties": {"city": city},
        }
        producer.produce(settings.input_topic, orjson.dumps(event), b"c-6", partition=elsewhere)
    producer.flush(10)
    wait_until(lambda: worker.processed(2))
    assert worker.totals().rerouted == 2
    upserts = read_topic(settings, settings.upserts_topic)
    assert {r.partition for r in upserts} == {home}
    assert get_json(f"{worker.url}/customers/c-6")[1] == {"properties": {"city": "Brno"}}


def test_delete_removes_the_profile_and_later_writes_start_a_new_one(
    streams_settings, engine_worker
):
    settings = streams_settings(output_format="json")
    worker = engine_worker.start(settings)
    produce_events(
        settings,
        [
            {
                "customer_id": "c-7",
                "source": "crm",
                "update_timestamp": T0,
                "properties": {"city": "Brno", "first_name": "Eva"},
            },
            {"customer_id": "c-7", "source": "crm", "op": "delete", "update_timestamp": T0 + 10},
            {
                "customer_id": "c-7",
                "source": "web",
                "update_timestamp": T0 + 5,
                "properties": {"city": "Late"},
            },
            {
                "customer_id": "c-7",
                "source": "web",
                "update_timestamp": T0 + 20,
                "properties": {"first_name": "New"},
            },
        ],
    )
    wait_until(lambda: worker.processed(4))
    upserts = read_upserts(settings)
    assert [u.op for u in upserts] == [Op.UPSERT, Op.DELETE, Op.UPSERT]
    assert upserts[1].deleted_at == (T0 + 10) * 1000
    raw = read_topic(settings, settings.upserts_topic)[1].value
    assert orjson.loads(raw or b"")["op"] == "DELETE", "output_format=json writes JSON upserts"
    assert get_json(f"{worker.url}/customers/c-7")[1] == {"properties": {"first_name": "New"}}


@pytest.mark.parametrize("fmt", ["avro"])
def test_upserts_are_avro_single_object_encoded_by_default(streams_settings, engine_worker, fmt):
    settings = streams_settings()
    worker = engine_worker.start(settings)
    produce_events(settings, [{"customer_id": "c-8", "source": "crm", "properties": {"a": 1}}])
    wait_until(lambda: worker.processed(1))
    (record,) = read_topic(settings, settings.upserts_topic)
    assert record.value is not None
    assert record.value[:2] == b"\xc3\x01"
    assert record.key == b"c-8"


def test_shuffled_and_duplicated_input_converges_to_the_merge_of_every_event(
    streams_settings, engine_worker
):
    """The merge is order-free and idempotent end to end: the state (changelog), a replay of
    the upserts and the query API all equal the merge of the events in their original order."""
    settings = streams_settings(source_priority=["crm", "web"], batch_max_events=200)
    worker = engine_worker.start(settings)
    events = workload(3000, 150, seed=21)
    rnd = random.Random(21)
    shuffled = events + rnd.sample(events, 1000)  # duplicates, anywhere
    rnd.shuffle(shuffled)
    produce_events(settings, shuffled)
    wait_until(lambda: caught_up(settings), timeout=120)

    policy = MergePolicy(settings.priorities())
    merged = expected_profiles(events, policy)
    assert canon(changelog_profiles(settings, policy)) == canon(merged)
    assert canon(replayed_profiles(settings, policy)) == canon(merged)
    for customer in ("c-0", "c-7", "c-149"):
        properties = {
            n: p.value
            for n, p in sorted(merged[customer].properties.items())
            if p.value is not None
        }
        assert get_json(f"{worker.url}/customers/{customer}") == (200, {"properties": properties})
