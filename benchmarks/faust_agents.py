"""Contender (b): Faust agents on the same input, in a Faust worker of their own.

``naive`` is the baseline the design names: per event, a RocksDB-backed table write and an awaited
send. ``batch`` takes ``stream.take_events(5000, within=0.05)`` batches and only decodes each
event with orjson (no table, no send): Faust's own per-event pipeline ceiling.

When the agent has processed ``spec.events`` records it writes the result file; the parent
then stops this process with SIGTERM (the worker leaves its group on the way out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import PARTITIONS, Result, Spec, faust_contender_main, now, write_result
from benchmarks.data import create_topic
from streams.optional import requires

with requires("faust", "the Faust contender"):
    import faust

TAKE_MAX = 5000
TAKE_WITHIN = 0.05


def build_app(spec: Spec) -> faust.App:
    app = faust.App(
        f"bench-faust-{spec.variant}-{spec.run_id}",
        broker=f"kafka://{spec.bootstrap}",
        store="rocksdb://",  # rocksdict underneath ("rocksdict://" is not a store)
        datadir=str(Path(spec.work_dir) / "faust"),
        topic_partitions=PARTITIONS,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=10,
        web_enabled=False,
    )
    source = app.topic(
        spec.input_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=PARTITIONS,
    )
    state: dict[str, Any] = {"count": 0, "first": None, "reported": False}

    async def finish() -> None:
        if state["reported"]:
            return
        state["reported"] = True
        await app.producer.flush()
        seconds = now() - state["first"]
        write_result(spec, Result(state["count"], seconds, {"variant": spec.variant}))

    if spec.variant == "naive":
        output_name = f"bench-faust-out-{spec.run_id}"
        create_topic(spec.bootstrap, output_name)
        output = app.topic(
            output_name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=PARTITIONS,
        )
        table = app.Table(
            "profiles",
            default=None,
            partitions=PARTITIONS,
            key_type=bytes,  # app default key_serializer "raw"; values as JSON
        )

        @app.agent(source)
        async def naive(stream: Any) -> None:
            async for event in stream.events():
                if state["first"] is None:
                    state["first"] = now()
                key, value = event.key, event.value
                table[key] = orjson.loads(value)["properties"]
                await output.send(key=key, value=value)
                state["count"] += 1
                if state["count"] == spec.events:
                    await finish()

    elif spec.variant == "batch":

        @app.agent(source)
        async def batched(stream: Any) -> None:
            async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
                if state["first"] is None:
                    state["first"] = now()
                for event in events:
                    orjson.loads(event.value)
                state["count"] += len(events)
                if state["count"] >= spec.events:
                    await finish()

    else:
        raise SystemExit(f"unknown Faust variant {spec.variant!r}")
    return app


def main() -> None:
    faust_contender_main(build_app, "bench-faust")


if __name__ == "__main__":
    main()
