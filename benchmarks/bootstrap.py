"""``python -m benchmarks.bootstrap [--rows 1000000] [--repeat 5]``: snapshot bootstrap rows/s
side by side with a raw confluent-kafka producer sending the very same bytes, on one broker.

A synthetic CSV snapshot (``streams.bootstrap.generate``: a few duplicates, bad emails and
opt-outs) is generated once and mapped with the generator's mapping (8 typed properties) or,
with ``--mapping lean``, three text properties. Its events are encoded once, untimed, by the
bootstrap's own converter: the raw producers send exactly those keys and values from memory.
Then, per round, each contender writes into a fresh 8-partition topic, one after the other:

- raw, errors only: ``produce()`` per record, ``poll(0)`` per 20k, one final ``flush()``, the
  bootstrap's producer settings (the processor's, with the bootstrap's longer linger),
  delivery reports for failures only (the ceiling);
- raw, callback per record: the same with an ``on_delivery`` callback per record, the usual way
  to learn what was delivered;
- bootstrap: the whole job, from opening the file to the last confirmed chunk and checkpoint
  (read, validate, convert, de-duplicate, produce, confirm).

The machine is shared and noisy: rounds alternate the contenders and the median counts. An
untimed round of the raw producer and the job runs first: a fresh broker's first topics are
written much slower (the raw producer's first round ran at half its later speed).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.common import BenchRow, bench_table, kafka, raw_produce, scratch_dir
from benchmarks.data import create_topic, topic_size
from streams.bootstrap.delivery import PRODUCER_TUNING
from streams.bootstrap.files import CsvSource
from streams.bootstrap.generate import generate_snapshot, sample_mapping
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import BootstrapMapping, parse_mapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import Status
from streams.bootstrap.rows import RowLimits
from streams.settings import Settings

RAW = "raw producer, errors only"
RAW_CALLBACK = "raw producer, callback per record"
BOOTSTRAP = "bootstrap job"
CONTENDERS = (RAW, RAW_CALLBACK, BOOTSTRAP)
TARGET_VS_RAW = 0.8
DUPLICATES, BAD_EMAILS, REMOVALS = 0.01, 0.001, 0.001
# "sample": the generator's mapping (8 typed properties, a constant, opt-outs, duplicates
# detected); "lean": three text properties, as a plain CRM export would map them.
MAPPINGS = {
    "sample": sample_mapping(),
    "lean": {
        "ids": [{"from_column": "idecko"}],
        "properties": [
            {"from_column": "meno", "to_property": "first_name"},
            {"from_column": "priezvisko", "to_property": "last_name"},
            {"from_column": "mesto", "to_property": "city"},
        ],
    },
}


def run(
    rows: int = 1_000_000,
    *,
    bootstrap: str | None = None,
    repeat: int = 5,
    mapping: str = "sample",
    work_dir: Path | None = None,
    console: Console | None = None,
) -> list[BenchRow]:
    """Measure every contender ``repeat`` times; one row per contender (medians)."""
    console = console or Console()
    with scratch_dir(work_dir, "streams-bench-bootstrap-") as root, kafka(bootstrap) as servers:
        snapshot = root / "snapshot.csv"
        generate_snapshot(
            snapshot, rows, duplicate_share=DUPLICATES, bad_email_share=BAD_EMAILS,
            removal_share=REMOVALS,
        )  # fmt: skip
        parsed = parse_mapping(MAPPINGS[mapping])
        records = _encode(snapshot, parsed)
        console.print(
            f"{rows:,} rows, {len(records):,} events to produce ({mapping} mapping), "
            f"Kafka on {servers}"
        )
        rounds: dict[str, list[tuple[int, float]]] = {name: [] for name in CONTENDERS}
        for round_number in range(-1, repeat):  # round -1 warms the broker up, untimed
            for name in CONTENDERS if round_number >= 0 else (RAW, BOOTSTRAP):
                topic = f"bench-bootstrap-{uuid.uuid4().hex[:8]}"
                create_topic(servers, topic)
                settings = Settings(kafka_bootstrap_servers=servers, input_topic=topic)
                if name == BOOTSTRAP:
                    count, seconds = _bootstrap(settings, snapshot, parsed, root, round_number)
                else:
                    seconds = raw_produce(
                        settings, records, callback=name == RAW_CALLBACK, tuning=PRODUCER_TUNING
                    )
                    count = len(records)
                stored = topic_size(servers, topic)
                if stored != len(records):
                    raise RuntimeError(f"{name}: topic holds {stored}, expected {len(records)}")
                if round_number < 0:
                    console.print(f"  warm-up {name}: {count / seconds:,.0f} rows/s (not counted)")
                    continue
                rounds[name].append((count, seconds))
                console.print(f"  round {round_number + 1} {name}: {count / seconds:,.0f} rows/s")
    result = []
    for name in CONTENDERS:
        times = tuple(seconds for _, seconds in rounds[name])
        count = rows if name == BOOTSTRAP else len(records)
        result.append(BenchRow(name, count, statistics.median(times), times))
    return result


def _encode(snapshot: Path, mapping: BootstrapMapping) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs a bootstrap of ``snapshot`` produces."""
    records: list[tuple[bytes, bytes]] = []
    with CsvSource(snapshot) as source:
        converter = NativeConverter(
            mapping,
            source,
            job_id="bench",
            snapshot_ms=time.time_ns() // 1_000_000,
            since_ms=None,
            limits=RowLimits(2**62, 1 << 20),
        )
        for _, out in converter.chunks(20_000):
            records += zip(out.keys, out.payloads, strict=True)
    return records


def _bootstrap(
    settings: Settings, snapshot: Path, mapping: BootstrapMapping, root: Path, round_number: int
) -> tuple[int, float]:
    options = JobOptions(
        job_id=f"bench-{round_number}-{uuid.uuid4().hex[:6]}",
        checkpoint_dir=root / "checkpoints",
        max_reject_share=1.0,
    )
    job = BootstrapJob(settings, mapping, lambda since: CsvSource(snapshot), options)
    started = time.perf_counter()
    report = job.run()
    seconds = time.perf_counter() - started
    if report.status is not Status.COMPLETED:
        raise RuntimeError(f"bootstrap ended {report.status}: {report.error}")
    return report.stats.total, seconds


def table(rows: list[BenchRow]) -> Table:
    return bench_table(
        "snapshot bootstrap vs raw producer (medians)",
        "rows",
        rows,
        RAW,
        ratio_header="x raw (errors only)",
        target=(BOOTSTRAP, TARGET_VS_RAW),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bootstrap", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mapping", choices=sorted(MAPPINGS), default="sample")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the snapshot here")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    console = Console()
    rows = run(
        args.rows, repeat=args.repeat, mapping=args.mapping, work_dir=args.work_dir, console=console
    )
    console.print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
