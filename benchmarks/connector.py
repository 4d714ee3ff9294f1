"""Contender: one connector worker as ``streams connect`` runs it (its TOML file, its sink,
its consumer group), over the upserts topic ``spec.input_topic``.

``spec.variant`` is the path of the connector's TOML file. Timed from the first upsert handed
to the sink to the flush that brings the records written to ``spec.events`` (that batch's
transaction committed at the destination). ``details`` also carries both instants as
``time.perf_counter()`` values: on Linux that clock is the system's monotonic one, so the
parent process can place them on its own timeline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Result, Spec, contender_main, now, run_worker
from streams.connect.config import build_sink, load_config
from streams.connect.records import WriteResult
from streams.connect.sink import Sink
from streams.connect.worker import ConnectorWorker
from streams.kafka.topics import ensure_topic
from streams.settings import Settings

POLL_SECONDS = 0.02


class _Clock:
    """From the first record the sink is given to the settled write that completes ``target``
    (the worker may consume the next batch while a write is in flight)."""

    def __init__(self, sink: Sink, target: int) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.written = 0
        self.done = threading.Event()
        extend, begin_flush = sink.extend, sink.begin_flush

        def extended(records: Sequence[Any]) -> None:
            if self.first is None and records:
                self.first = now()
            extend(records)

        def begun() -> Callable[[], WriteResult]:
            batch = sink.buffered
            settle = begin_flush()

            def settled() -> WriteResult:
                result = settle()
                self.written += batch - len(result.rejected)
                if self.written >= target and self.last is None:
                    self.last = now()
                    self.done.set()
                return result

            return settled

        sink.extend = extended  # type: ignore[method-assign]
        sink.begin_flush = begun  # type: ignore[method-assign]


def run(spec: Spec) -> Result:
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(kafka_bootstrap_servers=spec.bootstrap, upserts_topic=spec.input_topic)
    config = load_config(Path(spec.variant))
    ensure_topic(settings, config.dead_letter_topic(settings))
    sink = build_sink(config, settings)
    clock = _Clock(sink, spec.events)
    worker = ConnectorWorker(config, settings, sink)
    run_worker(worker, clock.done, spec.timeout, POLL_SECONDS)
    details = {
        "first": clock.first,
        "last": clock.last,
        "consumed": worker.totals.consumed,
        "rejected": worker.totals.rejected,
        "batches": worker.totals.batches,
        "retries": worker.totals.retries,
    }
    if worker.error is not None:
        return Result(clock.written, 0.0, details, f"connector failed: {worker.error!r}")
    if clock.first is None or clock.last is None:
        return Result(
            clock.written,
            0.0,
            details,
            f"wrote {clock.written} of {spec.events} upserts within {spec.timeout:.0f} s",
        )
    return Result(clock.written, clock.last - clock.first, details)


if __name__ == "__main__":
    contender_main(run)
