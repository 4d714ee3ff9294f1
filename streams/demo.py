"""`make run`: embedded Kafka, topics, one worker, the sample data, then live updates."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from streams.broker.embedded import EmbeddedKafka
from streams.broker.jars import ensure_jars
from streams.kafka.produce import produce_file, produce_lines
from streams.kafka.reachability import require_kafka
from streams.kafka.topics import create_topics
from streams.logs import configure_logging
from streams.processor.records import BatchCounts
from streams.processor.runner import WorkerService
from streams.settings import Settings

logger = logging.getLogger(__name__)

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "profile_changes.jsonl"
DEFAULT_KAFKA_PORT = 9092
SETTLE_TIMEOUT_SECONDS = 120.0
TRICKLE_INTERVAL_SECONDS = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXAMPLE_CUSTOMER = "c-1002"


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def run_demo(*, once: bool = False, sample: Path = SAMPLE) -> int:
    configure_logging(os.environ.get("STREAMS_LOG_LEVEL", "WARNING"))
    console = Console()
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        yours = bootstrap is not None
        if bootstrap is None:
            console.print("[bold]Starting the embedded Apache Kafka (KRaft)...[/]")
            ensure_jars()
            port = DEFAULT_KAFKA_PORT if _free(DEFAULT_KAFKA_PORT) else 0
            kafka = stack.enter_context(EmbeddedKafka(port=port))
            bootstrap = kafka.bootstrap_servers
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streams-demo-")))
        web_port = Settings().web_port
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            data_dir=data_dir,
            web_port=web_port if _free(web_port) else 0,
            group_id=f"profile-streams-demo-{int(time.time())}",
        )
        if yours:  # said at once when it is not there, as by every other command
            require_kafka(settings)
        console.print(f"Kafka at [cyan]{bootstrap}[/]; provisioning topics...")
        for status in create_topics(settings):
            console.print(f"  {'created' if status.created else 'exists '} {status.name}")
        service = WorkerService(settings)
        service.start()
        stack.callback(service.stop)
        worker = service.worker
        assert worker is not None
        worker.wait_assigned(SETTLE_TIMEOUT_SECONDS)
        sent = produce_file(settings, sample)
        console.print(f"Produced [bold]{sent}[/] sample events from {sample.name}")
        if not _settle(worker.totals, sent):
            console.print("[red]the worker did not process the sample in time[/]")
            return 1
        _report(console, worker.totals, service.url, tokens=bool(settings.api_tokens))
        if once:
            return 0
        console.print("\nStreaming a live update every few seconds; [bold]Ctrl-C[/] stops.")
        _trickle(console, settings, worker.totals)
    console.print("Stopped cleanly.")
    return 0


def _settle(totals: BatchCounts, expected: int) -> bool:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        # Rerouted records are consumed twice: once where they landed, once at home.
        if totals.events_in - totals.rerouted >= expected:
            return True
        time.sleep(0.2)
    return False


def _report(console: Console, totals: BatchCounts, url: str, *, tokens: bool) -> None:
    table = Table(title="Sample processed")
    table.add_column("outcome")
    table.add_column("events", justify="right")
    table.add_row("applied (upsert emitted)", str(totals.applied))
    table.add_row("stale (every write dropped)", str(totals.stale_events))
    table.add_row("  stale property writes", str(totals.stale_writes))
    table.add_row("rejected to the DLQ", str(sum(totals.rejected.values())))
    for reason, count in sorted(totals.rejected.items()):
        table.add_row(f"  {reason}", str(count))
    console.print(table)
    console.print("Query a profile (Bloomreach's format):")
    # The first of the tokens, never the token itself on the terminal.
    auth = ' -H "Authorization: Bearer ${STREAMS_API_TOKENS%%,*}"' if tokens else ""
    console.print(f"  curl{auth} '{url}/customers/{EXAMPLE_CUSTOMER}?include_timestamps=1'")
    console.print(f"  .venv/bin/streams profile get {EXAMPLE_CUSTOMER} --url {url}")
    console.print(f"  metrics: curl {url}/metrics    health: curl {url}/health")


def _trickle(console: Console, settings: Settings, totals: BatchCounts) -> None:
    """Until Ctrl-C (or SIGTERM). The signal only sets an event: raised inside a librdkafka
    call such as flush() it would surface as a SystemError instead of KeyboardInterrupt."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    rnd = random.Random()
    cities = ["Brno", "Praha", "Ostrava", "Plzen", "Olomouc"]
    try:
        while not stop.wait(TRICKLE_INTERVAL_SECONDS):
            customer = f"c-{1000 + rnd.randint(1, 40)}"
            event = {
                "customer_id": customer,
                "source": "web",
                "update_timestamp": time.time(),
                "properties": {"city": rnd.choice(cities), "last_seen_page": "/live"},
            }
            produce_lines(settings, [orjson.dumps(event)])
            console.print(
                f"live update {customer}: applied={totals.applied} stale={totals.stale_events} "
                f"rejected={sum(totals.rejected.values())}"
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("\nCtrl-C: stopping the worker and the broker...")
