"""Contender: the processor's Faust engine (``streams.faust.install`` in a Faust worker of its
own): ``take_events`` batches through the same kernel, outputs and changelog delivered, the
table's RocksDB written, then acked.

Timed from the start of the first batch to the end of the batch that brings the engine's
``totals.events_in`` to N (outputs and states acknowledged and written; Faust commits the
acked offsets on its own interval). The parent stops this process with SIGTERM afterwards.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from benchmarks.common import Result, Spec, faust_contender_main, now, write_result
from benchmarks.processor import worker_settings
from streams.optional import requires

with requires("faust", "the Faust engine contender"):
    import faust

    from streams.faust import app_config, install


BENCH_WEB_PORT = 6099  # never bound: the web server is off, but Faust wants a port


def build_app(spec: Spec) -> faust.App:
    settings = worker_settings(spec).model_copy(
        update={"group_id": f"bench-faust-engine-{spec.run_id}"}
    )
    config = app_config(settings, web_port=BENCH_WEB_PORT) | {"web_enabled": False}
    app = faust.App(settings.group_id, **config)
    installed = install(app, settings)
    batches = installed.batches
    handle = batches.handle
    clock: dict[str, Any] = {"first": None, "reported": False, "batches": 0}

    async def timed(events: Any) -> None:
        if clock["first"] is None:
            clock["first"] = now()
        await handle(events)
        clock["batches"] += 1
        if batches.totals.events_in >= spec.events and not clock["reported"]:
            clock["reported"] = True
            totals = asdict(batches.totals)
            totals["rejected"] = dict(batches.totals.rejected)
            phases = {label: round(value, 3) for label, value in clock["phases"].items()}
            details = {"totals": totals, "batches": clock["batches"], "phases": phases}
            write_result(spec, Result(batches.totals.events_in, now() - clock["first"], details))

    batches.handle = timed  # type: ignore[method-assign]
    phases = _Phases(batches)
    clock["phases"] = phases.seconds
    return app


class _Phases:
    """Seconds in each step of a batch; the rest of the clock is Faust's own pipeline
    (fetching, the stream, take_events' buffer, acks)."""

    def __init__(self, batches: Any) -> None:
        self.seconds: dict[str, float] = {}
        self._wrap_sync(batches._batch, "process", "decode+merge+encode (incl. state reads)")
        self._wrap_async(batches._delivery, "send", "outputs, then changelog, acknowledged")
        self._wrap_sync(batches, "_write_states", "store written")

    def _wrap_sync(self, owner: Any, name: str, label: str) -> None:
        original, seconds = getattr(owner, name), self.seconds
        seconds[label] = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = now()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += now() - started

        setattr(owner, name, timed)

    def _wrap_async(self, owner: Any, name: str, label: str) -> None:
        original, seconds = getattr(owner, name), self.seconds
        seconds[label] = 0.0

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = now()
            try:
                return await original(*args, **kwargs)
            finally:
                seconds[label] += now() - started

        setattr(owner, name, timed)


def main() -> None:
    faust_contender_main(build_app, "bench-faust-engine")


if __name__ == "__main__":
    main()
