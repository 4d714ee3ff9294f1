"""``streams worker --engine faust`` on the real broker, where it differs from the default
engine or is compared with it: for the same input it writes what the default engine writes
(upserts, stale records, dead letters, changelog states, decoded and compared) and answers
alike; a changelog partitioned unlike the input stops it; a refused output stops it without a
commit. The contract both engines keep (restarts, kill -9, replicas, bad input, queries) is
tested once for both, by the ``engine_worker`` fixture (tests/test_processor and others)."""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

import orjson
import pytest

from streams.codecs.upserts import UpsertCodec
from streams.merge import MergePolicy
from streams.settings import Settings
from streams.testing import produce_events, read_topic, wait_until
from tests.test_processor.cluster import (
    WorkerProcess,
    canon,
    caught_up,
    changelog_profiles,
    spawn_worker,
    workload,
)

pytestmark = pytest.mark.slow

PRIORITY = ["crm", "web"]
T0 = 1_700_000_000
# Headers that name the topic set or the moment, not the decision.
RUN_HEADERS = frozenset({"dlq.topic", "dlq.timestamp"})


def fetch(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=10
        ) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def answers(url: str, token: str | None = None) -> bool:
    """The worker serves queries: it owns partitions (an unknown customer is a 404)."""
    try:
        return fetch(f"{url}/customers/probe", token)[0] == 404
    except (OSError, ValueError):  # not listening yet, or not the query API's answer yet
        return False


COUNTERS = (
    "streams_events_in_total",
    "streams_events_applied_total",
    "streams_events_stale_total",
    "streams_stale_writes_total",
    "streams_upserts_out_total",
    "streams_events_rerouted_total",
)


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in {url}/metrics")


def mixed_input(seed: int) -> list[Any]:
    """Out of order, duplicated, stale and malformed."""
    rnd = random.Random(seed)
    events: list[Any] = list(workload(1500, 120, seed=seed))
    events += rnd.sample(events, 300)  # duplicates
    rnd.shuffle(events)
    future = time.time() + 86_400
    events += [
        {
            "customer_id": "solo",
            "source": "crm",
            "update_timestamp": T0 + 50,
            "properties": {"city": "Brno"},
        },
        {  # stale against the one above
            "customer_id": "solo",
            "source": "web",
            "update_timestamp": T0 + 10,
            "properties": {"city": "Praha", "vip": True},
        },
        orjson.dumps({"customer_id": "c-2", "source": "web", "properties": {"a": [1]}}),
        orjson.dumps(
            {"customer_id": "c-3", "source": "web", "update_timestamp": future, "properties": {}}
        ),
        # Keyless, so last: the producer picks their partitions (and the offsets after them).
        b'{"customer_id": "c-1", "source": "web", "properties": {',
        b"not json at all",
    ]
    return events


def produce_misplaced(settings: Settings) -> None:
    """A customer's event on another partition than its own, as a producer with another
    partitioner would put it: the processor moves it home."""
    from confluent_kafka import Producer

    from streams.kafka.partitioner import partition_for

    home = partition_for(b"moved", settings.partitions)
    event = {"customer_id": "moved", "source": "web", "update_timestamp": T0, "properties": {}}
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    producer.produce(
        settings.input_topic,
        orjson.dumps(event),
        b"moved",
        partition=(home + 1) % settings.partitions,
        timestamp=T0 * 1000 + 123,
        headers=[("trace", b"t-1")],
    )
    assert producer.flush(30) == 0


