"""``python -m benchmarks.state_scale [--customers N]``: one worker's local state at scale.

A real ``streams worker`` subprocess (so its RSS is its own) on one broker (the configured one
or an embedded one), 8 partitions, one event per customer:

1. load: the first ``--checkpoint`` customers (default 100,000), then the rest (default up to
   1,000,000); per phase, events/s (from producing its first event to the worker having
   consumed its last) and the worker's RSS as the last event came and after ``--idle``
   seconds without input; the peak RSS;
2. cold restore: a second worker on an empty data dir restores every partition from the
   changelog; seconds from its start to the first correct answer for a customer of each
   partition, its CPU seconds and its RSS once all answer;
3. warm restart: that worker again on its own data dir, measured the same way.

After each restart a sample of customers must answer exactly what was loaded. Exit status:
non-zero on a failure (a worker died, a wrong answer, a timeout); a missed target is printed as
MISSED but does not fail the run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.common import PARTITIONS, kafka
from streams.kafka.clients import producer_config
from streams.kafka.partitioner import partition_for
from streams.kafka.topics import create_topics
from streams.settings import Settings

FIRST_NAMES = ("Marian", "Ada", "Grace", "Linus", "Edsger", "Barbara", "Ken", "Frances")
CITIES = ("Bratislava", "Berlin", "Lisbon", "Oslo", "Prague", "Vienna", "Warsaw", "Zagreb")
HISTORY_SECONDS = 30 * 24 * 3600  # update times well before "now" (the clock-skew rule)
TARGET_COLD_SECONDS = 5.0
SERVED_EARLY = 0.75  # the first partition answers within this share of the last one's time
SAMPLE = 200  # customers checked after each restart
POLL_SECONDS = 0.25
PROBE_SECONDS = 0.05  # between rounds of queries: each one costs the worker CPU too
START_TIMEOUT = 60.0
SERVE_TIMEOUT = 300.0
STOP_TIMEOUT = 60.0
HTTP_TIMEOUT = 5.0
POLL_PRODUCER_EVERY = 10_000
MIB = 1024 * 1024

console = Console()
if not console.is_terminal:  # make bench | tee: keep the table on one line per row
    console = Console(width=160)


class BenchError(Exception):
    """The run cannot go on: a worker died, answered wrong or not in time."""


def customer_id(index: int) -> str:
    return f"c-{index}"


def properties(index: int) -> dict[str, object]:
    """What customer ``index`` was given: deterministic, so any answer can be checked."""
    return {
        "first_name": FIRST_NAMES[index % len(FIRST_NAMES)],
        "city": CITIES[(index // len(FIRST_NAMES)) % len(CITIES)],
        "score": (index * 7919) % 1_000_000,
    }


@dataclass
class WorkerProcess:
    """``streams worker`` in a subprocess of its own, logging to ``log``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def status_mib(self, field_name: str) -> float:
        """A ``/proc/<pid>/status`` size (``VmRSS``, ``VmHWM``) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
        raise BenchError(f"no {field_name} for pid {self.pid}")

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=HTTP_TIMEOUT) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def cpu_seconds(self) -> float:
        """User + system CPU the process used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = "".join(self.log.read_text(errors="replace").splitlines(True)[-20:])
            raise BenchError(f"worker exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("input_topic", "upserts_topic", "stale_topic", "dlq_topic", "changelog_topic"):
        env[f"STREAMS_{name.upper()}"] = str(getattr(settings, name))
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["STREAMS_GROUP_ID"] = settings.group_id
    env["STREAMS_PARTITIONS"] = str(settings.partitions)
    env.setdefault("STREAMS_LOG_LEVEL", "INFO")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_worker(settings: Settings, data_dir: Path, log: Path) -> Iterator[WorkerProcess]:
    port = free_port()
    command = [sys.executable, "-m", "streams.cli.main", "worker"]
    command += ["--data-dir", str(data_dir), "--web-port", str(port), "--web-host", "127.0.0.1"]
    with log.open("ab") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=worker_env(settings), stdout=handle, stderr=subprocess.STDOUT
        )
    worker = WorkerProcess(process, f"http://127.0.0.1:{port}", log, started)
    try:
        yield worker
    finally:
        worker.stop()


