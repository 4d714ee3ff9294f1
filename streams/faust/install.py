"""``install(app, settings)``: the processor's agent, table and query view on a Faust app."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.faust.batches import FaustBatches
from streams.faust.rebalance import seek_before_delivering
from streams.faust.store import TableStates
from streams.faust.views import add_views
from streams.kafka.topics import create_topics, verify_topics
from streams.optional import requires
from streams.processor.parking import state_limited
from streams.settings import Settings

with requires("faust", "the Faust engine"):
    import faust
    from mode import CrashingSupervisor

logger = logging.getLogger(__name__)

TABLE_NAME = "streams-profiles"
AGENT_NAME = "streams-processor"


@dataclass(frozen=True)
class Installed:
    """What ``install`` added to the app."""

    table: Any  # faust.Table: customer id -> state bytes (streams.state.codec)
    agent: Any  # the agent on the input topic
    batches: FaustBatches  # its per-batch work; ``totals`` counts what it did


def prepare_topics(settings: Settings, *, create: bool = True) -> None:
    """Faust does not create source topics, and a changelog whose partitions differ from the
    input's would restore states on the wrong workers: create the contract's topics (unless
    ``create`` is False) and verify that each has ``STREAMS_PARTITIONS``; raises
    TopicMismatchError (or KafkaUnavailableError) naming the topic otherwise."""
    if create:
        create_topics(settings)
    verify_topics(settings)


def install(app: faust.App, settings: Settings, *, create_topics: bool = True) -> Installed:
    """Add the processor to ``app``: an agent on ``STREAMS_INPUT_TOPIC`` doing each
    ``take_events`` batch with the kernel, the profiles in a RocksDB table whose changelog is
    ``STREAMS_CHANGELOG_TOPIC`` (standby replicas as ``app``'s ``table_standby_replicas``),
    and ``GET /customers/{id}`` on ``app``'s web server, routed to the owning worker.

    The topics are created (unless ``create_topics`` is False) and verified now, before the
    app starts. The app's consumer group is its id; its offsets are committed only for
    events whose outputs Kafka acknowledged."""
    prepare_topics(settings, create=create_topics)
    Path(app.conf.datadir).parent.mkdir(parents=True, exist_ok=True)  # Faust makes one level
    source = app.topic(
        settings.input_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    changelog = app.topic(
        settings.changelog_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        compacting=True,
        internal=False,  # created above with the contract's configuration
    )
    table = app.Table(
        TABLE_NAME,
        default=None,
        key_type=bytes,  # raw: customer id and state bytes, as the default engine's changelog
        value_type=bytes,
        partitions=settings.partitions,
        changelog_topic=changelog,
        store="rocksdb://",
        options={"driver": "rocksdict"},
    )
    # States capped to what the changelog takes, as the default worker caps them: a state
    # the changelog refused would stop the app.
    batches = FaustBatches(state_limited(settings), app, table)
    limit, within = settings.batch_max_events, settings.batch_max_wait_ms / 1000

    # One actor: batches are processed in order. A failure crashes the app (not only the
    # actor) so that no later batch is acked past the failed one.
    @app.agent(source, name=AGENT_NAME, concurrency=1, supervisor_strategy=CrashingSupervisor)
    async def process(stream: Any) -> None:
        TableStates(table).check()
        async for events in stream.take_events(limit, within):
            await batches.handle(events)

    add_views(app, table, settings, batches.metrics, batches.totals)
    seek_before_delivering(app)
    logger.info(
        "faust engine installed app=%s input=%s changelog=%s kernel=%s",
        app.conf.id, settings.input_topic, settings.changelog_topic, settings.kernel,
    )  # fmt: skip
    return Installed(table, process, batches)
