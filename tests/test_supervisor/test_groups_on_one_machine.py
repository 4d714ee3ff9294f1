"""``streams worker --processes 2`` and ``streams connect NAME --processes 2`` against the real
broker: two members of one group from one command, each with its own data dir and port, the
partitions split between them, and one stop for all (or none left when one dies)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState, KafkaException, Producer

from streams.codecs.upserts import UpsertCodec
from streams.connect.sinks.file import read_jsonl, visible_files
from streams.kafka.clients import admin_client, producer_config
from streams.model import Op, PropertyState, Upsert
from streams.settings import Settings
from streams.testing import produce_events, wait_until
from tests.conftest import TEST_PARTITIONS
from tests.test_processor.cluster import caught_up, free_port, settings_env
from tests.test_supervisor.supervised import Supervised, gone

pytestmark = pytest.mark.slow

STREAMS = (sys.executable, "-m", "streams.cli.main")
UP_TIMEOUT = 90
T0 = 1_700_000_000_000


def free_port_pair() -> int:
    """A free port whose successor is free too: the two members' ports."""
    for _ in range(50):
        base = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise AssertionError("no two consecutive free ports")


def group_split(settings: Settings, group: str) -> list[tuple[str, set[int]]] | None:
    """(client.id, assigned partitions) of each member of a stable group, else None."""
    admin = admin_client(settings)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(10)
    except KafkaException:  # a fresh broker: no coordinator yet
        return None
    if description.state != ConsumerGroupState.STABLE:
        return None
    return [
        (member.client_id, {tp.partition for tp in member.assignment.topic_partitions})
        for member in description.members
        if member.assignment is not None
    ]


def split_between_two(split: list[tuple[str, set[int]]] | None) -> bool:
    if split is None or len(split) != 2:
        return False
    (_, first), (_, second) = split
    return bool(first) and bool(second) and first | second == set(range(TEST_PARTITIONS))


def answers(url: str, path: str = "/health") -> bool:
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def assert_stopped_cleanly(group: Supervised, signum: int = signal.SIGTERM) -> None:
    group.process.send_signal(signum)
    code, lines = group.finish()
    assert code == 0, lines[-40:]
    for row in group.rows:
        assert f"member {row.index} (pid {row.pid}) stopped: exited with code 0" in lines
        assert gone(row.pid)


def test_two_workers_from_one_command_split_the_partitions_and_stop_together(
    streams_settings, start_supervised, tmp_path
):
    base = free_port_pair()
    settings = streams_settings(web_port=base, data_dir=tmp_path / "state")
    group = start_supervised([*STREAMS, "worker", "--processes", "2"], settings_env(settings))
    rows = group.members(2, timeout=UP_TIMEOUT)
    assert [row.url for row in rows] == [f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"]
    state = tmp_path / "state"
    assert [row.data_dir for row in rows] == [str(state / "member-0"), str(state / "member-1")]
    assert all(answers(row.url) for row in rows)

    wait_until(lambda: split_between_two(group_split(settings, settings.group_id)), timeout=60)
    split = group_split(settings, settings.group_id)
    assert split is not None
    owners = dict(split)
    assert set(owners) == {f"profile-streams-worker@{row.url}" for row in rows}

    events = [
        {
            "customer_id": f"c-{n}",
            "source": "crm",
            "update_timestamp": T0 // 1000 + n,
            "properties": {"city": "Brno"},
        }
        for n in range(200)
    ]
    produce_events(settings, events)
    wait_until(lambda: caught_up(settings), timeout=120)
    assert all(metric(row.url, "streams_events_in_total") > 0 for row in rows), "both process"
    assert sum(metric(row.url, "streams_events_in_total") for row in rows) == len(events)
    for row in rows:  # each member keeps the state of its partitions in its own directory
        owned = owners[f"profile-streams-worker@{row.url}"]
        stores = {path.name for path in (Path(row.data_dir) / "state").iterdir()}
        assert stores >= {f"partition-{partition}" for partition in owned}

    assert_stopped_cleanly(group)


def test_a_killed_worker_stops_the_other_and_the_command_fails_naming_it(
    streams_settings, start_supervised
):
    settings = streams_settings()  # web port 0: each member gets a free one
    group = start_supervised([*STREAMS, "worker", "--processes", "2"], settings_env(settings))
    first, second = group.members(2, timeout=UP_TIMEOUT)
    assert first.url != second.url
    os.kill(second.pid, signal.SIGKILL)
    code, lines = group.finish()
    assert code == 1
    assert (
        f"error: member 1 (pid {second.pid}) was killed by SIGKILL; stopping the other members"
        in lines
    )
    assert f"member 0 (pid {first.pid}) stopped: exited with code 0" in lines
    assert gone(first.pid)


def produce_upserts(settings: Settings, count: int) -> None:
    codec = UpsertCodec(settings.output_format)
    producer = Producer(producer_config(settings))
    for n in range(count):
        upsert = Upsert(
            f"c-{n}", Op.UPSERT, {"city": PropertyState("Brno", T0, "crm")}, None, "crm", None, T0
        )
        producer.produce(settings.upserts_topic, codec.encode(upsert), upsert.customer_id.encode())
    assert producer.flush(30) == 0


def test_two_file_connectors_from_one_command_share_the_upserts(
    streams_settings, start_supervised, tmp_path
):
    settings = streams_settings()
    name = f"files-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    config = tmp_path / "files.toml"
    config.write_text(
        f'name = "{name}"\ntype = "file"\n[batch]\nmax_records = 50\nmax_wait_ms = 200\n'
        f'[sink]\ndirectory = "{out}"\n'
    )
    env = {**settings_env(settings), "STREAMS_CONNECTOR_WEB_PORT": "0"}
    group = start_supervised(
        [*STREAMS, "connect", name, "--config", str(config), "--processes", "2"], env
    )
    group.members(2, timeout=UP_TIMEOUT)
    connectors = f"profile-streams-connect-{name}"
    wait_until(lambda: split_between_two(group_split(settings, connectors)), timeout=60)

    produce_upserts(settings, 100)
    delivered = settings.model_copy(
        update={"input_topic": settings.upserts_topic, "group_id": connectors}
    )
    wait_until(lambda: caught_up(delivered), timeout=120)
    customers = {u.customer_id for path in visible_files(out, name) for u in read_jsonl(path)}
    assert customers == {f"c-{n}" for n in range(100)}

    assert_stopped_cleanly(group)
