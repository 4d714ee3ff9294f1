"""Restarts, kill -9 and replicas, on each engine: the state always equals the merge of every
event, and any replica answers any customer."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from streams.kafka.partitioner import partition_for
from streams.merge import MergePolicy
from streams.testing import produce_events, read_upserts, wait_until
from tests.test_processor.cluster import (
    canon,
    caught_up,
    changelog_profiles,
    expected_profiles,
    replayed_profiles,
    workload,
)

pytestmark = pytest.mark.slow

PRIORITY = ["crm", "web"]
TOKEN = "replica-token"
UNAUTHORIZED = {"error": "missing or invalid credentials", "reason": "unauthorized"}


def fetch(url: str, token: str | None = None) -> tuple[int, dict[str, object], str | None]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=10
        ) as response:
            return (
                response.status,
                orjson.loads(response.read()),
                response.headers.get("X-Served-By"),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), None


def assert_state_matches(settings, events) -> None:
    policy = MergePolicy(settings.priorities())
    expected = canon(expected_profiles(events, policy))
    assert canon(changelog_profiles(settings, policy)) == expected
    assert canon(replayed_profiles(settings, policy)) == expected


def test_state_survives_restart_and_a_lost_data_dir_is_rebuilt(
    streams_settings, engine_worker, tmp_path
):
    settings = streams_settings(source_priority=PRIORITY)
    events = workload(2000, 200, seed=1)
    first = engine_worker.start(settings)
    produce_events(settings, events)
    wait_until(lambda: caught_up(settings), timeout=120)
    answer = fetch(f"{first.url}/customers/c-1?include_timestamps=1")
    assert answer[0] == 200
    assert first.stop() == 0, first.log_tail()
    upserts_before = len(read_upserts(settings))

    again = engine_worker.start(settings)  # same data dir; ready: its state is restored
    assert fetch(f"{again.url}/customers/c-1?include_timestamps=1") == (*answer[:2], None)
    assert again.stop() == 0, again.log_tail()
    assert len(read_upserts(settings)) == upserts_before, "nothing was re-emitted"

    rebuilt = engine_worker.start(settings, data_dir=tmp_path / "fresh")
    assert fetch(f"{rebuilt.url}/customers/c-1?include_timestamps=1") == (*answer[:2], None)
    assert_state_matches(settings, events)


def test_kill_9_mid_stream_then_restart_loses_no_accepted_change(streams_settings, engine_worker):
    settings = streams_settings(source_priority=PRIORITY, batch_max_events=500)
    events = workload(30_000, 1000, seed=2)
    worker = engine_worker.start(settings)
    produce_events(settings, events)
    wait_until(lambda: worker.totals().events_in > 3000, timeout=120)
    worker.kill9()
    assert not caught_up(settings), "the kill must land mid-stream"
    worker = engine_worker.start(settings)  # the same data dir, as left by the kill
    wait_until(lambda: caught_up(settings), timeout=240)
    assert_state_matches(settings, events)
    status, body, _ = fetch(f"{worker.url}/customers/c-7")
    expected = expected_profiles(events, MergePolicy(settings.priorities()))["c-7"]
    assert status == 200
    assert body["properties"] == {
        n: s.value for n, s in sorted(expected.properties.items()) if s.value is not None
    }


def test_two_replicas_share_partitions_route_queries_and_survive_a_kill(
    streams_settings, engine_worker, tmp_path
):
    settings = streams_settings(source_priority=PRIORITY, batch_max_events=500, api_tokens=TOKEN)
    events = workload(30_000, 1000, seed=3)
    a, b = engine_worker.start_pair(settings, tmp_path)
    produce_events(settings, events[:5000])
    wait_until(lambda: caught_up(settings), timeout=120)
    # Every customer answers on either worker; the owner serves it, the other routes (with
    # the caller's token, which both check).
    assert fetch(f"{a.url}/customers/c-1")[:2] == (401, UNAUTHORIZED)
    expected = expected_profiles(events[:5000], MergePolicy(settings.priorities()))
    on_b = set(b.partitions())
    for index in range(40):
        customer = f"c-{index}"
        values = {
            n: s.value
            for n, s in sorted(expected[customer].properties.items())
            if s.value is not None
        }
        owner = b.url if partition_for(customer.encode(), settings.partitions) in on_b else None
        for worker, served_by in ((a, owner), (b, None if owner else a.url)):
            answer = fetch(f"{worker.url}/customers/{customer}", TOKEN)
            assert answer == (200, {"properties": values}, served_by), (worker.url, customer)

    produce_events(settings, events[5000:])
    wait_until(lambda: b.totals().events_in > 3000, timeout=120)
    b.kill9()
    wait_until(lambda: caught_up(settings), timeout=240)
    wait_until(lambda: a.partitions() == list(range(settings.partitions)), timeout=60)
    assert_state_matches(settings, events)


def test_worker_refuses_to_start_on_a_mis_partitioned_topic(streams_settings, engine_worker):
    settings = streams_settings()
    wrong = settings.model_copy(update={"partitions": settings.partitions * 2})
    worker = engine_worker.start(wrong, wait=False)
    assert worker.process.process.wait(120) != 0
    output = worker.log.read_text()
    assert settings.input_topic in output
    assert f"{settings.partitions} partitions" in output
