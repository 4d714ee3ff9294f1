"""``python -m benchmarks.run``: every contender on the same pre-produced input, one broker.

Per scenario the input is generated and produced once, before anything is timed; then each
contender reads it with a consumer group of its own, in a subprocess of its own, one after
another. The machine is shared and noisy, so the ratios within one run are what count; the
fast contenders (the raw passthrough, the processor, Quix Streams) take ``--repeat`` turns,
one after another, and each one's best time counts: the least disturbed run is the closest to
its cost, for the baseline as for the others.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.common import Result, Spec
from benchmarks.contenders import (
    CONTENDERS,
    FAUST_BATCH,
    FAUST_ENGINE,
    FAUST_NAIVE,
    PASSTHROUGH,
    PROCESSOR,
    QUIX,
    Contender,
    run_contender,
)
from benchmarks.data import SCENARIOS, Dataset, create_topic, generate, produce, topic_size
from benchmarks.quix_env import QuixUnavailableError, ensure_quix_python
from benchmarks.report import Report, Row
from streams.broker.embedded import EmbeddedKafka
from streams.broker.jars import ensure_jars, kafka_version

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROPERTIES_PER_EVENT = 3
# Generous time limits per contender (besides startup): seconds = base + events / floor rate.
TIMEOUT_BASE = 60.0
TIMEOUT_FLOOR_RATE = 500.0

console = Console()
if not console.is_terminal:  # make bench | tee: keep the table on one line per row
    console = Console(width=180)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--events", type=int, default=None, help="input events per scenario")
    parser.add_argument("--customers", type=int, default=None, help="distinct customers")
    parser.add_argument(
        "--faust-naive-events",
        type=int,
        default=None,
        help="events the naive Faust agent processes (a prefix of the input; it is slow)",
    )
    parser.add_argument(
        "--faust-batch-events",
        type=int,
        default=None,
        help="events the Faust take_events agent processes (a prefix of the input)",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run (20k events)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="turns of the fast contenders per scenario; the best of each counts (default 3)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated contenders to run (of: "
        + ", ".join(c.key for c in CONTENDERS)
        + "); results/latest.md is kept for whole runs",
    )
    args = parser.parse_args(argv)
    keys = {c.key for c in CONTENDERS}
    chosen = set(args.only.split(",")) if args.only else keys
    if chosen - keys:
        parser.error(f"unknown contenders: {', '.join(sorted(chosen - keys))}")
    args.contenders = [c for c in CONTENDERS if c.key in chosen]
    quick = args.quick
    args.events = args.events or (20_000 if quick else 200_000)
    args.customers = args.customers or max(1, args.events // 2)
    args.faust_naive_events = min(
        args.faust_naive_events or (5_000 if quick else 30_000), args.events
    )
    args.faust_batch_events = min(
        args.faust_batch_events or (20_000 if quick else 100_000), args.events
    )
    if min(args.events, args.customers, args.faust_naive_events, args.faust_batch_events) < 1:
        parser.error("event and customer counts must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


@contextmanager
def kafka() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        console.print(f"Kafka: {configured} (KAFKA_BOOTSTRAP_SERVERS)")
        yield configured
        return
    libs = ensure_jars()
    with EmbeddedKafka(libs_dir=libs) as broker:
        console.print(f"Kafka: embedded broker on {broker.bootstrap_servers}")
        yield broker.bootstrap_servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    # Made before the broker starts: a first run installs quixstreams (untimed).
    args.quix_python, args.quix_error = None, None
    try:
        if QUIX in args.contenders:
            args.quix_python = ensure_quix_python()
            console.print(f"Quix Streams: {args.quix_python}")
    except QuixUnavailableError as exc:
        args.quix_error = f"no interpreter with quixstreams: {exc}"
        console.print(args.quix_error, style="red", markup=False, highlight=False)
    work_root = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    report = Report()
    failed = False
    try:
        with kafka() as bootstrap:
            for scenario in SCENARIOS:
                dataset = generate(scenario, args.events, args.customers)
                failed |= not run_scenario(bootstrap, dataset, args, work_root, report)
    finally:
        if failed:
            console.print(f"[red]logs of the failed run kept in {work_root}[/red]")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    elapsed = time.monotonic() - started
    report.print(console)
    preamble = _preamble(args, elapsed)
    if len(args.contenders) == len(CONTENDERS):
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "latest.md").write_text(report.markdown(preamble), encoding="utf-8")
        console.print(f"written {RESULTS_DIR / 'latest.md'} (whole run {elapsed:.0f} s)")
    failures = [row for row in report.rows if row.result.error]
    for row in failures:
        console.print(f"[bold red]FAILED[/bold red] {row.scenario} / {row.contender.label}:")
        console.print(row.result.error, markup=False, highlight=False)
    return 1 if failures or report.problems else 0


def run_scenario(
    bootstrap: str, dataset: Dataset, args: argparse.Namespace, work_root: Path, report: Report
) -> bool:
    name = dataset.scenario.name
    slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-input-{slug}-{suffix}"
    create_topic(bootstrap, topic)
    seconds = produce(bootstrap, topic, dataset)
    stored = topic_size(bootstrap, topic)
    console.print(
        f"[bold]{name}[/bold]: produced {dataset.events:,} events over {dataset.customers:,} "
        f"customers ({dataset.stale_events:,} stale) to {topic} in {seconds:.1f} s"
    )
    if stored != dataset.events:
        report.problems.append(f"{name}: input topic holds {stored} records, not {dataset.events}")
        return False
    if not report.rows:
        warm_up(bootstrap, topic, dataset.events, work_root / f"warm-up-{suffix}")
    ok = True
    best: dict[str, tuple[Result, str]] = {}
    for turn in range(args.repeat):
        for contender in args.contenders:
            if turn and contender not in REPEATED:
                continue
            run_id = f"{slug}-{contender.key}-{suffix}-{turn}"
            result, note = _run_once(contender, dataset, args, bootstrap, topic, work_root / run_id)
            ok &= result.error is None
            if contender is PROCESSOR and result.error is None:
                ok &= check_processor(name, dataset, result, report)
            if contender is QUIX and result.error is None:
                ok &= check_quix(name, dataset, result, report)
            kept = best.get(contender.key)
            if kept is None or kept[0].error is not None or _faster(result, kept[0]):
                best[contender.key] = (result, note)
    for contender in args.contenders:
        result, note = best[contender.key]
        if contender in REPEATED and args.repeat > 1:
            note = ", ".join(filter(None, [note, f"best of {args.repeat}"]))
        report.rows.append(Row(name, contender, result, note))
    return ok


# Fast enough to run several times: the rest take minutes each.
REPEATED = (PASSTHROUGH, PROCESSOR, QUIX)


def _faster(result: Result, than: Result) -> bool:
    return result.error is None and result.seconds < than.seconds


def _run_once(
    contender: Contender,
    dataset: Dataset,
    args: argparse.Namespace,
    bootstrap: str,
    topic: str,
    work_dir: Path,
) -> tuple[Result, str]:
    events, note = _share(contender, dataset, args)
    work_dir.mkdir(parents=True)
    spec = Spec(
        bootstrap=bootstrap,
        input_topic=topic,
        events=events,
        run_id=work_dir.name,
        work_dir=str(work_dir),
        result_path=str(work_dir / "result.json"),
        variant=contender.variant,
        timeout=TIMEOUT_BASE + events / TIMEOUT_FLOOR_RATE,
    )
    console.print(f"  {contender.label}: {events:,} events ...", end=" ")
    if contender is QUIX and args.quix_error is not None:
        result = Result(0, 0.0, error=args.quix_error)
    else:
        python = args.quix_python if contender is QUIX else None
        result = run_contender(contender, spec, work_dir / "contender.log", python)
    if result.error is None:
        console.print(f"{result.rate:,.0f} events/s in {result.seconds:.2f} s")
        if contender is FAUST_ENGINE:
            console.print(f"    time split: {result.details.get('phases')}")
    else:
        console.print("[bold red]FAILED[/bold red]")
    return result, note


def warm_up(bootstrap: str, topic: str, events: int, work_dir: Path) -> None:
    """One untimed passthrough, so the first timed contender does not meet a cold broker JIT."""
    work_dir.mkdir(parents=True)
    spec = Spec(
        bootstrap=bootstrap,
        input_topic=topic,
        events=events,
        run_id=f"warm-up-{work_dir.name}",
        work_dir=str(work_dir),
        result_path=str(work_dir / "result.json"),
        timeout=TIMEOUT_BASE + events / TIMEOUT_FLOOR_RATE,
    )
    result = run_contender(PASSTHROUGH, spec, work_dir / "contender.log")
    state = "failed" if result.error else f"{result.rate:,.0f} events/s"
    console.print(f"  warm-up (untimed passthrough): {state}")


def _share(contender: Contender, dataset: Dataset, args: argparse.Namespace) -> tuple[int, str]:
    cap = {FAUST_NAIVE: args.faust_naive_events, FAUST_BATCH: args.faust_batch_events}.get(
        contender
    )
    if cap is None or cap >= dataset.events:
        return dataset.events, ""
    return cap, f"first {cap:,} consumed"


def check_processor(scenario: str, dataset: Dataset, result: Result, report: Report) -> bool:
    """The processor's counts against what the generated input must produce."""
    totals = result.details["totals"]
    topics = result.details["topics"]
    stale = dataset.stale_events
    applied = dataset.events - stale
    problems = _count_problems(dataset, totals, upserts_out=applied, rerouted=0)
    if totals["rejected"]:
        problems.append(f"rejected to the DLQ: {totals['rejected']}")
    for topic, want in (("upserts", applied), ("stale", stale * PROPERTIES_PER_EVENT), ("dlq", 0)):
        if topics[topic] != want:
            problems.append(f"{topic} topic holds {topics[topic]:,} records, expected {want:,}")
    problems.extend(_changelog_problems(dataset, topics["changelog"]))
    share = totals["stale_events"] / max(totals["events_in"], 1)
    summary = (
        f"{scenario}: processor totals events_in={totals['events_in']:,} "
        f"applied={totals['applied']:,} stale_events={totals['stale_events']:,} ({share:.1%}) "
        f"stale_writes={totals['stale_writes']:,} upserts_out={totals['upserts_out']:,}; "
        f"topics upserts={topics['upserts']:,} stale={topics['stale']:,} dlq={topics['dlq']:,} "
        f"changelog={topics['changelog']:,}; {result.details['batches']} batches"
    )
    report.checks.append(summary + (" (as expected)" if not problems else ""))
    phases = ", ".join(
        f"{label} {seconds:.2f} s ({seconds / result.seconds:.0%})"
        for label, seconds in result.details["phases"].items()
    )
    report.checks.append(f"{scenario}: processor time split of {result.seconds:.2f} s: {phases}")
    report.problems.extend(f"{scenario}: processor {problem}" for problem in problems)
    return not problems


