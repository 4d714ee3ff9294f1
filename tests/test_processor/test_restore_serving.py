"""A worker serves each partition as soon as its restore from the changelog is done, while
other partitions are still restoring."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any, cast

import orjson

from streams.kafka.partitioner import partition_for
from streams.processor.runner import WorkerService
from streams.state import restore
from streams.testing import produce_events, wait_until

T0 = 1_700_000_000


def get_json(url: str) -> tuple[int, dict[str, object], str | None]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read()), None
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), exc.headers.get("Retry-After")


def test_a_restored_partition_answers_while_another_still_restores(
    streams_settings, start_worker, monkeypatch, tmp_path
) -> None:
    settings = streams_settings()
    customers = [f"c-{index}" for index in range(40)]
    first = start_worker(settings)
    produce_events(
        settings,
        [
            {"customer_id": c, "source": "crm", "update_timestamp": T0, "properties": {"n": c}}
            for c in customers
        ],
    )
    wait_until(lambda: first.worker is not None and first.worker.totals.events_in >= 40)
    first.stop()

    slow = partition_for(b"c-1", settings.partitions)
    fast = next(c for c in customers if partition_for(c.encode(), settings.partitions) != slow)
    gate = threading.Event()
    real_restore = restore._restore

    def gated(reader: Any, settings: Any, stores: Any, partition: int, *args: Any) -> int:
        if partition == slow:
            assert gate.wait(60), "the test never opened the gate"
        return real_restore(reader, settings, stores, partition, *args)

    monkeypatch.setattr(restore, "_restore", gated)
    replica = WorkerService(settings.model_copy(update={"data_dir": tmp_path / "replica"}))
    replica.start()
    try:
        wait_until(lambda: get_json(f"{replica.url}/customers/{fast}")[0] == 200, timeout=60)
        assert get_json(f"{replica.url}/customers/{fast}")[1] == {"properties": {"n": fast}}
        status, body, retry_after = get_json(f"{replica.url}/customers/c-1")
        assert (status, body["reason"], retry_after) == (503, "partition_moving", "1")
        _, health, _ = get_json(f"{replica.url}/health")
        assert cast(list[int], health["partitions"]) == list(range(settings.partitions))
        assert replica.worker is not None
        assert not replica.worker.wait_assigned(0)
        # Readiness (a rolling update's gate) waits for every partition.
        assert get_json(f"{replica.url}/ready")[:2] == (503, {"ready": False, "state": "restoring"})

        gate.set()
        wait_until(lambda: get_json(f"{replica.url}/customers/c-1")[0] == 200, timeout=60)
        wait_until(lambda: get_json(f"{replica.url}/ready")[0] == 200, timeout=30)
        assert get_json(f"{replica.url}/customers/c-1")[1] == {"properties": {"n": "c-1"}}
        assert replica.worker.wait_assigned(30)
        assert replica.owned_partitions == frozenset(range(settings.partitions))
    finally:
        gate.set()
        replica.stop()
