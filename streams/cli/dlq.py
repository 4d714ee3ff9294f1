"""``streams dlq``: list, show and replay the dead letters of a DLQ topic (the worker's
``profile-changes-dlq``, a connector's ``<upserts>-<name>-dlq``)."""

from __future__ import annotations

import time
from contextlib import closing
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from streams.cli.letters import (
    count_by,
    letter_document,
    letter_row,
    read_whole_topic,
    reader,
    summary_line,
)
from streams.cli.startup import EXIT_USAGE, fail, kafka_settings
from streams.errors import StreamsError
from streams.kafka.reading import TopicNotFoundError, partition_ends, read_range
from streams.kafka.stored_letters import LetterFilter, StoredLetter, replay_record
from streams.settings import Settings

dlq_app = typer.Typer(
    help="List, show and replay dead letters (reasons, source coordinates, original bytes).",
    no_args_is_help=True,
)

TopicArg = Annotated[str, typer.Argument(help="The DLQ topic, e.g. profile-changes-dlq.")]
ReasonOpt = Annotated[
    list[str] | None, typer.Option("--reason", help="Only this reason (repeatable).")
]
SinceOpt = Annotated[
    str | None, typer.Option(help="Dead-lettered at or after: 24h, 7d or an ISO-8601 time.")
]
UntilOpt = Annotated[
    str | None, typer.Option(help="Dead-lettered at or before: 24h, 7d or an ISO-8601 time.")
]
LimitOpt = Annotated[int | None, typer.Option(help="At most this many letters.", min=1)]


def _letter_filter(reasons: list[str] | None, since: str | None, until: str | None) -> LetterFilter:
    from streams.bootstrap.convert import parse_since

    now = int(time.time() * 1000)
    try:
        return LetterFilter(
            reasons=frozenset(reasons or ()),
            since_ms=None if since is None else parse_since(since, now),
            until_ms=None if until is None else parse_since(until, now),
        )
    except StreamsError as exc:
        raise fail(exc, EXIT_USAGE) from exc


def _chosen(
    settings: Settings, topic: str, chosen: LetterFilter, limit: int | None, console: Console
) -> list[StoredLetter]:
    """The matching letters, in partition and offset order; exit 2 for a missing topic."""
    letters: list[StoredLetter] = []
    try:
        with closing(read_whole_topic(settings, topic, console, purpose="dlq")) as messages:
            for message in messages:
                letter = StoredLetter.from_message(message)
                if chosen(letter):
                    letters.append(letter)
                    if limit is not None and len(letters) >= limit:
                        break
    except TopicNotFoundError as exc:
        raise fail(exc, EXIT_USAGE) from exc
    except StreamsError as exc:
        raise fail(exc) from exc
    return letters