def check_quix(scenario: str, dataset: Dataset, result: Result, report: Report) -> bool:
    """The Quix job's counts and output topics against what the generated input must produce,
    so that a Quix job that drops or skips work cannot look fast."""
    totals = result.details["totals"]
    topics = result.details["topics"]
    applied = dataset.events - dataset.stale_events
    problems = _count_problems(dataset, totals)
    if topics["output"] != applied:
        problems.append(f"output topic holds {topics['output']:,} records, expected {applied:,}")
    problems.extend(_changelog_problems(dataset, topics["changelog"]))
    versions = result.details["versions"]
    summary = (
        f"{scenario}: Quix totals events_in={totals['events_in']:,} "
        f"applied={totals['applied']:,} stale_events={totals['stale_events']:,} "
        f"stale_writes={totals['stale_writes']:,}; topics output={topics['output']:,} "
        f"changelog={topics['changelog']:,}; quixstreams {versions['quixstreams']}, "
        f"confluent-kafka {versions['confluent-kafka']} (librdkafka {versions['librdkafka']})"
    )
    report.checks.append(summary + (" (as expected)" if not problems else ""))
    report.problems.extend(f"{scenario}: Quix {problem}" for problem in problems)
    return not problems


def _count_problems(dataset: Dataset, totals: dict[str, Any], **more: int) -> list[str]:
    """Totals that differ from what the generated input must produce (and ``more``)."""
    stale = dataset.stale_events
    expected = {
        "events_in": dataset.events,
        "applied": dataset.events - stale,
        "stale_events": stale,
        "stale_writes": stale * PROPERTIES_PER_EVENT,
        **more,
    }
    return [
        f"totals.{key} = {totals[key]:,}, expected {value:,}"
        for key, value in expected.items()
        if totals[key] != value
    ]