def wait_listening(worker: WorkerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        worker.check_alive()
        try:
            with urllib.request.urlopen(f"{worker.url}/health", timeout=HTTP_TIMEOUT):
                return
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.1)
    raise BenchError(f"worker did not listen within {START_TIMEOUT:.0f} s")


def produce_customers(
    settings: Settings, first: int, last: int, advance: Callable[[int], None]
) -> None:
    """One event per customer ``first`` .. ``last - 1``, keyed, the Java-compatible partitioner."""
    producer = Producer(producer_config(settings, **{"linger.ms": 20, "client.id": "bench"}))
    errors: list[str] = []

    def on_error(error: object, _message: object) -> None:
        if error is not None:
            errors.append(str(error))

    base = int(time.time()) - HISTORY_SECONDS
    topic = settings.input_topic
    for index in range(first, last):
        key = customer_id(index)
        value = orjson.dumps(
            {
                "customer_id": key,
                "source": "crm",
                "update_timestamp": base + index % HISTORY_SECONDS,
                "properties": properties(index),
            }
        )
        while True:
            try:
                producer.produce(topic, value, key.encode(), on_delivery=on_error)
                break
            except BufferError:
                producer.poll(0.05)
        if (index - first) % POLL_PRODUCER_EVERY == POLL_PRODUCER_EVERY - 1:
            producer.poll(0)
            advance(POLL_PRODUCER_EVERY)
    remaining = producer.flush(120)
    advance((last - first) % POLL_PRODUCER_EVERY)
    if remaining or errors:
        raise BenchError(f"producing: {remaining} undelivered, errors {errors[:3]}")


@dataclass
class LoadPhase:
    customers: int
    events: int
    seconds: float
    busy_mib: float  # RSS as the last event was consumed
    idle_mib: float  # RSS after --idle seconds without input

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def load(
    settings: Settings,
    worker: WorkerProcess,
    first: int,
    last: int,
    idle: float,
    progress: Progress,
) -> LoadPhase:
    """Produce customers ``first`` .. ``last - 1``, wait until the worker consumed them, then
    ``idle`` seconds."""
    produced = progress.add_task(f"produce customers {first:,}-{last:,}", total=last - first)
    consumed = progress.add_task("  worker consumed", total=last - first)
    started = time.perf_counter()
    produce_customers(settings, first, last, lambda n: progress.advance(produced, n))
    deadline = time.monotonic() + SERVE_TIMEOUT + (last - first) / 1000
    while True:
        worker.check_alive()
        done = int(worker.metric("streams_events_in_total"))
        progress.update(consumed, completed=done - first)
        if done >= last:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"worker consumed {done:,} of {last:,} events in time")
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    busy = worker.status_mib("VmRSS")
    rejected = worker.metric("streams_events_rejected_total")
    if rejected:
        raise BenchError(f"worker rejected {rejected:.0f} events")
    waiting = progress.add_task(f"  idle {idle:.0f} s", total=idle)
    until = time.monotonic() + idle
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        progress.update(waiting, completed=idle - max(until - time.monotonic(), 0))
    worker.check_alive()
    return LoadPhase(last, last - first, seconds, busy, worker.status_mib("VmRSS"))


@dataclass
class Restart:
    """Seconds from a worker's start until each partition answered correctly."""

    name: str
    answered: dict[int, float]
    rss_mib: float
    cpu_seconds: float
    restored: list[str] = field(default_factory=list)

    @property
    def first(self) -> float:
        return min(self.answered.values())

    @property
    def last(self) -> float:
        return max(self.answered.values())


