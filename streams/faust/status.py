"""The Faust engine's ``/status`` figures and ``/ready`` state, in the default worker's terms
(:mod:`streams.processor.status`): a state, the totals of completed batches, the dead
letters by reason and the input partitions assigned here with their committed position."""

from __future__ import annotations

from typing import Any

from streams.processor.records import BatchCounts
from streams.processor.status import TOTALS
from streams.settings import Settings
from streams.web.status import PartitionFigures, ProcessState, StatusFigures


def input_partitions(app: Any, settings: Settings) -> set[int]:
    """The input partitions assigned to this worker (restoring ones included)."""
    actives = app.assignor.assigned_actives()
    return {tp.partition for tp in actives if tp.topic == settings.input_topic}


def recovering(app: Any) -> bool:
    """From a rebalance's start until the active tables are restored the local store may
    miss customers."""
    return bool(app.rebalancing) or not app.tables.actives_ready


def faust_state(app: Any, settings: Settings) -> ProcessState:
    """``starting`` until the first assignment, ``restoring`` while a rebalance or the
    table's recovery is under way, ``stopping`` once the app stops, else ``running``."""
    if app.should_stop:
        return "stopping"
    if not app.tables.actives_ready and not input_partitions(app, settings):
        return "starting"
    return "restoring" if recovering(app) else "running"


def faust_figures(app: Any, settings: Settings, totals: BatchCounts) -> StatusFigures:
    rejected = dict(totals.rejected)
    counts = {name: getattr(totals, name) for name in TOTALS if name != "rejected"}
    counts["rejected"] = sum(rejected.values())
    state = faust_state(app, settings)
    partitions = [
        _partition(app, settings, partition, state) for partition in input_partitions(app, settings)
    ]
    return StatusFigures(state, counts, rejected, partitions)


def _partition(app: Any, settings: Settings, partition: int, state: ProcessState) -> Any:
    if state == "restoring":
        return PartitionFigures(settings.input_topic, partition, "restoring")
    tp = next(
        tp
        for tp in app.assignor.assigned_actives()
        if tp.topic == settings.input_topic and tp.partition == partition
    )
    consumer = app.consumer
    # Faust's next offset to commit (a private map: Faust has no public one); the end as its
    # fetcher last saw it.
    position = consumer._committed_offset.get(tp)
    try:
        end = consumer.highwater(tp)
    except Exception:  # not fetched from yet
        end = None
    if position is None and end == 0:
        position = 0  # an empty partition: nothing read, nothing behind
    return PartitionFigures(settings.input_topic, partition, "owned", position, end)
