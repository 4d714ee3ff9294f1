"""Helpers for multi-process tests: worker subprocesses, a workload and its expected state."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from streams.kafka.clients import reader_config
from streams.merge import MergePolicy, apply_event, join_profiles, upsert_as_event, value_rank
from streams.model import ChangeEvent, Op, Profile
from streams.settings import Settings
from streams.state.codec import decode_profile
from streams.testing import read_topic, read_upserts

T0 = 1_700_000_000
SOURCES = ["crm", "web", "import"]
NAMES = ["first_name", "city", "score", "vip"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return ",".join(_env_value(item) for item in value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"STREAMS_{name.upper()}"] = _env_value(value)
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    return env


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(60)
        return self.process.returncode

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0


def spawn_worker(
    settings: Settings, data_dir: Path, log: Path, engine: str = "default"
) -> WorkerProcess:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streams.cli.main",
        "worker",
        "--data-dir",
        str(data_dir),
        "--web-port",
        str(port),
        "--engine",
        engine,
    ]
    handle = log.open("ab")
    process = subprocess.Popen(command, env=settings_env(settings), stdout=handle, stderr=handle)
    return WorkerProcess(process, f"http://127.0.0.1:{port}", log)


def workload(count: int, customers: int, seed: int) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    events: list[dict[str, object]] = []
    for index in range(count):
        customer = f"c-{rnd.randrange(customers)}"
        ts = T0 + rnd.randrange(200)  # narrow: stale writes and ties are frequent
        if rnd.random() < 0.03:
            events.append(
                {
                    "customer_id": customer,
                    "source": "crm",
                    "op": "delete",
                    "update_timestamp": ts,
                    "event_id": f"e{index}",
                }
            )
            continue
        names = rnd.sample(NAMES, rnd.randint(1, 3))
        values = {
            "first_name": rnd.choice(["Eva", "Petr", None]),
            "city": rnd.choice(["Brno", "Praha"]),
            "score": rnd.randint(0, 3),
            "vip": rnd.choice([True, False]),
        }
        events.append(
            {
                "customer_id": customer,
                "source": rnd.choice(SOURCES),
                "update_timestamp": ts,
                "event_id": f"e{index}",
                "properties": {name: values[name] for name in names},
            }
        )
    return events


def expected_profiles(events: list[dict[str, object]], policy: MergePolicy) -> dict[str, Profile]:
    profiles: dict[str, Profile] = defaultdict(Profile)
    for raw in events:
        event = ChangeEvent(
            str(raw["customer_id"]),
            str(raw["source"]),
            Op(str(raw.get("op", "upsert"))),
            int(raw["update_timestamp"]) * 1000,  # type: ignore[call-overload]
            dict(raw.get("properties", {})),  # type: ignore[call-overload]
        )
        apply_event(profiles[event.customer_id], event, policy)
    return dict(profiles)


def canon(profiles: dict[str, Profile]) -> dict[str, tuple[object, ...]]:
    return {
        customer: (
            profile.deleted_at,
            tuple(
                sorted(
                    (n, s.last_update, s.source, value_rank(s.value))
                    for n, s in profile.properties.items()
                )
            ),
        )
        for customer, profile in profiles.items()
    }


def changelog_profiles(settings: Settings, policy: MergePolicy) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for record in read_topic(settings, settings.changelog_topic, timeout=60):
        assert record.key is not None
        assert record.value is not None
        customer = record.key.decode()
        state = decode_profile(record.value)
        known = profiles.get(customer)
        profiles[customer] = state if known is None else join_profiles(known, state, policy)
    return profiles


def replayed_profiles(settings: Settings, policy: MergePolicy) -> dict[str, Profile]:
    profiles: dict[str, Profile] = defaultdict(Profile)
    for upsert in read_upserts(settings, timeout=60):
        apply_event(profiles[upsert.customer_id], upsert_as_event(upsert), policy)
    return dict(profiles)


def caught_up(settings: Settings) -> bool:
    """True when the processor group committed every input offset."""
    consumer = Consumer(reader_config(settings, **{"group.id": settings.group_id}))
    try:
        topic = settings.input_topic
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        for tp in committed:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=10
            )
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()


def encoded(events: list[dict[str, object]]) -> list[bytes]:
    return [orjson.dumps(event) for event in events]