def topic_contents(settings: Settings) -> dict[str, Any]:
    """Every output topic decoded, with what differs between two runs of one input taken
    out: the processing time, the topic names, the input's timestamps."""
    codec = UpsertCodec(settings.output_format)
    upserts: dict[int, list[Any]] = defaultdict(list)
    for record in read_topic(settings, settings.upserts_topic):
        assert record.value is not None
        upsert = codec.decode(record.value)
        upserts[record.partition].append(upsert._replace(processed_at=0))
    stale: dict[int, list[Any]] = defaultdict(list)
    for record in read_topic(settings, settings.stale_topic):
        decoded = orjson.loads(record.value or b"")
        decoded.pop("processed_at")
        stale[record.partition].append((record.key, decoded))
    letters = []
    for record in read_topic(settings, settings.dlq_topic):
        assert record.headers["dlq.topic"] == settings.input_topic.encode()
        headers = {k: v for k, v in record.headers.items() if k not in RUN_HEADERS}
        if record.key is None:  # a keyless record's partition is the producer's choice
            headers = {k: v for k, v in headers.items() if k not in ("dlq.partition", "dlq.offset")}
        letters.append((record.key, record.value, sorted(headers.items())))
    rerouted = [
        (r.partition, r.key, r.value, sorted(r.headers.items()))
        for r in read_topic(settings, settings.input_topic)
        if "rerouted.from" in r.headers
    ]
    return {
        "rerouted": rerouted,
        "upserts": dict(upserts),
        "stale": dict(stale),
        "dlq": sorted(letters, key=repr),
        "states": canon(changelog_profiles(settings, MergePolicy(settings.priorities()))),
    }


@pytest.mark.parametrize("kernel", ["native", "python"])
def test_the_faust_engine_writes_what_the_default_engine_writes_and_answers_alike(
    streams_settings, start_worker, tmp_path, kernel
):
    """Each kernel in both engines (the kernels word some DLQ details differently)."""
    events = mixed_input(seed=11)
    default = streams_settings(source_priority=PRIORITY, batch_max_events=200, kernel=kernel)
    faust = streams_settings(source_priority=PRIORITY, batch_max_events=200, kernel=kernel)
    service = start_worker(default)
    worker = spawn_worker(faust, tmp_path / "faust", tmp_path / "faust.log", engine="faust")
    try:
        wait_until(lambda: answers(worker.url), timeout=90)
        for settings in (default, faust):
            produce_events(settings, events)
            produce_misplaced(settings)
        wait_until(lambda: caught_up(default) and caught_up(faust), timeout=180)

        expected = topic_contents(default)
        assert expected["upserts"]
        assert expected["stale"]
        assert len(expected["dlq"]) == 4
        assert len(expected["rerouted"]) == 1
        assert topic_contents(faust) == expected

        for customer in ("solo", "c-7", "c-42", "nobody"):
            for query in ("", "?include_timestamps=1"):
                path = f"/customers/{customer}{query}"
                assert fetch(worker.url + path) == fetch(service.url + path), path
        assert fetch(f"{worker.url}/health") == (
            200,
            {"status": "ok", "worker": worker.url, "partitions": list(range(faust.partitions))},
        )
        for counter in COUNTERS:
            assert metric(worker.url, counter) == metric(service.url, counter), counter
        assert metric(worker.url, "streams_events_in_total") == len(events) + 2  # + moved
        assert fetch(f"{worker.url}/customers/solo")[1] == {
            "properties": {"city": "Brno", "vip": True}
        }
    finally:
        assert worker.stop() == 0, worker.log.read_text()[-3000:]


def test_a_changelog_partitioned_unlike_the_input_stops_the_worker_before_it_starts(
    streams_settings, tmp_path
):
    from streams.kafka.topics import ensure_topic

    settings = streams_settings()
    other = settings.model_copy(
        update={"changelog_topic": f"{settings.changelog_topic}-x", "partitions": 2}
    )
    ensure_topic(other, other.changelog_topic)
    wrong = settings.model_copy(update={"changelog_topic": other.changelog_topic})
    worker: WorkerProcess = spawn_worker(wrong, tmp_path / "w", tmp_path / "w.log", engine="faust")
    code = worker.process.wait(120)
    output = worker.log.read_text()
    assert code != 0
    assert f"topic {other.changelog_topic} has 2 partitions" in output
