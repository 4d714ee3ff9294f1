"""What the end-to-end backfill must leave in PostgreSQL, what it did leave, and a raw COPY of
the same final rows.

The expectation comes from the change events themselves: the bootstrap's input topic is read
back and every event is decoded and merged with the processor's reference code
(``EventDecoder``, ``apply_event``), one partition at a time (a customer lives in one
partition, so memory holds one partition's profiles). Each customer is kept as a digest of its
plain values and delete watermark, which is what the sink's ``<table>_values`` view shows.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from benchmarks.common import PARTITIONS
from streams.codecs.events import EventDecoder
from streams.connect.sinks.postgres.sql import VALUES_VIEW_SUFFIX
from streams.errors import InvalidEventError
from streams.merge import MergePolicy, apply_event
from streams.model import Profile, Value
from streams.optional import requires
from streams.settings import Settings

with requires("psycopg", "the backfill benchmark"):
    import psycopg
    from psycopg import sql

CONSUME_BATCH = 10_000
FETCH_ROWS = 20_000
SHOWN_MISMATCHES = 5
READ_TIMEOUT = 600.0

RAW_TABLE = """
CREATE TABLE {schema}.raw_copy (
    customer_id text COLLATE "C" PRIMARY KEY,
    properties jsonb NOT NULL,
    deleted_at bigint
)
"""
RAW_COPY = "COPY {schema}.raw_copy (customer_id, properties, deleted_at) FROM STDIN"

Row = tuple[str, str, int | None]
"""A final row as the values view shows it: customer id, properties as JSON text, deleted_at."""


def digest(values: Mapping[str, Value], deleted_at: int | None) -> bytes:
    """One customer's visible state, independent of key order and of JSON spacing."""
    encoded = orjson.dumps([deleted_at, values], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(encoded, digest_size=8).digest()


@dataclass(slots=True)
class Expected:
    """Per customer the digest of what the merge implies; ``events`` read, ``invalid`` ones."""

    digests: dict[str, bytes] = field(default_factory=dict)
    events: int = 0
    invalid: int = 0


def expected_state(bootstrap: str, topic: str, settings: Settings) -> Expected:
    """Merge every event of ``topic`` as the processor does; empty profiles have no row."""
    decoder = EventDecoder.from_settings(settings)
    policy = MergePolicy(settings.priorities())
    expected = Expected()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-backfill-expected",
            "enable.auto.commit": False,
        }
    )
    try:
        for partition in range(PARTITIONS):
            profiles: dict[str, Profile] = {}
            for key, value, timestamp in _partition(consumer, topic, partition):
                expected.events += 1
                try:
                    event = decoder.decode(key, value, timestamp, time.time_ns() // 1_000_000)
                except InvalidEventError:
                    expected.invalid += 1
                    continue
                profile = profiles.setdefault(event.customer_id, Profile())
                apply_event(profile, event, policy)
            for customer_id, profile in profiles.items():
                if profile.is_empty():
                    continue
                values = {
                    name: state.value
                    for name, state in profile.properties.items()
                    if state.value is not None
                }
                expected.digests[customer_id] = digest(values, profile.deleted_at)
    finally:
        consumer.close()
    return expected


def _partition(
    consumer: Consumer, topic: str, partition: int
) -> Iterable[tuple[bytes | None, bytes | None, int]]:
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    position, deadline = 0, time.monotonic() + READ_TIMEOUT
    while position < high:
        if time.monotonic() > deadline:
            raise RuntimeError(f"reading {topic}[{partition}]: at {position} of {high} in time")
        # No more than what is left: consume() would wait out its timeout for the rest.
        for message in consumer.consume(min(CONSUME_BATCH, high - position), 1.0):
            if message.error() is not None:
                raise RuntimeError(f"reading {topic}[{partition}]: {message.error()}")
            position = (message.offset() or 0) + 1
            yield message.key(), message.value(), message.timestamp()[1]
    consumer.unassign()


def table_rows(dsn: str, schema: str, table: str) -> list[Row]:
    """Every row of the sink's values view (plain values, as a user reads them)."""
    view = sql.Identifier(schema, table + VALUES_VIEW_SUFFIX)
    query = sql.SQL("SELECT customer_id, properties::text, deleted_at FROM {}").format(view)
    with psycopg.connect(dsn) as conn, conn.cursor(name="bench_backfill_rows") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query)
        return [
            (customer_id, properties, deleted_at) for customer_id, properties, deleted_at in cursor
        ]


def table_count(dsn: str, schema: str, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def mismatches(expected: Expected, rows: Sequence[Row]) -> list[str]:
    """Why ``rows`` are not what the merge implies (empty: they are, every one of them)."""
    problems: list[str] = []
    if expected.invalid:
        problems.append(f"{expected.invalid:,} of the bootstrap's events do not decode")
    seen: set[str] = set()
    wrong: list[str] = []
    for customer_id, properties, deleted_at in rows:
        seen.add(customer_id)
        if expected.digests.get(customer_id) != digest(orjson.loads(properties), deleted_at):
            wrong.append(customer_id)
    missing = [customer for customer in expected.digests if customer not in seen]
    if len(rows) != len(expected.digests):
        problems.append(f"{len(rows):,} rows, the merge implies {len(expected.digests):,}")
    if wrong:
        problems.append(
            f"{len(wrong):,} rows differ from the merge, e.g. {wrong[:SHOWN_MISMATCHES]}"
        )
    if missing:
        problems.append(f"{len(missing):,} customers missing, e.g. {missing[:SHOWN_MISMATCHES]}")
    return problems


def raw_copy(dsn: str, schema: str, rows: Sequence[Row], batch: int) -> float:
    """Seconds to COPY ``rows`` into a plain keyed table, ``batch`` rows per transaction."""
    names = {"schema": sql.Identifier(schema)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(RAW_TABLE).format(**names))
        copy_sql = sql.SQL(RAW_COPY).format(**names)
        _settle(conn)
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in rows[start : start + batch]:
                    copy.write_row(row)
        return time.perf_counter() - started


def _settle(conn: psycopg.Connection[Any]) -> None:
    """Finish the server's background work on the tables just written (autovacuum of a
    million new rows, the checkpoint they bring), so the COPY's clock does not count it."""
    conn.execute("VACUUM")
    # Another server's DSN may lack pg_checkpoint: the VACUUM did most of it.
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def drop_schemas(dsn: str, schemas: Sequence[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
