"""Contender (d): the same job as the processor's merge, written as Quix Streams documents it.

An ``Application`` reads the input topic (JSON values, bytes keys); ``sdf.apply(merge,
stateful=True)`` keeps each customer's profile (message key) in Quix's RocksDB state as one
``{name: [value, timestamp]}`` entry, drops stale writes (an incoming timestamp <= the stored
one leaves the property as it is) and returns the changed properties; messages with no change
are filtered out and the rest go to an output topic with ``sdf.to_topic``. Quix creates its
state changelog topic itself. Configuration: Quix's defaults (at-least-once, 5 s commit
interval, idempotent producer) with ``auto_offset_reset="earliest"``, a fresh consumer group
and state directory per run. It runs in an interpreter of its own (``benchmarks.quix_env``).

Timed from the first record reaching ``merge`` to the end of the checkpoint that follows the
N-th processed input message (outputs and changelog acknowledged, offsets committed, state
flushed), as the processor is. The job's own counts and the output and changelog topics'
record counts go into the result, for the orchestrator to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka.admin import AdminClient

from benchmarks.common import Result, Spec, contender_main, now
from benchmarks.data import create_topic, topic_size

PROFILE = "profile"  # the state key under each customer's message key


class State(Protocol):
    """What ``merge`` uses of ``quixstreams.State``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@dataclass(slots=True)
class Totals:
    events_in: int = 0
    applied: int = 0  # events that changed at least one property
    stale_events: int = 0  # events that changed nothing (no output)
    stale_writes: int = 0  # properties dropped as stale


Merge = Callable[[dict[str, Any], State], dict[str, Any] | None]


def make_merge(totals: Totals) -> Merge:
    """The stateful function: the changed properties of one event, or None if none changed."""

    def merge(event: dict[str, Any], state: State) -> dict[str, Any] | None:
        totals.events_in += 1
        updated = event["update_timestamp"]
        own_times = event.get("property_timestamps") or {}
        profile: dict[str, list[Any]] = state.get(PROFILE) or {}
        changed: dict[str, Any] = {}
        changed_times: dict[str, Any] = {}
        for name, value in event["properties"].items():
            timestamp = own_times.get(name, updated)
            held = profile.get(name)
            if held is not None and timestamp <= held[1]:
                totals.stale_writes += 1
                continue
            profile[name] = [value, timestamp]
            changed[name] = value
            changed_times[name] = timestamp
        if not changed:
            totals.stale_events += 1
            return None
        totals.applied += 1
        state.set(PROFILE, profile)
        return {
            "customer_id": event["customer_id"],
            "properties": changed,
            "property_timestamps": changed_times,
        }

    return merge


def run(spec: Spec) -> Result:
    import confluent_kafka
    import quixstreams
    from quixstreams import Application

    group = f"bench-quix-{spec.run_id}"
    output_name = f"bench-quix-out-{spec.run_id}"
    create_topic(spec.bootstrap, output_name)
    totals = Totals()
    clock: dict[str, float] = {}
    processed = 0
    stopping = threading.Event()

    def on_processed(topic: str, partition: int, offset: int) -> None:
        nonlocal processed
        if topic != spec.input_topic:
            return
        processed += 1
        if processed == spec.events:
            stopping.set()
            app.stop()  # the loop ends and commits its checkpoint (force=True)

    app = Application(
        broker_address=spec.bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=str(Path(spec.work_dir) / "quix-state"),
        on_message_processed=on_processed,
    )
    source = app.topic(spec.input_topic, key_deserializer="bytes", value_deserializer="json")
    output = app.topic(output_name, key_serializer="bytes", value_serializer="json")
    merge = make_merge(totals)

    def timed_merge(event: dict[str, Any], state: State) -> dict[str, Any] | None:
        if "first" not in clock:
            clock["first"] = now()
        return merge(event, state)

    sdf = app.dataframe(source)
    sdf = sdf.apply(timed_merge, stateful=True)
    sdf = sdf.filter(lambda changes: changes is not None)
    sdf.to_topic(output)

    # The clock stops when the final checkpoint (forced on stop) has committed. Quix offers
    # no hook there, so the benchmark wraps the method, as processor.py wraps the worker's.
    context = app._processing_context
    commit_checkpoint = context.commit_checkpoint

    def timed_commit(force: bool = False, revoking: bool = False) -> None:
        commit_checkpoint(force=force, revoking=revoking)
        if force and stopping.is_set() and "last" not in clock:
            clock["last"] = now()

    context.commit_checkpoint = timed_commit
    timer = threading.Timer(spec.timeout, app.stop)
    timer.start()
    try:
        app.run()
    finally:
        timer.cancel()
    details: dict[str, Any] = {
        "totals": asdict(totals),
        "processed": processed,
        "versions": {
            "quixstreams": quixstreams.__version__,
            "confluent-kafka": confluent_kafka.__version__,
            "librdkafka": confluent_kafka.libversion()[0],
        },
    }
    if "first" not in clock or "last" not in clock:
        return Result(
            processed,
            0.0,
            details,
            f"processed {processed} of {spec.events} events within {spec.timeout:.0f} s",
        )
    details["topics"] = {
        "output": topic_size(spec.bootstrap, output_name),
        "changelog": sum(
            topic_size(spec.bootstrap, name)
            for name in _changelog_topics(spec.bootstrap, f"changelog__{group}--")
        ),
    }
    return Result(processed, clock["last"] - clock["first"], details)


def _changelog_topics(bootstrap: str, prefix: str) -> list[str]:
    """Quix names its changelog topics changelog__<group>--<topic>--<store>."""
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    return sorted(name for name in topics if name.startswith(prefix))


if __name__ == "__main__":
    contender_main(run)
