"""`make run`: embedded Kafka, topics, one worker, the sample CRM snapshot bootstrapped (as
``streams bootstrap`` does it), the sample live events, then a live update every few seconds.

The snapshot is older than every live event, so its rows fill in what nothing fresher wrote and
the live values stay: the summary shows both, and one customer's profile property by property.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import random
import signal
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from streams.bootstrap.cli import run_bootstrap
from streams.bootstrap.mapping import BootstrapMapping, load_mapping
from streams.broker.embedded import EmbeddedKafka
from streams.broker.jars import ensure_jars
from streams.errors import StreamsError
from streams.kafka.produce import produce_file, produce_lines
from streams.kafka.reachability import require_kafka
from streams.kafka.topics import create_topics
from streams.logs import configure_logging, mask_emails
from streams.processor.records import BatchCounts
from streams.processor.runner import WorkerService
from streams.settings import Settings
from streams.web.client import fetch_profile

logger = logging.getLogger(__name__)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE = SAMPLES / "profile_changes.jsonl"
SNAPSHOT = SAMPLES / "customers_snapshot.csv"
SNAPSHOT_MAPPING = SAMPLES / "bootstrap_mapping.json"
SNAPSHOT_MAX_REJECT_SHARE = 0.2  # the sample holds one bad email in eight rows, on purpose
DEFAULT_KAFKA_PORT = 9092
SETTLE_TIMEOUT_SECONDS = 120.0
TRICKLE_INTERVAL_SECONDS = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXAMPLE_CUSTOMER = "c-1002"


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def run_demo(*, once: bool = False, sample: Path = SAMPLE, snapshot: Path = SNAPSHOT) -> int:
    configure_logging(
        os.environ.get("STREAMS_LOG_LEVEL", "WARNING"), log_format=Settings().log_format
    )
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
        produced = _bootstrap(console, settings, snapshot, data_dir)
        if produced is None or not _settle(worker.totals, produced):
            console.print("[red]the snapshot was not bootstrapped and processed[/]")
            return 1
        from_snapshot = BatchCounts()
        from_snapshot.add(worker.totals)
        sent = produce_file(settings, sample)
        console.print(f"Produced [bold]{sent}[/] live events from {sample.name}")
        if not _settle(worker.totals, produced + sent):
            console.print("[red]the worker did not process the sample in time[/]")
            return 1
        _report(console, from_snapshot, worker.totals)
        _example(console, service.url, snapshot)
        _how_to_query(console, service.url, tokens=bool(settings.api_tokens))
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


def _bootstrap(console: Console, settings: Settings, snapshot: Path, data_dir: Path) -> int | None:
    """``streams bootstrap`` of the sample snapshot; the events it produced, None if it failed."""
    report_path = data_dir / "snapshot.report.json"
    captured = io.StringIO()  # its summary: the demo prints a shorter one
    code = run_bootstrap(
        str(snapshot),
        SNAPSHOT_MAPPING,
        job_id="demo-snapshot",
        report=report_path,
        max_reject_share=SNAPSHOT_MAX_REJECT_SHARE,
        checkpoint_dir=data_dir / "bootstrap",
        settings=settings,
        progress=False,
        console=Console(file=captured, width=console.width),
    )
    if code != 0:
        console.print(captured.getvalue(), markup=False, highlight=False)
        return None
    report = orjson.loads(report_path.read_bytes())
    rejected = report["rejected"]
    reasons = ", ".join(f"{reason}={n}" for reason, n in rejected["by_reason"].items())
    console.print(
        f"Bootstrapped the CRM snapshot {snapshot.name}, older than every live event:\n"
        f"  {report['total']} rows, [bold]{report['produced']}[/] produced, "
        f"{rejected['count']} rejected ({reasons or 'none'}), "
        f"{report['duplicates']['count']} duplicate id(s)",
        highlight=False,
    )
    produced: int = report["produced"]
    return produced


def _report(console: Console, snapshot: BatchCounts, totals: BatchCounts) -> None:
    table = Table(title="Processed")
    table.add_column("outcome")
    table.add_column("snapshot", justify="right")
    table.add_column("live events", justify="right")

    def row(label: str, before: int, after: int) -> None:
        table.add_row(label, str(before), str(after - before))

    row("applied (upsert emitted)", snapshot.applied, totals.applied)
    row("stale (every write dropped)", snapshot.stale_events, totals.stale_events)
    row("  stale property writes", snapshot.stale_writes, totals.stale_writes)
    row("rejected to the DLQ", sum(snapshot.rejected.values()), sum(totals.rejected.values()))
    for reason, count in sorted(totals.rejected.items()):
        row(f"  {reason}", snapshot.rejected[reason], count)
    console.print(table)


def _example(console: Console, url: str, snapshot: Path) -> None:
    """The example customer's profile: which property the snapshot filled in, which the
    fresher live events kept."""
    try:
        answer = fetch_profile(EXAMPLE_CUSTOMER, include_timestamps=True, base_url=url)
    except StreamsError as exc:
        console.print(f"{EXAMPLE_CUSTOMER}'s profile: {exc}", style="red", markup=False)
        return
    profile = orjson.loads(answer)
    mapping = load_mapping(SNAPSHOT_MAPPING)
    written, written_at = _snapshot_row(snapshot, mapping, EXAMPLE_CUSTOMER)
    table = Table(title=f"{EXAMPLE_CUSTOMER}: the snapshot fills in, the fresher live values stay")
    for column in ("property", "value", "updated (UTC)", "from"):
        table.add_column(column)
    for name, state in sorted(profile["properties"].items()):
        updated = datetime.fromtimestamp(state["last_update"], UTC)
        if written_at is not None and abs(state["last_update"] - written_at) < 0.001:
            origin = "snapshot"
        elif name in written and written[name] == _shown(state["value"]):
            origin = "live, newer (the snapshot's value too)"
        elif name in written:
            origin = f"live, newer than the snapshot's {mask_emails(written[name])!r}"
        else:
            origin = "live"
        table.add_row(name, _shown(state["value"]), f"{updated:%Y-%m-%d %H:%M:%S}", origin)
    console.print(table)


def _snapshot_row(
    snapshot: Path, mapping: BootstrapMapping, customer: str
) -> tuple[dict[str, str], float | None]:
    """The properties the snapshot's last row of ``customer`` writes (as written in the file)
    and its update time in epoch seconds."""
    with snapshot.open(newline="", encoding=mapping.encoding) as handle:
        rows = [r for r in csv.DictReader(handle) if r[mapping.id_column] == customer]
    if not rows:
        return {}, None
    row = rows[-1]
    written = {p.to_property: row[p.from_column] for p in mapping.properties if row[p.from_column]}
    if mapping.update_timestamp is None:
        return written, None
    moment = datetime.fromisoformat(row[mapping.update_timestamp.from_column])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=mapping.tz)
    return written, moment.timestamp()


def _shown(value: Any) -> str:
    return mask_emails(value) if isinstance(value, str) else orjson.dumps(value).decode()


def _how_to_query(console: Console, url: str, *, tokens: bool) -> None:
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
