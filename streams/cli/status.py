"""``streams status [--watch]``: the groups, their members and partitions as
:mod:`streams.cli.fleet` gathers them, rendered with rich; ``--watch`` redraws in place."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Annotated

import typer
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.cli.fleet import FleetStatus, MemberStatus, gather
from streams.cli.startup import fail, kafka_settings
from streams.errors import KafkaUnavailableError
from streams.kafka.clients import admin_client, reader_config
from streams.settings import Settings

PIPED_WIDTH = 240  # a table piped to a file or a test keeps its rows on one line
# Totals flowing in and out, by kind of member; the rest are named as they are.
FLOW = {"worker": ("events_in", "upserts_out"), "connector": ("records", "delivered")}
RATE_COLUMNS = ("in/s", "out/s", "applied/s", "stale/s", "rejected/s")


def status_command(
    watch: Annotated[
        bool, typer.Option("--watch", help="Redraw every --interval until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between samples (rates are over one).", min=0.5)
    ] = 2.0,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="Also this consumer group (repeatable).")
    ] = None,
) -> None:
    """Lag per topic and partition of the processor's and connectors' groups, who owns what,
    and each worker's and connector's state, rates and dead letters (from its /status)."""
    settings = kafka_settings()
    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    admin = admin_client(settings)
    consumer = Consumer(
        reader_config(settings, **{"group.id": f"streams-status-{uuid.uuid4().hex}"})
    )
    groups = group or []
    try:
        if watch:
            _watch(settings, admin, consumer, groups, interval, console)
        else:
            try:
                fleet = gather(settings, admin, consumer, groups=groups)
                if any(m.document for g in fleet.groups for m in g.members):
                    time.sleep(interval)  # a second sample: rates
                    fleet = gather(settings, admin, consumer, groups=groups, previous=fleet)
            except KafkaUnavailableError as exc:
                raise fail(exc) from exc
            console.print(render(fleet))
    finally:
        consumer.close()


def _watch(
    settings: Settings,
    admin: AdminClient,
    consumer: Consumer,
    groups: list[str],
    interval: float,
    console: Console,
) -> None:
    previous: FleetStatus | None = None
    live = Live(Text("asking Kafka ..."), console=console, auto_refresh=False)
    with live, suppress(KeyboardInterrupt):
        while True:
            try:
                previous = gather(settings, admin, consumer, groups=groups, previous=previous)
                view = render(previous)
            except KafkaUnavailableError as exc:  # said, and asked again next time
                view = Text(f"error: {exc}", style="red")
            live.update(view, refresh=True)
            time.sleep(interval)


def render(fleet: FleetStatus) -> RenderableType:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(fleet.taken_at))
    parts: list[RenderableType] = [Text(f"streams status at {stamp}", style="bold")]
    parts += [Text(f"warning: {problem}", style="yellow") for problem in fleet.problems]
    parts += [_groups(fleet), _members(fleet), _partitions(fleet)]
    return Group(*parts)


def _groups(fleet: FleetStatus) -> Table:
    table = Table(title="Consumer groups", title_justify="left")
    for name in ("group", "kind", "state", "members"):
        table.add_column(name)
    table.add_column("lag", justify="right")
    for g in fleet.groups:
        table.add_row(g.group, g.kind, g.state, str(len(g.members)), _number(g.lag))
    return table


def _members(fleet: FleetStatus) -> Table:
    table = Table(title="Workers and connectors", title_justify="left")
    table.add_column("group", overflow="fold")
    table.add_column("member", overflow="fold")
    table.add_column("state")
    for name in (*RATE_COLUMNS, "lag"):
        table.add_column(name, justify="right")
    table.add_column("dead letters by reason")
    table.add_column("partitions")
    for g in fleet.groups:
        for m in g.members:
            table.add_row(
                g.group,
                m.label,
                _state(m),
                *_rates(m),
                _number(m.lag),
                _reasons(m.document.get("dlq_by_reason", {}) if m.document else {}),
                _assignment(m.assignment),
            )
    return table


def _partitions(fleet: FleetStatus) -> Table:
    table = Table(title="Partitions", title_justify="left")
    table.add_column("topic")
    for name in ("partition", "end"):
        table.add_column(name, justify="right")
    table.add_column("group")
    for name in ("committed", "lag"):
        table.add_column(name, justify="right")
    table.add_column("owner")
    table.add_column("state")
    for p in fleet.partitions:
        table.add_row(
            p.topic,
            str(p.partition),
            _number(p.end),
            p.group,
            _number(p.committed),
            _number(p.lag),
            p.owner or "-",
            p.state or "-",
        )
    return table


def _state(member: MemberStatus) -> Text:
    if member.document is not None:
        state = str(member.document.get("state", "?"))
        return Text(state, style="green" if state == "running" else "yellow")
    if member.error is not None:
        return Text(member.error, style="red")
    return Text("-")  # not one of ours: no endpoint


def _rates(member: MemberStatus) -> list[str]:
    rates = member.rates
    if member.kind is None or not rates:
        return ["-"] * len(RATE_COLUMNS)
    flow_in, flow_out = FLOW[member.kind]
    names = (flow_in, flow_out, "applied", "stale_events", "rejected")
    return [_rate(rates.get(name)) for name in names]


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _reasons(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}={count:,}" for reason, count in sorted(counts.items())) or "-"


def _assignment(assignment: Iterable[tuple[str, int]]) -> str:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in assignment:
        by_topic.setdefault(topic, []).append(partition)
    if len(by_topic) == 1:  # the topic is in the partitions' table
        (partitions,) = by_topic.values()
        return ",".join(map(str, partitions))
    return "; ".join(f"{t}: {','.join(map(str, ps))}" for t, ps in sorted(by_topic.items())) or "-"
