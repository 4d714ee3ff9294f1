"""A Faust app of your own with the profile processor mounted in it.

    pip install 'profile-streams[faust]'
    STREAMS_WEB_PORT=6066 python examples/faust_app.py worker -l info

``install`` creates and checks the contract's topics (STREAMS_* settings), then adds the
processor's agent on ``profile-changes``, its RocksDB table (changelog
``profile-state-changelog``, standby replicas) and ``GET /customers/{id}``. Everything else
is the app's own: here, an agent that counts the upserts the processor emits, per source,
and a page that shows the counts and what the processor did.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import faust

from streams.codecs.upserts import UpsertCodec
from streams.faust import app_config, install
from streams.settings import Settings

settings = Settings()  # STREAMS_* environment variables, as for `streams worker`
# app_config: broker, group timeouts, RocksDB under STREAMS_DATA_DIR, web host and port. The
# app's id is its consumer group: two apps with the processor need two ids.
app = faust.App("my-profiles-app", **app_config(settings))
processor = install(app, settings)

upserts = app.topic(settings.upserts_topic, value_type=bytes, value_serializer="raw")
codec = UpsertCodec(settings.output_format)
by_source: Counter[str] = Counter()


@app.agent(upserts)
async def count_upserts(stream: Any) -> None:
    async for value in stream:
        by_source[codec.decode(value).source] += 1


@app.page("/my/counts")
async def counts(view: Any, request: Any) -> Any:
    totals = processor.batches.totals
    return view.json(
        {
            "upserts_by_source": dict(by_source),
            "processor": {"events_in": totals.events_in, "applied": totals.applied},
        }
    )


if __name__ == "__main__":
    app.main()
