"""`streams export` writes exactly the processor's state, in JSONL and CSV."""

from __future__ import annotations

import csv
import threading

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.errors import StoppedError
from streams.export import export_profiles
from streams.merge import MergePolicy
from streams.processor.runner import WorkerService
from streams.testing import produce_events, wait_until
from tests.test_processor.cluster import expected_profiles, workload


def run_processor(settings, events) -> None:
    service = WorkerService(settings)
    service.start()
    try:
        assert service.worker is not None
        assert service.worker.wait_assigned(60)
        produce_events(settings, events)
        worker = service.worker
        wait_until(lambda: worker.totals.events_in >= len(events), timeout=120)
    finally:
        service.stop()


def test_jsonl_export_equals_the_merge_of_every_event(streams_settings, tmp_path):
    settings = streams_settings(source_priority=["crm", "web"])
    events = workload(3000, 300, seed=11)
    run_processor(settings, events)
    output = tmp_path / "profiles.jsonl"
    summary = export_profiles(settings, "jsonl", include_timestamps=True, output=output)

    expected = expected_profiles(events, MergePolicy(settings.priorities()))
    want = {
        customer: {
            name: {"value": s.value, "last_update": s.last_update // 1000}
            for name, s in sorted(profile.properties.items())
            if s.value is not None
        }
        for customer, profile in expected.items()
    }
    want = {customer: props for customer, props in want.items() if props}
    lines = [orjson.loads(line) for line in output.read_text().splitlines()]
    assert {line["customer_id"]: line["properties"] for line in lines} == want
    assert summary.profiles == len(want)
    assert not list(tmp_path.glob(".*.tmp")), "the temp file was renamed into place"


def test_csv_export_through_the_command_line(streams_settings, tmp_path):
    settings = streams_settings()
    run_processor(
        settings,
        [
            {
                "customer_id": "c-1",
                "source": "crm",
                "update_timestamp": 1700000000,
                "properties": {"city": "Brno", "vip": True},
            },
            {
                "customer_id": "c-2",
                "source": "crm",
                "update_timestamp": 1700000001,
                "properties": {"score": 7},
            },
        ],
    )
    output = tmp_path / "profiles.csv"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_CHANGELOG_TOPIC": settings.changelog_topic,
    }
    result = CliRunner().invoke(
        app, ["export", "--format", "csv", "--include-timestamps", "--output", str(output)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "exported 2 profiles" in result.output
    rows = sorted(csv.DictReader(output.open()), key=lambda row: row["customer_id"])
    assert rows == [
        {
            "customer_id": "c-1",
            "city": "Brno",
            "city_last_update": "1700000000",
            "score": "",
            "score_last_update": "",
            "vip": "true",
            "vip_last_update": "1700000000",
        },
        {
            "customer_id": "c-2",
            "city": "",
            "city_last_update": "",
            "score": "7",
            "score_last_update": "1700000001",
            "vip": "",
            "vip_last_update": "",
        },
    ]


def test_a_stopped_export_ends_early_and_leaves_no_file(streams_settings, tmp_path):
    """What a stopping jobs service asks of a running export: no partial file as the output."""
    settings = streams_settings()
    run_processor(settings, workload(6000, 3000, seed=12))
    for fmt in ("jsonl", "csv"):
        stop = threading.Event()
        output = tmp_path / f"profiles.{fmt}"
        seen: list[int] = []

        def stop_at_first_progress(
            read: int, stop: threading.Event = stop, seen: list[int] = seen
        ) -> None:
            seen.append(read)
            stop.set()

        with pytest.raises(StoppedError, match="stopped after 2,000 changelog records"):
            export_profiles(
                settings, fmt, output=output, on_progress=stop_at_first_progress, stop=stop
            )
        assert seen == [1000]
        assert not output.exists()
        assert not list(tmp_path.glob(".*.tmp")), "the temp file was removed"
        with pytest.raises(StoppedError, match="after 0 changelog records"):
            export_profiles(settings, fmt, output=output, stop=stop)  # stopped before it began
    summary = export_profiles(settings, "jsonl", output=output, stop=threading.Event())
    assert summary.records_read > 2000
    assert output.exists()


def _event(customer: str, timestamp: int, **properties: object) -> dict[str, object]:
    return {
        "customer_id": customer,
        "source": "crm",
        "update_timestamp": timestamp,
        "properties": properties,
    }


def test_a_small_topic_exports_every_current_profile_exactly_once(streams_settings):
    """A handful of customers over eight partitions (most of them empty), some written twice:
    each profile once, as it is now; a customer whose every property is unset is left out."""
    settings = streams_settings()
    run_processor(
        settings,
        [
            _event("c-1", 1700000000, city="Brno"),
            _event("c-2", 1700000000, score=7),
            _event("c-3", 1700000000, city="Praha"),
            _event("c-4", 1700000000, vip=True),
        ],
    )
    # A second run: its changelog records follow the first run's for the same customers.
    run_processor(
        settings,
        [
            _event("c-1", 1700000100, city="Ostrava", score=3),
            _event("c-3", 1700000100, city=None),
            _event("c-5", 1700000100, city="Olomouc"),
        ],
    )
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_CHANGELOG_TOPIC": settings.changelog_topic,
    }
    result = CliRunner().invoke(app, ["export"], env=env)
    assert result.exit_code == 0, result.output
    exported = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert sorted(exported, key=lambda line: line["customer_id"]) == [
        {"customer_id": "c-1", "properties": {"city": "Ostrava", "score": 3}},
        {"customer_id": "c-2", "properties": {"score": 7}},
        {"customer_id": "c-4", "properties": {"vip": True}},
        {"customer_id": "c-5", "properties": {"city": "Olomouc"}},
    ]
