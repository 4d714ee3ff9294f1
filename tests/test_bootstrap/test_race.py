"""Bloomreach's race, for real: a slow snapshot bootstrap while live updates flow.

The import starts at 8:00 and ends at 10:00; real-time tracking updates a property at 9:00.
With a processor worker of either engine running, every live update fresher than the snapshot
survives the snapshot rows that arrive after it, live updates older than the snapshot lose to
it, and every other property takes the snapshot's value.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import orjson

from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.open_source import open_source
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import JobReport, Status
from streams.testing import produce_events, read_topic, wait_until
from tests.test_bootstrap.bootstrap_helpers import mapping_of

CUSTOMERS = 60
OLD_LIVE = range(0, 10)  # tracked an hour before the snapshot was read
FRESH_LIVE = range(20, 40)  # tracked while the bootstrap runs, before their rows arrive
ROWS_PER_SECOND = 20


def profile(url: str, customer_id: str) -> dict[str, dict[str, object]]:
    with urllib.request.urlopen(f"{url}/customers/{customer_id}?include_timestamps=1") as answer:
        body: dict[str, dict[str, dict[str, object]]] = orjson.loads(answer.read())
    return body["properties"]


def test_fresher_live_updates_survive_an_older_slow_bootstrap(
    streams_settings, engine_worker, write_csv, tmp_path: Path
) -> None:
    settings = streams_settings()
    worker = engine_worker.start(settings)
    rows = [
        [f"c-{n}", f"Name{n}", f"u{n}@example.com", str(n), f"SnapCity{n}"]
        for n in range(CUSTOMERS)
    ]
    path = write_csv(["id", "name", "email", "age", "city"], rows)
    mapping = mapping_of(
        properties=[
            {"from_column": "name", "to_property": "first_name"},
            {"from_column": "email", "to_property": "email"},
            {"from_column": "city", "to_property": "city"},
        ]
    )
    hour_ago = time.time() - 3600
    produce_events(
        settings,
        [
            {"customer_id": f"c-{n}", "source": "web", "update_timestamp": hour_ago,
             "properties": {"city": f"OldLive{n}"}}
            for n in OLD_LIVE
        ],
    )  # fmt: skip

    job = BootstrapJob(
        settings,
        mapping,
        lambda since: open_source(str(path)),
        JobOptions(job_id="race", checkpoint_dir=tmp_path / "cp", max_rate=ROWS_PER_SECOND),
    )
    reports: list[JobReport] = []
    runner = threading.Thread(target=lambda: reports.append(job.run()), name="bootstrap")
    runner.start()
    wait_until(lambda: job.stats.produced >= 5, timeout=60)
    produced_before_live = job.stats.produced
    live_sent_at = time.time()
    produce_events(
        settings,
        [
            {"customer_id": f"c-{n}", "source": "web", "update_timestamp": live_sent_at,
             "properties": {"city": f"LiveCity{n}", "last_seen": "app"}}
            for n in FRESH_LIVE
        ],
    )  # fmt: skip
    produced_after_live = job.stats.produced  # rows from here on were sent after the live ones
    runner.join(120)
    assert not runner.is_alive()
    (report,) = reports
    assert report.status is Status.COMPLETED
    # The race really happened: the live updates went out before those customers' rows.
    assert produced_before_live < FRESH_LIVE.start
    assert produced_after_live < FRESH_LIVE.stop - 5
    assert job.snapshot_ms is not None
    assert job.snapshot_ms < live_sent_at * 1000
    expected_events = CUSTOMERS + len(OLD_LIVE) + len(FRESH_LIVE)
    wait_until(lambda: worker.processed(expected_events), timeout=60)

    snapshot_seconds = job.snapshot_ms / 1000
    for n in range(CUSTOMERS):
        properties = profile(worker.url, f"c-{n}")
        assert properties["first_name"] == {"value": f"Name{n}", "last_update": snapshot_seconds}
        assert properties["email"]["value"] == f"u{n}@example.com"
        if n in FRESH_LIVE:
            assert properties["city"]["value"] == f"LiveCity{n}", n
            assert properties["city"]["last_update"] == round(live_sent_at * 1000) / 1000
            assert properties["last_seen"]["value"] == "app"
        else:
            assert properties["city"] == {"value": f"SnapCity{n}", "last_update": snapshot_seconds}

    # Snapshot rows that arrived after a fresher live value were dropped, and audited.
    stale = [orjson.loads(r.value or b"{}") for r in read_topic(settings, settings.stale_topic)]
    dropped = {(s["customer_id"], s["property"], s["source"], s["reason"]) for s in stale}
    after = range(max(produced_after_live, FRESH_LIVE.start), FRESH_LIVE.stop)
    assert {(f"c-{n}", "city", "bootstrap", "older") for n in after} <= dropped
    assert {s["customer_id"] for s in stale} <= {f"c-{n}" for n in FRESH_LIVE}