def _changelog_problems(dataset: Dataset, records: int) -> list[str]:
    # One changelog record per customer changed per batch (checkpoint): between the bounds.
    applied = dataset.events - dataset.stale_events
    if dataset.customers <= records <= applied:
        return []
    return [
        f"changelog topic holds {records:,} records, expected between "
        f"{dataset.customers:,} (customers) and {applied:,} (applied events)"
    ]


def _preamble(args: argparse.Namespace, elapsed: float) -> list[str]:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpus = os.cpu_count()
    command = " ".join(["python -m benchmarks.run", *sys.argv[1:]])
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = (
        f"Kafka at {configured}"
        if configured
        else f"embedded Apache Kafka {kafka_version()} (KRaft, one node) on the same machine"
    )
    return [
        f"Run {when} on {platform.machine()} with {cpus} cores (shared, noisy), "
        f"Python {platform.python_version()}, {broker}; whole run {elapsed:.0f} s.",
        "",
        f"Input per scenario: {args.events:,} JSON events over {args.customers:,} customers, "
        f"8 partitions. Command: `{command}`.",
        "",
        "Faust rows marked [first N consumed] process only that prefix of the input (they are "
        "slow); every other row processes all of it. Rates are events/s from the first record "
        "consumed to the last one processed.",
    ]


if __name__ == "__main__":
    sys.exit(main())