@dlq_app.command("list")
def list_letters(
    topic: TopicArg,
    reason: ReasonOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """One row per dead letter: where it is, when, why, where it came from; then a count by
    reason. Reads the topic to its current end, never waits for new letters."""
    chosen = _letter_filter(reason, since, until)
    settings = kafka_settings()
    err = Console(stderr=True)
    letters = _chosen(settings, topic, chosen, limit, err)
    rows = [letter_row(letter) for letter in letters]
    counts = count_by([row["reason"] for row in rows])
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
        err.print(summary_line("dead letters", counts), highlight=False)
        return
    table = Table(title=f"dead letters in {topic}")
    table.add_column("partition/offset", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("detail")
    table.add_column("source", no_wrap=True)
    table.add_column("key")
    table.add_column("bytes", justify="right", no_wrap=True)
    for row in rows:
        source = row["source_topic"] or "-"
        if row["source_partition"] is not None:
            source += f"[{row['source_partition']}]@{row['source_offset']}"
        size = f"{row['bytes']:,}" + (" truncated" if row["truncated"] else "")
        table.add_row(
            f"{row['partition']}/{row['offset']}",
            row["time"] or "-",
            row["reason"],
            row["detail"],
            source,
            row["key"] or "-",
            size,
        )
    out = Console(highlight=False)
    out.print(table)
    out.print(summary_line("dead letters", counts))


@dlq_app.command("show")
def show_letter(
    topic: TopicArg,
    partition: Annotated[int, typer.Option(help="The letter's partition.", min=0)],
    offset: Annotated[int, typer.Option(help="The letter's offset.", min=0)],
) -> None:
    """One dead letter whole, as JSON: its dlq.* headers, then the original key, headers and
    value (decoded when JSON or Avro single-object, else escaped bytes)."""
    settings = kafka_settings()
    consumer = reader(settings, "dlq")
    try:
        ranges = partition_ends(consumer, topic)
        low, high = ranges.get(partition, (0, 0))
        if partition not in ranges or not low <= offset < high:
            raise fail(StreamsError(f"no record at {topic}[{partition}]@{offset}"))
        messages = [
            m for batch in read_range(consumer, topic, partition, offset, offset + 1) for m in batch
        ]
    except TopicNotFoundError as exc:
        raise fail(exc, EXIT_USAGE) from exc
    except StreamsError as exc:
        raise fail(exc) from exc
    finally:
        consumer.close()
    found = [m for m in messages if m.offset() == offset]
    if not found:  # compacted away or a transaction marker
        raise fail(StreamsError(f"no record at {topic}[{partition}]@{offset}"))
    document = letter_document(StoredLetter.from_message(found[0]))
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


@dlq_app.command("replay")
def replay_letters(
    topic: TopicArg,
    reason: ReasonOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Produce here instead of each letter's dlq.topic.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be replayed.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Produce the chosen letters' original key, value and headers to their original topic
    (after a fix), waiting for Kafka's acknowledgement. Truncated letters are skipped: their
    value is not whole. Exits 1 if any record was not delivered."""
    from confluent_kafka import Producer

    from streams.kafka.batch_delivery import BatchDelivery
    from streams.kafka.clients import producer_config
    from streams.kafka.output_records import OutputRecord

    chosen = _letter_filter(reason, since, until)
    settings = kafka_settings()
    err = Console(stderr=True, highlight=False)
    letters = _chosen(settings, topic, chosen, limit, err)
    skipped: list[str] = []
    records: list[OutputRecord] = []
    partitions: dict[str, int] = {}
    consumer = reader(settings, "dlq")
    try:
        for letter in letters:
            target = to or letter.source_topic
            if letter.truncated:
                skipped.append("truncated")
            elif target is None:
                skipped.append("no_source_topic")
            else:
                if target not in partitions:
                    partitions[target] = len(partition_ends(consumer, target))
                records.append(replay_record(letter, target, partitions[target], topic))
    except TopicNotFoundError as exc:
        raise fail(exc, EXIT_USAGE) from exc
    except StreamsError as exc:
        raise fail(exc) from exc
    finally:
        consumer.close()
    skipped_counts = count_by(skipped)
    if skipped_counts.get("truncated"):
        err.print(
            f"{skipped_counts['truncated']} truncated letters cannot be replayed whole: skipped"
        )
    targets = count_by([record.topic for record in records])
    plan = ", ".join(f"{count} to {name}" for name, count in targets.items()) or "nothing"
    if dry_run:
        err.print(f"dry run: would replay {plan}; {summary_line('skipped', skipped_counts)}")
        return
    if not records:
        err.print(f"nothing to replay; {summary_line('skipped', skipped_counts)}")
        return
    if not yes and not typer.confirm(f"Replay {plan}?", err=True):
        raise fail(StreamsError("not confirmed: nothing replayed"))
    delivery = BatchDelivery(
        Producer(producer_config(settings)), flush_timeout=settings.delivery_timeout_ms / 1000 + 5
    )
    try:
        refused = delivery.send(records)
    except StreamsError as exc:
        raise fail(StreamsError(f"replay not acknowledged: {exc}")) from exc
    failed = count_by([error.error.name() for error in refused])
    err.print(
        f"replayed {len(records) - len(refused)} of {len(letters)} letters ({plan}); "
        f"{summary_line('skipped', skipped_counts)}; {summary_line('failed', failed)}"
    )
    if refused:
        raise typer.Exit(code=1)
