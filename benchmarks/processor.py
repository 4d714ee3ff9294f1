"""Contender (c): the Profile Streams processor, the full path of one ``ProcessorWorker``:
decode, merge, upserts + stale + changelog delivery, rocksdict writes, commit.

Timed from the start of the first batch (its records just consumed) to the end of the batch
that brings ``worker.totals.events_in`` to N (outputs acknowledged, state written, offsets
committed). Afterwards, untimed, the output topics are counted against the totals.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common import Result, Spec, contender_main, now, run_worker
from benchmarks.data import topic_size
from streams.kafka.topics import create_topics
from streams.processor.records import InputRecord
from streams.processor.worker import ProcessorWorker
from streams.settings import Settings
from streams.state.store import PartitionStore

POLL_SECONDS = 0.02


class _Clock:
    """Times the worker from its first batch handled to the batch that completes the N-th
    event (batches overlap: a batch completes after the next one was merged)."""

    def __init__(self, worker: ProcessorWorker, target: int) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.batches = 0
        self.done = threading.Event()
        handle, complete = worker._handle, worker._complete

        def handled(records: list[InputRecord]) -> None:
            if self.first is None:
                self.first = now()
            handle(records)

        def completed(*args: Any) -> None:
            complete(*args)
            self.batches += 1
            if worker.totals.events_in >= target and self.last is None:
                self.last = now()
                self.done.set()

        worker._handle = handled  # type: ignore[method-assign]
        worker._complete = completed  # type: ignore[method-assign,assignment]


class _Phases:
    """Seconds spent in each step of the batch loop (summed over the measured batches)."""

    def __init__(self, worker: ProcessorWorker) -> None:
        self.seconds: dict[str, float] = {}
        # The merge runs on a thread of its own, overlapping the steps after it.
        self._wrap(worker._batch, "process", "merge thread: decode+merge+encode (incl. reads)")
        self._wrap(worker._batch, "_load", "merge thread: state reads (rocksdict get_many)")
        self._wrap(worker, "_merged", "waiting for the merge thread")
        self._wrap(worker._delivery, "start", "produce (outputs, changelog)")
        self._wrap(worker._delivery, "wait", "waiting for Kafka's acknowledgements")
        self._wrap(worker, "_commit", "offset commit")
        # Stores are opened lazily per partition: time the class's write.
        self._wrap(PartitionStore, "write", "state writes (rocksdict)")

    def _wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        seconds = self.seconds
        seconds[label] = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = now()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += now() - started

        setattr(owner, name, timed)


def worker_settings(spec: Spec) -> Settings:
    """The worker's settings: its output topics and group are named after ``spec.run_id``."""
    suffix = spec.run_id
    return Settings(
        kafka_bootstrap_servers=spec.bootstrap,
        input_topic=spec.input_topic,
        upserts_topic=f"bench-upserts-{suffix}",
        stale_topic=f"bench-stale-{suffix}",
        dlq_topic=f"bench-dlq-{suffix}",
        changelog_topic=f"bench-changelog-{suffix}",
        group_id=f"bench-processor-{suffix}",
        data_dir=Path(spec.work_dir) / "data",
        partitions=8,
        web_port=0,
    )


def run(spec: Spec) -> Result:
    logging.basicConfig(level=logging.WARNING)
    suffix = spec.run_id
    settings = worker_settings(spec)
    create_topics(settings)
    worker = ProcessorWorker(settings, client_id=f"bench-processor-{suffix}")
    phases = _Phases(worker)
    clock = _Clock(worker, spec.events)
    run_worker(worker, clock.done, spec.timeout, POLL_SECONDS)
    totals = asdict(worker.totals)
    totals["rejected"] = dict(worker.totals.rejected)
    details: dict[str, Any] = {
        "totals": totals,
        "batches": clock.batches,
        # perf_counter() instants: the system's monotonic clock, comparable across processes.
        "first": clock.first,
        "last": clock.last,
        "phases": {label: round(value, 3) for label, value in phases.seconds.items()},
    }
    if worker.error is not None:
        return Result(worker.totals.events_in, 0.0, details, f"worker failed: {worker.error!r}")
    if clock.first is None or clock.last is None:
        return Result(
            worker.totals.events_in,
            0.0,
            details,
            f"reached {worker.totals.events_in} of {spec.events} events "
            f"within {spec.timeout:.0f} s",
        )
    details["topics"] = {
        "upserts": topic_size(spec.bootstrap, settings.upserts_topic),
        "stale": topic_size(spec.bootstrap, settings.stale_topic),
        "dlq": topic_size(spec.bootstrap, settings.dlq_topic),
        "changelog": topic_size(spec.bootstrap, settings.changelog_topic),
    }
    return Result(worker.totals.events_in, clock.last - clock.first, details)


if __name__ == "__main__":
    contender_main(run)
