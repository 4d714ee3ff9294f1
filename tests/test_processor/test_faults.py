"""Restarts, kill -9 and replicas: the state always equals the merge of every event."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from streams.merge import MergePolicy
from streams.testing import produce_events, read_upserts, wait_until
from tests.test_processor.cluster import (
    canon,
    caught_up,
    changelog_profiles,
    expected_profiles,
    replayed_profiles,
    spawn_worker,
    workload,
)

pytestmark = pytest.mark.slow

PRIORITY = ["crm", "web"]
TOKEN = "replica-token"


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
    streams_settings, start_worker, tmp_path
):
    settings = streams_settings(web_port=0, source_priority=PRIORITY)
    events = workload(2000, 200, seed=1)
    first = start_worker(settings)
    produce_events(settings, events)
    wait_until(lambda: caught_up(settings), timeout=120)
    answer = fetch(f"{first.url}/customers/c-1?include_timestamps=1")
    first.stop()
    upserts_before = len(read_upserts(settings))

    again = start_worker(settings)  # same data dir
    assert fetch(f"{again.url}/customers/c-1?include_timestamps=1") == (*answer[:2], None)
    again.stop()
    assert len(read_upserts(settings)) == upserts_before, "nothing was re-emitted"

    rebuilt = start_worker(settings.model_copy(update={"data_dir": tmp_path / "fresh"}))
    assert fetch(f"{rebuilt.url}/customers/c-1?include_timestamps=1")[:2] == answer[:2]
    assert_state_matches(settings, events)


def test_kill_9_mid_stream_then_restart_loses_no_accepted_change(streams_settings, tmp_path):
    settings = streams_settings(source_priority=PRIORITY, batch_max_events=500)
    events = workload(30_000, 1000, seed=2)
    worker = spawn_worker(settings, tmp_path / "w", tmp_path / "worker.log")
    try:
        wait_until(lambda: worker.process.poll() is None and _answers(worker.url), timeout=60)
        produce_events(settings, events)
        wait_until(lambda: worker.metric("streams_events_in_total") > 3000, timeout=120)
        worker.kill9()
        assert not caught_up(settings), "the kill must land mid-stream"
        worker = spawn_worker(settings, tmp_path / "w", tmp_path / "worker.log")
        wait_until(lambda: caught_up(settings), timeout=240)
        assert_state_matches(settings, events)
        status, body, _ = fetch(f"{worker.url}/customers/c-7")
        expected = expected_profiles(events, MergePolicy(settings.priorities()))["c-7"]
        assert status == 200
        assert body["properties"] == {
            n: s.value for n, s in sorted(expected.properties.items()) if s.value is not None
        }
    finally:
        assert worker.stop() in (0, -9)


def test_two_replicas_share_partitions_route_queries_and_survive_a_kill(streams_settings, tmp_path):
    settings = streams_settings(source_priority=PRIORITY, batch_max_events=500, api_tokens=TOKEN)
    events = workload(30_000, 1000, seed=3)
    a = spawn_worker(settings, tmp_path / "a", tmp_path / "a.log")
    b = spawn_worker(settings, tmp_path / "b", tmp_path / "b.log")
    try:
        wait_until(lambda: _answers(a.url) and _answers(b.url), timeout=60)
        wait_until(lambda: bool(_owned(a.url) and _owned(b.url)), timeout=90)
        assert set(_owned(a.url)) | set(_owned(b.url)) == set(range(settings.partitions))
        produce_events(settings, events[:5000])
        wait_until(lambda: caught_up(settings), timeout=120)
        # Every customer answers on either worker; the owner serves it, the other routes (with
        # the caller's token: each worker runs `streams worker` with STREAMS_API_TOKENS).
        served_by = {fetch(f"{a.url}/customers/c-{i}", TOKEN)[2] for i in range(40)}
        assert served_by == {None, b.url}

        produce_events(settings, events[5000:])
        wait_until(lambda: b.metric("streams_events_in_total") > 8000, timeout=120)
        b.kill9()
        wait_until(lambda: caught_up(settings), timeout=240)
        assert sorted(_owned(a.url)) == list(range(settings.partitions))
        assert_state_matches(settings, events)
    finally:
        a.stop()
        b.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2):
            return True
    except OSError:
        return False


def _owned(url: str) -> list[int]:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
        partitions: list[int] = orjson.loads(response.read())["partitions"]
        return partitions


@pytest.mark.parametrize("engine", ["default", "faust"])
def test_worker_refuses_to_start_on_a_mis_partitioned_topic(streams_settings, tmp_path, engine):
    import subprocess
    import sys

    from tests.test_processor.cluster import free_port, settings_env

    settings = streams_settings()
    wrong = settings.model_copy(update={"partitions": settings.partitions * 2})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "worker",
            "--data-dir",
            str(tmp_path),
            "--web-port",
            str(free_port()),
            "--engine",
            engine,
        ],
        env=settings_env(wrong),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert settings.input_topic in result.stderr
    assert f"{settings.partitions} partitions" in result.stderr
    time.sleep(0)
