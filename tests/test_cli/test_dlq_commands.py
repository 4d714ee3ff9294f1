"""`streams dlq list|show|replay` and `streams topics tail` against the session's Kafka: dead
letters a real worker wrote, and letters made with the real dead-letter helpers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from streams.cli.main import app
from streams.codecs.events import encode_change_event_avro
from streams.kafka.clients import producer_config
from streams.kafka.dead_letters import MIN_LIMIT_BYTES, dead_letter_headers
from streams.kafka.output_records import OutputRecord, fitted_letter
from streams.settings import Settings
from streams.testing import produce_events, read_topic, wait_until

BAD_JSON = b'{"customer_id": "c-1", "source":'
UNKNOWN_FIELD = b'{"customer_id": "c-2", "source": "crm", "colour": "red"}'
EMAIL_ID = "marian.galik@example.com"
MISSING_SOURCE = orjson.dumps({"customer_id": EMAIL_ID, "properties": {"a": 1}})


def _env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_PARTITIONS": str(settings.partitions),
        "STREAMS_INPUT_TOPIC": settings.input_topic,
        "STREAMS_UPSERTS_TOPIC": settings.upserts_topic,
        "STREAMS_STALE_TOPIC": settings.stale_topic,
        "STREAMS_DLQ_TOPIC": settings.dlq_topic,
        "STREAMS_CHANGELOG_TOPIC": settings.changelog_topic,
    }


def _lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _produce(settings: Settings, records: list[OutputRecord]) -> None:
    producer = Producer(producer_config(settings))
    for r in records:
        headers: list[tuple[str, str | bytes | None]] = list(r.headers or [])
        producer.produce(r.topic, r.value, r.key, r.partition, headers=headers)
    assert producer.flush(30) == 0


@pytest.fixture
def rejected(streams_settings, start_worker):
    """A worker that dead-lettered three bad inputs (one keyed by an email)."""
    settings = streams_settings()
    service = start_worker(settings)
    produce_events(settings, [BAD_JSON, UNKNOWN_FIELD, MISSING_SOURCE])
    wait_until(lambda: len(read_topic(settings, settings.dlq_topic)) == 3)
    assert service.worker is not None
    return settings, service


def test_list_filters_and_masks_the_letters_a_worker_wrote(rejected):
    settings, _ = rejected
    runner = CliRunner(env=_env(settings))
    result = runner.invoke(app, ["dlq", "list", settings.dlq_topic, "--json"])
    assert result.exit_code == 0, result.output
    rows = _lines(result.stdout)
    assert sorted(row["reason"] for row in rows) == ["bad_json", "missing_source", "unknown_field"]
    for row in rows:
        assert row["source_topic"] == settings.input_topic
        assert isinstance(row["source_offset"], int)
        assert row["truncated"] is False
    assert EMAIL_ID not in result.stdout  # the key is masked in an overview
    assert {row["key"] for row in rows} == {None, "c-2", "m***@example.com"}  # bad JSON: no key
    assert "3 dead letters (bad_json=1, missing_source=1, unknown_field=1)" in result.stderr

    only = runner.invoke(
        app, ["dlq", "list", settings.dlq_topic, "--json", "--reason", "unknown_field"]
    )
    assert [row["key"] for row in _lines(only.stdout)] == ["c-2"]
    assert (
        _lines(
            runner.invoke(
                app, ["dlq", "list", settings.dlq_topic, "--json", "--since", "2099-01-01"]
            ).stdout
        )
        == []
    )
    recent = runner.invoke(
        app, ["dlq", "list", settings.dlq_topic, "--json", "--since", "1h", "--limit", "2"]
    )
    assert len(_lines(recent.stdout)) == 2

    table = runner.invoke(app, ["dlq", "list", settings.dlq_topic])
    assert table.exit_code == 0, table.output
    assert "unknown_field" in table.stdout
    assert "bad_json" in table.stdout
    assert "3 dead letters" in table.stdout

    missing = runner.invoke(app, ["dlq", "list", f"{settings.dlq_topic}-nope"])
    assert missing.exit_code == 2
    assert "not found" in missing.stderr
    bad_time = runner.invoke(app, ["dlq", "list", settings.dlq_topic, "--since", "yesterday"])
    assert bad_time.exit_code == 2


def test_show_labels_a_letter_and_decodes_its_original(rejected):
    settings, _ = rejected
    runner = CliRunner(env=_env(settings))
    rows = _lines(runner.invoke(app, ["dlq", "list", settings.dlq_topic, "--json"]).stdout)
    row = next(r for r in rows if r["reason"] == "unknown_field")
    args = ["dlq", "show", settings.dlq_topic]
    shown = runner.invoke(
        app, [*args, "--partition", str(row["partition"]), "--offset", str(row["offset"])]
    )
    assert shown.exit_code == 0, shown.output
    document = orjson.loads(shown.stdout)
    assert document["dead_letter_headers"]["dlq.reason"] == "unknown_field"
    assert document["dead_letter_headers"]["dlq.topic"] == settings.input_topic
    assert document["original"]["format"] == "json"
    assert document["original"]["value"] == orjson.loads(UNKNOWN_FIELD)
    assert document["original"]["key"] == "c-2"

    bad = next(r for r in rows if r["reason"] == "bad_json")
    shown = runner.invoke(
        app, [*args, "--partition", str(bad["partition"]), "--offset", str(bad["offset"])]
    )
    document = orjson.loads(shown.stdout)
    assert document["original"]["format"] == "bytes"
    assert document["original"]["value"] == BAD_JSON.decode()

    nowhere = runner.invoke(app, [*args, "--partition", "0", "--offset", "999"])
    assert nowhere.exit_code == 1
    assert "no record" in nowhere.stderr


def test_replay_sends_the_original_bytes_back_and_skips_truncated_letters(streams_settings):
    settings = streams_settings()
    avro = encode_change_event_avro(
        {"customer_id": "c-7", "source": "crm", "properties": {"first_name": "Marian"}}
    )

    def letter(key: bytes, value: bytes, reason: str, offset: int, limit: int) -> OutputRecord:
        headers = dead_letter_headers(
            reason,
            "a sentence",
            ("topic", settings.input_topic),
            ("partition", 0),
            ("offset", offset),
            ("timestamp", 1_700_000_000_000),
        )
        headers.append(("trace", b"t-1"))
        return fitted_letter(OutputRecord(settings.dlq_topic, 0, key, value, headers), limit)

    _produce(
        settings,
        [
            letter(b"c-7", avro, "future_timestamp", 11, settings.max_message_bytes),
            letter(b"c-8", b"x" * (2 * MIN_LIMIT_BYTES), "too_large", 12, MIN_LIMIT_BYTES),
        ],
    )
    runner = CliRunner(env=_env(settings))
    shown = orjson.loads(
        runner.invoke(
            app, ["dlq", "show", settings.dlq_topic, "--partition", "0", "--offset", "0"]
        ).stdout
    )
    assert shown["original"]["format"] == "avro"
    assert shown["original"]["value"]["customer_id"] == "c-7"
    assert shown["original"]["headers"] == {"trace": "t-1"}
    listed = _lines(runner.invoke(app, ["dlq", "list", settings.dlq_topic, "--json"]).stdout)
    assert [row["truncated"] for row in listed] == [False, True]
    assert listed[1]["bytes"] == 2 * MIN_LIMIT_BYTES

    dry = runner.invoke(app, ["dlq", "replay", settings.dlq_topic, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would replay 1 to {settings.input_topic}" in dry.stderr
    assert "1 skipped (truncated=1)" in dry.stderr
    declined = runner.invoke(app, ["dlq", "replay", settings.dlq_topic], input="n\n")
    assert declined.exit_code == 1
    assert read_topic(settings, settings.input_topic) == []

    replayed = runner.invoke(app, ["dlq", "replay", settings.dlq_topic, "--yes"])
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1 of 2 letters" in replayed.stderr
    assert "truncated letters cannot be replayed whole" in replayed.stderr
    [record] = read_topic(settings, settings.input_topic)
    assert (record.key, record.value) == (b"c-7", avro)
    assert record.headers["trace"] == b"t-1"
    assert record.headers["replayed.from"] == f"{settings.dlq_topic}/0/0".encode()
    assert not any(name.startswith("dlq.") for name in record.headers)

    elsewhere = f"{settings.dlq_topic}-nope"
    missing = runner.invoke(app, ["dlq", "replay", settings.dlq_topic, "--yes", "--to", elsewhere])
    assert missing.exit_code == 2


def test_tail_decodes_every_kind_of_topic(streams_settings, start_worker):
    settings = streams_settings()
    service = start_worker(settings)
    fresh = {"customer_id": "c-1", "source": "crm", "update_timestamp": 200, "properties": {"a": 1}}
    older = {"customer_id": "c-1", "source": "crm", "update_timestamp": 100, "properties": {"a": 2}}
    produce_events(settings, [fresh])
    wait_until(lambda: service.worker is not None and service.worker.totals.applied == 1)
    produce_events(settings, [older, UNKNOWN_FIELD])
    wait_until(lambda: len(read_topic(settings, settings.dlq_topic)) == 1)
    wait_until(lambda: len(read_topic(settings, settings.stale_topic)) == 1)
    _produce(settings, [OutputRecord(settings.upserts_topic, 0, b"c-9", b"\xc3\x01garbage")])
    runner = CliRunner(env=_env(settings))

    def tail(topic: str, *more: str) -> list[dict[str, Any]]:
        result = runner.invoke(app, ["topics", "tail", topic, "--from-beginning", *more])
        assert result.exit_code == 0, result.output
        return _lines(result.stdout)

    changes = tail(settings.input_topic)
    values = [line["value"] for line in changes]
    assert sorted(values, key=orjson.dumps) == sorted(
        [fresh, older, orjson.loads(UNKNOWN_FIELD)], key=orjson.dumps
    )
    upserts = tail(settings.upserts_topic)
    good = next(line for line in upserts if "error" not in line)
    assert good["value"]["customer_id"] == "c-1"
    assert good["value"]["properties"] == {"a": {"value": 1, "last_update": 200_000}}
    broken = next(line for line in upserts if "error" in line)
    assert broken["key"] == "c-9"
    assert broken["error"].startswith("undecodable")
    [stale] = tail(settings.stale_topic)
    assert stale["value"]["reason"] == "older"
    [state] = tail(settings.changelog_topic)
    assert state["value"]["properties"]["a"] == {
        "value": 1,
        "last_update": 200_000,
        "source": "crm",
    }
    [dead] = tail(settings.dlq_topic)
    assert dead["dead_letter_headers"]["dlq.reason"] == "unknown_field"
    assert dead["original"]["value"] == orjson.loads(UNKNOWN_FIELD)
    assert len(tail(settings.input_topic, "--limit", "2")) == 2
    last = runner.invoke(app, ["topics", "tail", settings.input_topic, "--limit", "1"])
    assert len(_lines(last.stdout)) == 1
    missing = runner.invoke(app, ["topics", "tail", f"{settings.input_topic}-nope"])
    assert missing.exit_code == 2
