"""A worker's ``/status`` figures (:mod:`streams.web.status`): its totals since it started, its
dead letters by reason and its partitions, read from what the processor already keeps (the
totals of completed batches, the offsets refreshed with the lag), never counted per record."""

from __future__ import annotations

from streams.processor.worker import ProcessorWorker
from streams.web.status import PartitionFigures, ProcessState, StatusFigures

TOTALS = ("events_in", "applied", "stale_events", "stale_writes", "rejected", "upserts_out")


def worker_figures(worker: ProcessorWorker | None, *, stopping: bool) -> StatusFigures:
    """``worker`` None: not started yet. ``stopping``: the service is stopping or its
    processor has ended."""
    if worker is None:
        state: ProcessState = "stopping" if stopping else "starting"
        return StatusFigures(state, dict.fromkeys(TOTALS, 0), {}, [])
    totals = worker.totals
    rejected = dict(totals.rejected)  # one copy: the processor thread updates it
    counts = {
        "events_in": totals.events_in,
        "applied": totals.applied,
        "stale_events": totals.stale_events,
        "stale_writes": totals.stale_writes,
        "rejected": sum(rejected.values()),
        "upserts_out": totals.upserts_out,
    }
    topic = worker.settings.input_topic
    offsets = worker.partition_offsets
    owned, restoring = worker.owned_partitions, worker.restoring_partitions
    partitions = [
        PartitionFigures(topic, p, "owned", *offsets.get(p, (None, None))) for p in owned
    ] + [PartitionFigures(topic, p, "restoring") for p in restoring - owned]
    return StatusFigures(_state(worker, stopping), counts, rejected, partitions)


def _state(worker: ProcessorWorker, stopping: bool) -> ProcessState:
    if stopping or worker.stopping:
        return "stopping"
    if worker.restoring_partitions:
        return "restoring"
    if not worker.wait_assigned(0):
        return "starting"
    return "retrying" if worker.retrying else "running"
