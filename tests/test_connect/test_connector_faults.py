"""Connector faults against a real PostgreSQL: kill -9, an outage, a replayed topic.

The destination must always end equal to the merge of every upsert: what a run without
faults produces.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer
from psycopg import sql
from psycopg.conninfo import make_conninfo

from streams.codecs.upserts import UpsertCodec
from streams.connect.sinks.postgres import sql as q
from streams.merge import MergePolicy, apply_event, to_upsert, upsert_as_event
from streams.model import ChangeEvent, Op, Profile, Upsert
from streams.testing import wait_until
from tests.test_processor.cluster import caught_up as processor_caught_up
from tests.test_processor.cluster import settings_env

pytestmark = pytest.mark.slow
T0 = 1_700_000_000_000


def processor_like_upserts(count: int, customers: int, seed: int) -> list[Upsert]:
    """What the processor would emit for random events (only accepted changes)."""
    rnd = random.Random(seed)
    profiles: dict[str, Profile] = {}
    out: list[Upsert] = []
    policy = MergePolicy({"crm": 2, "web": 1})
    for index in range(count):
        customer = f"c-{rnd.randrange(customers)}"
        ts = T0 + rnd.randrange(100_000)
        if rnd.random() < 0.02:
            event = ChangeEvent(customer, "crm", Op.DELETE, ts)
        else:
            names = rnd.sample(["city", "score", "vip", "first_name"], rnd.randint(1, 3))
            values = {
                "city": rnd.choice(["Brno", "Praha", None]),
                "score": rnd.randint(0, 9),
                "vip": rnd.random() < 0.5,
                "first_name": rnd.choice(["Eva", "Petr"]),
            }
            event = ChangeEvent(
                customer,
                rnd.choice(["crm", "web"]),
                Op.UPSERT,
                ts,
                {n: values[n] for n in names},
                event_id=f"e{index}",
            )
        upsert = to_upsert(
            event,
            apply_event(profiles.setdefault(customer, Profile()), event, policy),
            processed_at=T0,
        )
        if upsert is not None:
            out.append(upsert)
    return out


def merged(upserts: list[Upsert]) -> dict[str, tuple[object, ...]]:
    profiles: dict[str, Profile] = {}
    for upsert in upserts:
        apply_event(
            profiles.setdefault(upsert.customer_id, Profile()),
            upsert_as_event(upsert),
            MergePolicy({"crm": 2, "web": 1}),
        )
    return {
        customer: (
            p.deleted_at,
            tuple(sorted((n, repr(s.value), s.last_update) for n, s in p.properties.items())),
        )
        for customer, p in profiles.items()
    }


def produce(settings, upserts: list[Upsert]) -> None:
    codec = UpsertCodec(settings.output_format)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "partitioner": "murmur2_random",
            "linger.ms": 20,
        }
    )
    for upsert in upserts:
        producer.produce(settings.upserts_topic, codec.encode(upsert), upsert.customer_id.encode())
        producer.poll(0)
    producer.flush(60)


def table_state(dsn: str, schema: str, table: str = "profiles") -> dict[str, tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        rows = q.stored_entries(conn, schema, table)
    return {
        customer: (deleted_at, tuple(sorted((n, repr(e[0]), e[1]) for n, e in entries.items())))
        for customer, (deleted_at, entries) in rows.items()
    }


class Connector:
    def __init__(self, settings, name: str, dsn: str, schema: str, workdir: Path) -> None:
        self.config = workdir / f"{name}.toml"
        self.config.write_text(
            f'name = "{name}"\ntype = "postgres"\n[batch]\nmax_records = 500\nmax_wait_ms = 200\n'
            "[retry]\ninitial_backoff_ms = 100\nmax_backoff_ms = 1000\n"
            f'[sink]\ndsn = "${{FAULT_TEST_DSN}}"\nschema = "{schema}"\n'
        )
        self.settings = settings.model_copy(update={"group_id": f"profile-streams-connect-{name}"})
        self.env = {**settings_env(settings), "FAULT_TEST_DSN": dsn, "STREAMS_LOG_LEVEL": "INFO"}
        self.name, self.log = name, workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Connector:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli.main",
                "connect",
                self.name,
                "--config",
                str(self.config),
            ],
            env=self.env,
            stdout=handle,
            stderr=handle,
        )
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def caught_up(self) -> bool:
        settings = self.settings.model_copy(update={"input_topic": self.settings.upserts_topic})
        return processor_caught_up(settings)


def count_rows(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.profiles").format(sql.Identifier(schema))
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def test_kill_9_mid_batch_then_restart_ends_identical(
    streams_settings, postgres_dsn, postgres_schema, tmp_path
):
    settings = streams_settings()
    upserts = processor_like_upserts(20_000, 2_000, seed=5)
    produce(settings, upserts)
    connector = Connector(
        settings, f"pg-{uuid.uuid4().hex[:6]}", postgres_dsn, postgres_schema, tmp_path
    ).start()
    try:
        wait_until(lambda: count_rows(postgres_dsn, postgres_schema) > 200, timeout=120)
        connector.kill9()
        assert not connector.caught_up(), "the kill must land mid-stream"
        connector.start()
        wait_until(connector.caught_up, timeout=240, every=0.5)
    finally:
        connector.stop()
    assert table_state(postgres_dsn, postgres_schema) == merged(upserts)


def test_destination_outage_loses_nothing_and_catches_up(
    streams_settings, postgres_dsn, postgres_schema, tmp_path
):
    settings = streams_settings()
    role = f"connector_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD 'outage'").format(sql.Identifier(role))
        )
    dsn = make_conninfo(postgres_dsn, user=role, password="outage")
    upserts = processor_like_upserts(6_000, 600, seed=6)
    connector = Connector(
        settings, f"pg-{uuid.uuid4().hex[:6]}", dsn, postgres_schema, tmp_path
    ).start()
    try:
        produce(settings, upserts[:2_000])
        wait_until(connector.caught_up, timeout=120, every=0.5)
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            # The outage: the connector's logins are refused and its sessions cut.
            admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
            )
        produce(settings, upserts[2_000:])
        wait_until(lambda: "failure attempt=2" in connector.log.read_text(), timeout=60)
        assert not connector.caught_up(), "nothing is committed while the destination is down"
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
        wait_until(connector.caught_up, timeout=120, every=0.5)
    finally:
        connector.stop()
    assert table_state(postgres_dsn, postgres_schema) == merged(upserts)


def test_a_replayed_and_reordered_topic_never_regresses_the_table(
    streams_settings, postgres_dsn, postgres_schema, tmp_path
):
    settings = streams_settings()
    upserts = processor_like_upserts(5_000, 500, seed=7)
    produce(settings, upserts)
    first = Connector(
        settings, f"pg-{uuid.uuid4().hex[:6]}", postgres_dsn, postgres_schema, tmp_path
    ).start()
    try:
        wait_until(first.caught_up, timeout=120, every=0.5)
        before = table_state(postgres_dsn, postgres_schema)
        assert before == merged(upserts)
        # Old upserts again, shuffled, then a second group replaying the whole topic.
        produce(settings, random.Random(8).sample(upserts, k=len(upserts)))
        wait_until(first.caught_up, timeout=120, every=0.5)
        replay = Connector(
            settings, f"pg-{uuid.uuid4().hex[:6]}", postgres_dsn, postgres_schema, tmp_path
        ).start()
        try:
            wait_until(replay.caught_up, timeout=120, every=0.5)
        finally:
            replay.stop()
    finally:
        assert first.stop() == 0
    assert table_state(postgres_dsn, postgres_schema) == before
