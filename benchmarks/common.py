"""What the orchestrator and the contender subprocesses exchange: a spec in, a result out.

A contender runs as ``python -m benchmarks.<module> '<spec json>'`` and writes its result as
JSON to ``spec.result_path`` (atomically, via a rename), so the parent never parses a
half-written file and stdout stays free for the contender's own logging.

The stand-alone benchmarks share the broker (``kafka()``: the configured one or an embedded
one), the raw producer they measure against (``raw_produce()``), a row per contender and the
table of those rows (``bench_table()``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Producer
from rich.table import Table

from streams.broker.embedded import EmbeddedKafka
from streams.broker.jars import ensure_jars
from streams.kafka.clients import producer_config
from streams.settings import Settings

PARTITIONS = 8
POLL_EVERY = 20_000
FLUSH_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Spec:
    """One contender run: which input to read and how many records count."""

    bootstrap: str
    input_topic: str
    events: int
    run_id: str
    work_dir: str
    result_path: str
    variant: str = ""
    timeout: float = 300.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> Spec:
        args = sys.argv[1:] if argv is None else argv
        if len(args) != 1:
            raise SystemExit("usage: python -m benchmarks.<contender> '<spec json>'")
        return cls(**json.loads(args[0]))


@dataclass(slots=True)
class Result:
    """What one contender measured; ``error`` set means the contender failed."""

    events: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def load(cls, path: Path) -> Result:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data)


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One contender of a stand-alone benchmark: ``count`` events (or rows), the median
    ``seconds`` of its ``rounds``."""

    contender: str
    count: int
    seconds: float
    rounds: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def write_result(spec: Spec, result: Result) -> None:
    target = Path(spec.result_path)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(asdict(result)), encoding="utf-8")
    os.replace(scratch, target)


def contender_main(run: Callable[[Spec], Result]) -> None:
    """Entry point of a contender subprocess: a failure becomes a result, never a traceback."""
    spec = Spec.from_argv()
    try:
        result = run(spec)
    except Exception as exc:
        result = Result(0, 0.0, error=f"{type(exc).__name__}: {exc}")
    write_result(spec, result)


def now() -> float:
    return time.perf_counter()


class Worker(Protocol):
    """A processor or connector worker: ``run()`` until ``stop()``, its failure in ``error``."""

    error: BaseException | None

    def run(self) -> None: ...

    def stop(self) -> None: ...


def run_worker(worker: Worker, done: threading.Event, timeout: float, poll: float) -> None:
    """Run ``worker`` on a thread until ``done`` is set, it fails or ``timeout`` seconds pass;
    then stop it and wait for it."""
    thread = threading.Thread(target=_run_quietly, args=(worker,), name="worker")
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not done.wait(poll):
            if worker.error is not None or not thread.is_alive():
                break
            if time.monotonic() > deadline:
                break
    finally:
        worker.stop()
        thread.join(60)


def _run_quietly(worker: Worker) -> None:
    try:
        worker.run()
    except BaseException:  # logged by the worker and kept in worker.error
        return


@contextmanager
def scratch_dir(path: Path | None, prefix: str) -> Iterator[Path]:
    """``path`` (created, kept), else a temporary directory removed afterwards."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield Path(scratch)


@contextmanager
def kafka(bootstrap: str | None = None) -> Iterator[str]:
    """Bootstrap servers: ``bootstrap``, else $KAFKA_BOOTSTRAP_SERVERS, else an embedded broker."""
    configured = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    with EmbeddedKafka(libs_dir=ensure_jars()) as broker:
        yield broker.bootstrap_servers


def raw_produce(
    settings: Settings,
    records: list[tuple[bytes, bytes]],
    *,
    callback: bool,
    tuning: Mapping[str, object] | None = None,
) -> float:
    """Seconds to produce ``records`` to the input topic with a plain confluent-kafka producer;
    ``callback``: a delivery report per record (else only failures report); ``tuning``: settings
    over the processor's producer settings (the contender's own, so both send alike)."""
    errors: list[object] = []

    def on_error(error: object, _message: object) -> None:
        if error is not None:
            errors.append(error)

    overrides: dict[str, object] = {**(tuning or {}), "client.id": "bench-raw"}
    if not callback:
        overrides |= {"delivery.report.only.error": True, "on_delivery": on_error}
    producer = Producer(producer_config(settings, **overrides))
    producer.list_topics(settings.input_topic, timeout=30)  # metadata before the clock starts
    topic, produce, poll = settings.input_topic, producer.produce, producer.poll
    started = time.perf_counter()
    for index, (key, value) in enumerate(records):
        while True:
            try:
                if callback:
                    produce(topic, value, key, on_delivery=on_error)
                else:
                    produce(topic, value, key)
                break
            except BufferError:
                poll(0.05)
        if index % POLL_EVERY == 0:
            poll(0)
    remaining = producer.flush(FLUSH_TIMEOUT)
    seconds = time.perf_counter() - started
    if remaining or errors:
        raise RuntimeError(f"raw producer: {remaining} undelivered, errors {errors[:3]}")
    return seconds


def bench_table(
    title: str,
    unit: str,
    rows: Sequence[BenchRow],
    raw: str,
    *,
    ratio_header: str = "x raw",
    target: tuple[str, float] | None = None,
) -> Table:
    """Medians per contender, each rate over the ``raw`` contender's; ``target``: a contender
    and the ratio it should reach (green when it does, else yellow)."""
    raw_rate = next(row.rate for row in rows if row.contender == raw)
    out = Table(title=title)
    for header in ("contender", unit, "seconds", f"{unit}/s", ratio_header, "rounds (s)"):
        out.add_column(header, justify="left" if header == "contender" else "right")
    for row in rows:
        ratio = f"{row.rate / raw_rate:.2f}" if raw_rate else "-"
        if target is not None and row.contender == target[0] and raw_rate:
            colour = "green" if row.rate / raw_rate >= target[1] else "yellow"
            ratio = f"[{colour}]{ratio}[/{colour}] (target {target[1]})"
        out.add_row(
            row.contender,
            f"{row.count:,}",
            f"{row.seconds:.2f}",
            f"{row.rate:,.0f}",
            ratio,
            ", ".join(f"{s:.2f}" for s in row.rounds),
        )
    return out


def faust_contender_main(build_app: Callable[[Spec], Any], name: str) -> None:
    """A Faust contender's entry point: its app from the spec (a failure to build it is written
    as the result), run as a Faust worker without web."""
    spec = Spec.from_argv()
    try:
        app = build_app(spec)
    except Exception as exc:
        write_result(spec, Result(0, 0.0, error=f"{type(exc).__name__}: {exc}"))
        raise
    logging.getLogger("faust").setLevel(logging.WARNING)
    # app.main() parses sys.argv; loglevel names are crit/error/warn/info/debug.
    sys.argv = [name, "worker", "-l", "warn", "--without-web"]
    app.main()