def probes(customers: int) -> dict[int, int]:
    """One customer per partition: the highest index, so the last record of its partition."""
    chosen: dict[int, int] = {}
    for index in range(customers - 1, -1, -1):
        partition = partition_for(customer_id(index).encode(), PARTITIONS)
        chosen.setdefault(partition, index)
        if len(chosen) == PARTITIONS:
            break
    return chosen


def ask(worker: WorkerProcess, index: int) -> int:
    """The status of one query; 200 only with exactly the loaded properties."""
    url = f"{worker.url}/customers/{customer_id(index)}"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # not listening yet
    if body != {"properties": properties(index)}:
        raise BenchError(f"{customer_id(index)} answered {body}, expected {properties(index)}")
    return 200


def time_restart(name: str, worker: WorkerProcess, customers: int, progress: Progress) -> Restart:
    """Ask for one customer of each partition until each answers; then check a sample."""
    pending = probes(customers)
    answered: dict[int, float] = {}
    task = progress.add_task(f"{name}: partitions answering", total=len(pending))
    deadline = time.monotonic() + SERVE_TIMEOUT
    while pending:
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{name}: partitions {sorted(pending)} never answered")
        for partition, index in list(pending.items()):
            status = ask(worker, index)
            if status == 200:
                answered[partition] = time.perf_counter() - worker.started
                del pending[partition]
                progress.advance(task)
            elif status not in (0, 503):
                raise BenchError(f"{name}: {customer_id(index)} answered HTTP {status}")
        time.sleep(PROBE_SECONDS)
    rss, cpu = worker.status_mib("VmRSS"), worker.cpu_seconds()
    rng = random.Random(name)
    for index in rng.sample(range(customers), min(SAMPLE, customers)):
        status = ask(worker, index)
        if status != 200:
            raise BenchError(f"{name}: {customer_id(index)} answered HTTP {status}")
    restored = [
        line[line.index("restored partition=") :].strip()
        for line in worker.log.read_text(errors="replace").splitlines()
        if "restored partition=" in line
    ]
    return Restart(name, answered, rss, cpu, restored)


@dataclass
class Results:
    loads: list[LoadPhase] = field(default_factory=list)
    peak_mib: float = 0.0
    restarts: list[Restart] = field(default_factory=list)


def run(args: argparse.Namespace, work_dir: Path) -> Results:
    results = Results()
    suffix = uuid.uuid4().hex[:8]
    with kafka() as bootstrap:
        console.print(f"Kafka: {bootstrap}; work dir {work_dir}")
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            input_topic=f"scale-input-{suffix}",
            upserts_topic=f"scale-upserts-{suffix}",
            stale_topic=f"scale-stale-{suffix}",
            dlq_topic=f"scale-dlq-{suffix}",
            changelog_topic=f"scale-changelog-{suffix}",
            group_id=f"scale-processor-{suffix}",
            partitions=PARTITIONS,
        )
        create_topics(settings)
        steps = sorted({min(args.checkpoint, args.customers), args.customers})
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            with running_worker(settings, work_dir / "load", work_dir / "load.log") as worker:
                wait_listening(worker)
                first = 0
                for last in steps:
                    results.loads.append(load(settings, worker, first, last, args.idle, progress))
                    first = last
                results.peak_mib = worker.status_mib("VmHWM")
            # A replica on an empty data dir, then the same one again on what it restored.
            replica = work_dir / "replica"
            for name in ("cold restore", "warm restart"):
                log = work_dir / f"{name.replace(' ', '-')}.log"
                with running_worker(settings, replica, log) as worker:
                    results.restarts.append(time_restart(name, worker, args.customers, progress))
    return results


