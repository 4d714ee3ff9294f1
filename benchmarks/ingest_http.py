"""``python -m benchmarks.ingest_http [--events 200000] [--batch 500] [--clients 8]``: accepted
events/s through ``POST /track/batch`` side by side with a raw confluent-kafka producer sending
the very same event bytes, on one broker.

The service runs as ``streams serve`` in a subprocess: its event loop, parser and producer own
one interpreter (one GIL, one core at most), and the load generator (asyncio + aiohttp, bodies
encoded before the clock starts) runs in this process, so neither starves the other's loop.
The request bodies are Bloomreach batches of ``--batch`` customers commands; a 200 counts once
Kafka acknowledged every record (that is when the service answers). The raw producer then
sends the records the service derived from those commands (same keys, same bytes) with the
same librdkafka settings: once with a delivery report per record (what acknowledging each
request needs) and once with reports for failures only (the ceiling). Each contender
writes into a fresh topic; rounds alternate and the median counts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.common import BenchRow, bench_table, kafka, raw_produce
from benchmarks.data import topic_size
from benchmarks.serve_process import TOPIC_FIELDS, serve_process
from streams.codecs.events import EventDecoder
from streams.ingest.binding import SourceBinding
from streams.ingest.track import TrackOptions, parse_track_body
from streams.kafka.topics import create_topics
from streams.settings import Settings

HTTP = "POST /track/batch (streams serve)"
RAW = "raw producer, errors only"
RAW_CALLBACK = "raw producer, callback per record"
CONTENDERS = (HTTP, RAW_CALLBACK, RAW)
API_KEY = "bench-key"
PARTITIONS = 8
CUSTOMERS = 50_000


def bodies(events: int, batch: int) -> list[bytes]:
    """Bloomreach batches of customers commands, encoded once (untimed)."""
    base = int(time.time()) - 86_400
    commands = [
        {
            "name": "customers",
            "data": {
                "customer_ids": {"registered": f"c-{index % CUSTOMERS}"},
                "properties": {"first_name": "Marian", "city": "Bratislava", "score": index},
                "update_timestamp": base + index // CUSTOMERS,
            },
        }
        for index in range(events)
    ]
    return [
        orjson.dumps({"commands": commands[start : start + batch]})
        for start in range(0, events, batch)
    ]


def records_of(payloads: list[bytes], settings: Settings) -> list[tuple[bytes, bytes]]:
    """The records the service produces for ``payloads`` (its own parser, untimed)."""
    decoder = EventDecoder.from_settings(settings)
    options = TrackOptions(max_commands=1 << 20)
    binding = SourceBinding("track")  # the service's default source for its API key
    now_ms = time.time_ns() // 1_000_000
    records: list[tuple[bytes, bytes]] = []
    for payload in payloads:
        records += parse_track_body(payload, decoder, options, binding, now_ms).records
    return records


async def drive(url: str, payloads: list[bytes], clients: int) -> tuple[int, float, int]:
    """Post every payload with ``clients`` concurrent connections; (accepted, seconds, 503s)."""
    headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
    target = f"{url}/track/batch"
    pending = iter(payloads)
    accepted = retries = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal accepted, retries
            for payload in pending:
                while True:
                    async with session.post(target, data=payload, headers=headers) as r:
                        body = await r.read()
                        if r.status == 503:
                            retries += 1
                            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                            continue
                        if r.status != 200:
                            raise RuntimeError(f"HTTP {r.status}: {body[:200]!r}")
                        accepted += orjson.loads(body)["accepted"]
                        break

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
    return accepted, seconds, retries


def run(events: int, batch: int, clients: int, repeat: int, console: Console) -> list[BenchRow]:
    payloads = bodies(events, batch)
    with kafka() as servers, tempfile.TemporaryDirectory(prefix="streams-bench-http-") as tmp:
        template = Settings(kafka_bootstrap_servers=servers, partitions=PARTITIONS)
        records = records_of(payloads, template)
        if len(records) != events:
            raise RuntimeError(f"the parser accepted {len(records)} of {events} commands")
        console.print(
            f"{events:,} events in {len(payloads):,} requests of {batch} commands, "
            f"{clients} concurrent clients, Kafka on {servers}"
        )
        rounds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for number in range(repeat):
            for name in CONTENDERS:
                settings = _fresh_topics(template)
                if name == HTTP:
                    with _service(settings, Path(tmp)) as url:
                        asyncio.run(drive(url, payloads[:1], 1))  # warm-up: metadata, connections
                        accepted, seconds, retries = asyncio.run(drive(url, payloads, clients))
                    expected = events + batch  # the warm-up request too
                    if accepted != events or retries:
                        raise RuntimeError(f"accepted {accepted} of {events}, {retries} 503s")
                else:
                    seconds = raw_produce(settings, records, callback=name == RAW_CALLBACK)
                    expected = events
                stored = topic_size(servers, settings.input_topic, PARTITIONS)
                if stored != expected:
                    raise RuntimeError(f"{name}: topic holds {stored}, expected {expected}")
                rounds[name].append(seconds)
                console.print(f"  round {number + 1} {name}: {events / seconds:,.0f} events/s")
    return [
        BenchRow(name, events, statistics.median(times), tuple(times))
        for name, times in rounds.items()
    ]


def _fresh_topics(template: Settings) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    names = {field: f"bench-http-{field.split('_')[0]}-{suffix}" for field in TOPIC_FIELDS}
    settings = template.model_copy(update=names)
    create_topics(settings)
    return settings


SERVE_CONFIG = (
    f'[tracking]\napi_keys = ["{API_KEY}"]\nmax_commands = 100000\n'
    "[server]\nmax_body_bytes = 134217728\nmax_in_flight_bytes = 268435456\n"
)


@contextmanager
def _service(settings: Settings, tmp: Path) -> Iterator[str]:
    config = tmp / "serve.toml"
    config.write_text(SERVE_CONFIG, encoding="utf-8")
    with serve_process(settings, config) as (_, url):
        yield url


def table(rows: list[BenchRow]) -> Table:
    return bench_table("HTTP ingestion vs raw producer (medians)", "events", rows, RAW)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_http", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="commands per request")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    if min(args.events, args.batch, args.clients, args.repeat) < 1:
        parser.error("--events, --batch, --clients and --repeat must be positive")
    console = Console()
    rows = run(args.events, args.batch, args.clients, args.repeat, console)
    console.print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
