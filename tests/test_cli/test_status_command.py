"""`streams status` on the session's Kafka: a real worker that processed events, a connector
group whose member's endpoint does not answer, and a group asked for by name."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from confluent_kafka import Consumer, TopicPartition
from typer.testing import CliRunner

from streams.cli.fleet import FleetStatus, fetch_status, gather, rates_between
from streams.cli.main import app
from streams.kafka.clients import admin_client, consumer_config, reader_config
from streams.settings import Settings
from streams.testing import produce_events, read_topic, wait_until
from streams.web.routing import CONNECTOR_CLIENT_ID_PREFIX
from tests.app_thread import AppThread

T0 = 1_700_000_000
EVENTS = [
    {"customer_id": f"c-{i}", "source": "crm", "update_timestamp": T0 + i, "properties": {"n": i}}
    for i in range(10)
]
BAD_JSON = b'{"customer_id": "c-1", "source":'


def test_rates_come_from_two_samples_of_one_run() -> None:
    before = {"started_at": 1.0, "now": 10.0, "totals": {"records": 100, "rejected": 2}}
    after = {"started_at": 1.0, "now": 12.0, "totals": {"records": 130, "rejected": 2, "new": 5}}
    assert rates_between(before, after) == {"records": 15.0, "rejected": 0.0}
    assert rates_between(before, before) == {}  # one cached document: no time passed
    assert rates_between({**before, "started_at": 0.5}, after) == {}  # restarted
    assert rates_between(None, after) == {}


def test_a_member_answering_anything_but_its_status_is_said_so() -> None:
    answers = {
        "/a/status": web.json_response({"kind": "worker", "totals": {}}),  # half a document
        "/b/status": web.Response(text="<html>a proxy's page</html>"),
        "/c/status": web.json_response({"error": "unauthorized"}, status=401),
    }

    async def answer(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t0ken":
            raise web.HTTPForbidden
        return answers[request.path]

    app = web.Application()
    app.router.add_get("/{member}/status", answer)
    with AppThread(app, "members") as url:
        assert fetch_status(f"{url}/a", "t0ken", 5) == "not a status document"
        assert fetch_status(f"{url}/b", "t0ken", 5) == "unreachable: not JSON"
        assert fetch_status(f"{url}/c", "t0ken", 5) == (
            "HTTP 401 (needs a token of STREAMS_API_TOKENS)"
        )
    assert fetch_status(url, None, 5) == "unreachable: Connection refused"
    assert fetch_status("file:///etc/passwd", None, 5) == "not an http(s) URL"


@pytest.fixture
def fleet(streams_settings, start_worker) -> Iterator[tuple[Settings, str, str]]:
    """A worker that processed ``EVENTS`` and a dead letter, and a stopped-looking connector:
    a member of ``profile-streams-connect-<x>`` whose endpoint refuses connections, having
    committed offset 0 of every upserts partition."""
    settings = streams_settings()
    service = start_worker(settings)
    produce_events(settings, [*EVENTS, BAD_JSON])
    wait_until(lambda: len(read_topic(settings, settings.dlq_topic)) == 1)
    group = f"profile-streams-connect-test-{uuid.uuid4().hex[:8]}"
    connector = Consumer(
        consumer_config(
            settings,
            **{"group.id": group, "client.id": f"{CONNECTOR_CLIENT_ID_PREFIX}http://127.0.0.1:1"},
        )
    )
    connector.subscribe([settings.upserts_topic])
    deadline = time.monotonic() + 60
    while not connector.assignment() and time.monotonic() < deadline:
        connector.poll(0.2)
    assigned = connector.assignment()
    assert assigned, "the connector's consumer got no partitions"
    start = [TopicPartition(tp.topic, tp.partition, 0) for tp in assigned]
    connector.commit(offsets=start, asynchronous=False)
    try:
        yield settings, service.url, group
    finally:
        connector.close()


def _gather(settings: Settings, **options: Any) -> FleetStatus:
    admin = admin_client(settings)
    reader = Consumer(reader_config(settings, **{"group.id": f"test-{uuid.uuid4().hex}"}))
    try:
        return gather(settings, admin, reader, **options)
    finally:
        reader.close()


def _caught_up(settings: Settings) -> FleetStatus | None:
    """The status once the worker committed every input record and shows its totals."""
    status = _gather(settings)
    rows = [p for p in status.partitions if p.group == settings.group_id]
    done = rows and all(p.lag == 0 for p in rows)
    members = [m for g in status.groups if g.group == settings.group_id for m in g.members]
    counted = [m.document["totals"]["events_in"] for m in members if m.document]
    return status if done and counted == [len(EVENTS) + 1] else None


def test_gathered_figures_show_lag_owners_and_each_members_status(fleet) -> None:
    settings, worker_url, connector_group = fleet
    wait_until(lambda: _caught_up(settings) is not None, timeout=30)
    first = _caught_up(settings)
    assert first is not None
    groups = {g.group: g for g in first.groups}
    assert set(groups) >= {settings.group_id, connector_group}
    processor, connector = groups[settings.group_id], groups[connector_group]
    assert (processor.kind, processor.state, processor.lag) == ("processor", "stable", 0)
    (worker,) = processor.members
    assert (worker.kind, worker.url, worker.error) == ("worker", worker_url, None)
    assert worker.document is not None
    assert worker.document["dlq_by_reason"] == {"bad_json": 1}
    assert sorted(worker.assignment) == [(settings.input_topic, p) for p in range(4)]

    inputs = [p for p in first.partitions if p.group == settings.group_id]
    assert [p.partition for p in inputs] == list(range(settings.partitions))
    assert sum(p.end for p in inputs) == len(EVENTS) + 1
    assert all(p.committed == p.end and p.owner == worker_url for p in inputs)
    assert {p.state for p in inputs} == {"owned"}

    # The connector's member never answers: shown as such, its lag from Kafka alone.
    assert connector.kind == "connector"
    (member,) = connector.members
    assert member.document is None
    assert member.error is not None
    assert member.error.startswith("unreachable:")
    upserts = [p for p in first.partitions if p.group == connector_group]
    assert {p.topic for p in upserts} == {settings.upserts_topic}
    assert connector.lag == sum(p.end for p in upserts) == len(EVENTS)
    assert {p.owner for p in upserts} == {"http://127.0.0.1:1"}

    # A second sample 1.5 s later (the worker caches its document for 1 s): rates, all zero
    # now that nothing flows.
    time.sleep(1.5)
    second = _gather(settings, previous=first)
    again = {g.group: g for g in second.groups}[settings.group_id].members[0]
    assert again.rates["events_in"] == 0.0
    assert set(again.rates) == set(worker.document["totals"])


def test_a_snapshot_shows_groups_members_and_partitions(fleet, monkeypatch) -> None:
    settings, worker_url, connector_group = fleet
    wait_until(lambda: _caught_up(settings) is not None, timeout=30)
    asked_for = f"someone-else-{uuid.uuid4().hex[:8]}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_PARTITIONS": str(settings.partitions),
        "STREAMS_GROUP_ID": settings.group_id,
        "STREAMS_INPUT_TOPIC": settings.input_topic,
    }
    result = CliRunner().invoke(app, ["status", "--interval", "1.1", "--group", asked_for], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()

    def row(*cells: str | None) -> str:
        """The one line starting with these cells."""
        found = [line for line in lines if _starts(line, cells)]
        assert len(found) == 1, (cells, result.output)
        return found[0]

    row(settings.group_id, "processor", "stable", "1", "0")
    row(connector_group, "connector", "stable", "1", f"{len(EVENTS)}")
    row(asked_for, "other", "dead", "0", "-")
    member = row(settings.group_id, worker_url, "running")
    assert "bad_json=1" in member
    assert "│ 0,1,2,3 " in member
    row(connector_group, "http://127.0.0.1:1", "unreachable: Connection refused")
    for partition in range(settings.partitions):
        row(
            settings.input_topic,
            str(partition),
            None,
            settings.group_id,
            None,
            "0",
            worker_url,
            "owned",
        )


def _starts(line: str, cells: tuple[str | None, ...]) -> bool:
    """The table row ``line`` starts with ``cells`` (None: any)."""
    row = [cell.strip() for cell in line.split("│")[1:-1]]
    head = row[: len(cells)]
    return len(head) == len(cells) and all(c in (None, h) for h, c in zip(head, cells, strict=True))


def test_watch_redraws_says_a_kafka_failure_and_ends_on_ctrl_c(streams_settings, monkeypatch):
    """Each round is drawn; a round Kafka fails is said and the next one asked again."""
    import streams.cli.status as status_module
    from streams.errors import KafkaUnavailableError

    settings = streams_settings()
    real_gather = status_module.__dict__["gather"]
    rounds: list[str] = []

    def gather(*args: Any, **kwargs: Any) -> FleetStatus:
        rounds.append("gather")
        if len(rounds) == 2:
            raise KafkaUnavailableError("Kafka did not list consumer groups: gone for a moment")
        figures: FleetStatus = real_gather(*args, **kwargs)
        return figures

    def sleep(seconds: float) -> None:
        if len(rounds) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(status_module, "gather", gather)
    monkeypatch.setattr("streams.cli.status.time.sleep", sleep)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_GROUP_ID": settings.group_id,
        "STREAMS_INPUT_TOPIC": settings.input_topic,
    }
    result = CliRunner().invoke(app, ["status", "--watch"], env=env)
    assert result.exit_code == 0, result.output
    assert len(rounds) == 3
    assert "Consumer groups" in result.output
    assert settings.group_id in result.output
