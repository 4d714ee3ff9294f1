"""``streams topics tail``: any of the product's topics as JSON lines, each value decoded by
the topic's own codec; a record that does not decode is a line with an ``error`` field."""

from __future__ import annotations

from collections.abc import Callable, Generator
from itertools import islice
from typing import Annotated, Any

import orjson
import typer
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from streams.cli.letters import iso_time, letter_document, reader
from streams.cli.startup import EXIT_USAGE, fail, kafka_settings
from streams.codecs.readable import escaped, readable
from streams.codecs.upserts import UpsertCodec, upsert_record
from streams.errors import StreamsError
from streams.kafka.reading import TopicNotFoundError, follow, partition_ends, read_to_end
from streams.kafka.stored_letters import StoredLetter
from streams.settings import Settings
from streams.state.codec import decode_profile

DEFAULT_LAST = 10  # records per partition without --from-beginning, as tail(1) shows

Decoder = Callable[[bytes], Any]


def _decoder(settings: Settings, topic: str) -> Callable[[Message], dict[str, Any]]:
    """How ``topic``'s values read: by the setting that names it; a connector's DLQ by its
    name; anything else as JSON or Avro when it is, else escaped bytes."""
    if topic == settings.dlq_topic or topic.endswith("-dlq"):
        return lambda message: letter_document(StoredLetter.from_message(message))
    value: Decoder = _any_value
    if topic == settings.upserts_topic:
        codec = UpsertCodec(settings.output_format, kernel=settings.kernel)
        value = lambda data: upsert_record(codec.decode(data))  # noqa: E731
    elif topic == settings.changelog_topic:
        value = _state

    def decode(message: Message) -> dict[str, Any]:
        data = message.value()
        return {"value": None if data is None else value(data)}  # None: a tombstone

    return decode


def _any_value(data: bytes) -> Any:
    return readable(data).value


def _state(data: bytes) -> dict[str, Any]:
    profile = decode_profile(data)
    return {
        "properties": {
            name: {"value": s.value, "last_update": s.last_update, "source": s.source}
            for name, s in profile.properties.items()
        },
        "deleted_at": profile.deleted_at,
    }


def record_line(message: Message, decode: Callable[[Message], dict[str, Any]]) -> bytes:
    """One JSON line: the record's coordinates and key, then its decoded value, or ``error``
    and the raw value escaped when it does not decode."""
    kind, stamp = message.timestamp()
    key = message.key()
    line: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "time": None if kind == TIMESTAMP_NOT_AVAILABLE else iso_time(stamp),
        "key": None if key is None else escaped(key),
    }
    try:
        line.update(decode(message))
    except Exception as exc:  # untrusted bytes fail in many ways: a line, never a crash
        detail = getattr(exc, "detail", None) or type(exc).__name__
        line["error"] = f"undecodable: {detail}"
        line["raw"] = escaped(message.value() or b"")
    return orjson.dumps(line, default=str)


def _messages(
    settings: Settings, topic: str, from_beginning: bool, last: int, follow_on: bool
) -> Generator[Message]:
    consumer = reader(settings, "tail")
    try:
        ranges = partition_ends(consumer, topic)
        starts = {
            p: (low if from_beginning else max(low, high - last), high)
            for p, (low, high) in ranges.items()
        }
        yield from read_to_end(consumer, topic, starts)
        if follow_on:
            yield from follow(consumer, topic, {p: high for p, (_, high) in ranges.items()})
    finally:
        consumer.close()


def tail(
    topic: Annotated[str, typer.Argument(help="Any topic of the product (or a connector's DLQ).")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Every record, not the last ones.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            help=f"At most this many records (default without --from-beginning: the last "
            f"{DEFAULT_LAST} of each partition).",
            min=1,
        ),
    ] = None,
    follow_on: Annotated[
        bool, typer.Option("--follow", help="Then wait for new records until Ctrl-C.")
    ] = False,
) -> None:
    """Print a topic's records as JSON lines, values decoded (change events, upserts, stale
    records, the state changelog, dead letters with their original)."""
    settings = kafka_settings()
    decode = _decoder(settings, topic)
    last = limit or DEFAULT_LAST
    messages = _messages(settings, topic, from_beginning, last, follow_on)
    try:
        for message in islice(messages, limit):
            typer.echo(record_line(message, decode).decode())
    except TopicNotFoundError as exc:
        raise fail(exc, EXIT_USAGE) from exc
    except StreamsError as exc:
        raise fail(exc) from exc
    except KeyboardInterrupt:
        pass
    finally:
        messages.close()