def report(results: Results, args: argparse.Namespace) -> list[tuple[str, bool]]:
    """Print the table; returns the targets, each with whether it was met."""
    table = Table(title=f"Worker state at scale ({args.customers:,} customers, 8 partitions)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    for phase in results.loads:
        table.add_row(
            f"load {phase.customers - phase.events:,} -> {phase.customers:,} customers",
            f"{phase.rate:,.0f} events/s",
            f"{phase.events:,} events in {phase.seconds:.1f} s",
        )
    for phase in results.loads:
        table.add_row(
            f"RSS at {phase.customers:,} customers",
            f"{phase.idle_mib:,.0f} MiB",
            f"after {args.idle:.0f} s idle; {phase.busy_mib:,.0f} MiB as the last event came",
        )
    table.add_row("peak RSS while loading", f"{results.peak_mib:,.0f} MiB", "VmHWM")
    for restart in results.restarts:
        spread = ", ".join(f"p{p} {s:.1f}" for p, s in sorted(restart.answered.items()))
        table.add_row(f"{restart.name}: first partition answers", f"{restart.first:.2f} s", "")
        table.add_row(f"{restart.name}: all partitions answer", f"{restart.last:.2f} s", spread)
        table.add_row(
            f"{restart.name}: worker CPU until then",
            f"{restart.cpu_seconds:.2f} s",
            "user + system, the worker's start included",
        )
        table.add_row(f"{restart.name}: RSS once all answer", f"{restart.rss_mib:,.0f} MiB", "")
    console.print(table)
    for restart in results.restarts:
        for line in restart.restored:
            console.print(f"[cyan]{restart.name}:[/cyan] {line}", highlight=False)
    cold = next(r for r in results.restarts if r.name == "cold restore")
    served = sorted(cold.answered.values())
    verdicts = [
        (
            f"cold restore of {args.customers:,} profiles answers within "
            f"{TARGET_COLD_SECONDS:.0f} s: first partition {cold.first:.2f} s, "
            f"all {cold.last:.2f} s",
            cold.first <= TARGET_COLD_SECONDS,
        ),
        (
            "partitions answer one by one as each is restored, not all at the end: the first "
            f"within {SERVED_EARLY:.0%} of the last one's time (first {served[0]:.2f} s, "
            f"last {served[-1]:.2f} s)",
            served[0] <= SERVED_EARLY * served[-1],
        ),
    ]
    if len(results.loads) > 1:
        small, large = results.loads[0], results.loads[-1]
        growth = large.idle_mib - small.idle_mib
        budget = _cache_budget_mib()
        verdicts.append(
            (
                f"RSS {small.customers:,} -> {large.customers:,} customers grows "
                f"{growth:,.0f} MiB, within the RocksDB caches configured ({budget:,.0f} MiB)",
                growth <= budget,
            )
        )
    return verdicts


def _cache_budget_mib() -> float:
    """What a worker's RocksDB may hold in memory by its settings: block cache + memtables."""
    settings = Settings()
    return (settings.rocksdb_block_cache_bytes + settings.rocksdb_write_buffer_bytes) / MIB


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.state_scale", description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers loaded")
    parser.add_argument(
        "--checkpoint", type=int, default=100_000, help="customers at the first RSS reading"
    )
    parser.add_argument(
        "--idle", type=float, default=12.0, help="seconds without input before reading RSS"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (data, logs)")
    args = parser.parse_args(argv)
    if args.customers < PARTITIONS * 10 or args.checkpoint < 1 or args.idle < 0:
        parser.error(f"--customers needs at least {PARTITIONS * 10}; the others positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="streams-state-scale-"))
    started = time.monotonic()
    failed = True
    try:
        results = run(args, work_dir)
        verdicts = report(results, args)
        for line, met in verdicts:
            colour, word = ("green", "met") if met else ("bold red", "MISSED")
            console.print(f"[{colour}]{line} -> {word}[/{colour}]", highlight=False)
        failed = False
    except BenchError as exc:
        console.print(f"[bold red]FAILED[/bold red]: {exc}", highlight=False)
    finally:
        elapsed = time.monotonic() - started
        if failed or args.keep:
            console.print(f"work dir (data and worker logs) kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        console.print(f"whole run {elapsed:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
