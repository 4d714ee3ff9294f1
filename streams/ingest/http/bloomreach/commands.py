"""Bloomreach tracking bodies to per-command results and records (pure, no I/O).

``customers`` commands are parsed by :func:`streams.ingest.track.parse_track_body`, the
tracking route's own parsing, so they become the same change events on the input topic;
``customers/events`` become customer events for the events topic, keyed by the customer the
same ``id_kinds`` name; ``system/time`` answers the receive time. Commands may carry a
``command_id``, given back in their result.
https://documentation.bloomreach.com/engagement/reference/batch-commands-2
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.codecs.customer_ids import customer_id_of
from streams.codecs.events import EventDecoder
from streams.codecs.integers import dumps_event, loads_exact, out_of_range, wide_integer_path
from streams.codecs.timestamps import to_epoch_ms
from streams.errors import InvalidEventError
from streams.ingest.binding import SourceBinding
from streams.ingest.http.bloomreach.answers import BloomreachError
from streams.ingest.track import (
    CUSTOMERS,
    SYSTEM_TIME,
    TrackOptions,
    parse_track_body,
)
from streams.logs import clip_name
from streams.model import UNKNOWN_TS
from streams.web.bloomreach import failure

CUSTOMER_EVENTS = "customers/events"
COMMAND_FIELDS = frozenset({"name", "data", "command_id"})
EVENT_FIELDS = frozenset({"customer_ids", "event_type", "timestamp", "properties"})
Record = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class CommandRules:
    """What a command is checked against; ``events``: whether an events topic is configured."""

    decoder: EventDecoder
    options: TrackOptions
    binding: SourceBinding
    events: bool
    max_event_bytes: int
    max_clock_skew_ms: int


@dataclass(slots=True)
class Commands:
    """One result per command, in order; the records for the input and the events topics."""

    results: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Record] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return self.rejected_reasons.total()

    @property
    def accepted(self) -> int:
        return len(self.results) - self.rejected


def load_object(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; 400 for anything else."""
    try:
        doc = loads_exact(body)  # integers exact: one out of range is refused per command
    except orjson.JSONDecodeError as exc:
        raise BloomreachError(
            400, "bad_json", f"invalid JSON: {exc.msg} at char {exc.pos}"
        ) from exc
    if type(doc) is not dict:
        raise BloomreachError(
            400, "bad_shape", f"top level is {type(doc).__name__}: expected an object"
        )
    return doc


def batch_commands(doc: dict[str, Any], max_commands: int) -> list[Any]:
    """The ``commands`` of a batch body, at most ``max_commands`` (else 413)."""
    if set(doc) != {"commands"}:
        unknown = ", ".join(sorted(clip_name(str(name)) for name in doc if name != "commands"))
        detail = (
            f"unknown top-level field(s): {unknown}" if unknown else 'expected {"commands": [...]}'
        )
        raise BloomreachError(400, "bad_shape", detail)
    commands = doc["commands"]
    if type(commands) is not list:
        raise BloomreachError(400, "bad_shape", "commands must be an array")
    if not commands:
        raise BloomreachError(400, "empty", "the request holds no command")
    if len(commands) > max_commands:
        raise BloomreachError(
            413, "too_many_commands", f"{len(commands)} commands > {max_commands} per request"
        )
    return commands


def run_commands(commands: list[Any], rules: CommandRules, now_ms: int) -> Commands:
    """Every command's result, in order, and the records of the accepted ones."""
    done = Commands(results=[{} for _ in commands])
    customers: list[tuple[int, bytes]] = []  # (index, the command as the tracking route reads it)
    for index, command in enumerate(commands):
        try:
            name, data = _name_and_data(command)
            if name == CUSTOMERS:
                customers.append((index, _dumps({"name": CUSTOMERS, "data": data})))
                continue
            if name == CUSTOMER_EVENTS:
                done.events.append(_event(data, rules, now_ms))
                done.results[index] = {"success": True}
            elif name == SYSTEM_TIME:
                done.results[index] = {"success": True, "time": now_ms / 1000}
            else:
                raise InvalidEventError(
                    "unknown_command",
                    f"unknown command {clip_name(name)!r}: expected customers, "
                    "customers/events or system/time",
                )
        except InvalidEventError as exc:
            _fail(done, index, exc)
    if customers:
        _customers(done, customers, rules, now_ms)
    for index, command in enumerate(commands):
        command_id = command.get("command_id") if type(command) is dict else None
        if type(command_id) is str:
            done.results[index]["command_id"] = command_id
    return done


def _name_and_data(command: Any) -> tuple[str, Any]:
    if type(command) is not dict:
        raise InvalidEventError("bad_command", "a command must be an object")
    if not COMMAND_FIELDS.issuperset(command):
        unknown = ", ".join(sorted(clip_name(str(key)) for key in command.keys() - COMMAND_FIELDS))
        raise InvalidEventError("unknown_field", f"unknown command field(s): {unknown}")
    name = command.get("name")
    if type(name) is not str:
        raise InvalidEventError("bad_command", "a command needs a string name")
    command_id = command.get("command_id")
    if command_id is not None and type(command_id) is not str:
        raise InvalidEventError("bad_command", "command_id must be a string")
    return name, command.get("data")


def _customers(
    done: Commands, customers: list[tuple[int, bytes]], rules: CommandRules, now_ms: int
) -> None:
    """The ``customers`` commands, parsed together by the tracking route's parser."""
    body = b'{"commands":[' + b",".join(command for _, command in customers) + b"]}"
    options = TrackOptions(rules.options.id_kinds, max_commands=len(customers))
    batch = parse_track_body(body, rules.decoder, options, rules.binding, now_ms)
    records = iter(batch.records)
    for (index, _), result in zip(customers, batch.results, strict=True):
        if result["success"]:
            done.results[index] = {"success": True}
            done.changes.append(next(records))
        else:
            _fail(done, index, InvalidEventError(result["reason"], result["error"]))


def _event(data: Any, rules: CommandRules, now_ms: int) -> Record:
    """The customer event of a ``customers/events`` command, keyed by its customer."""
    if not rules.events:
        raise InvalidEventError(
            "events_not_configured",
            "customers/events are not accepted here: no events topic is configured "
            "(STREAMS_CUSTOMER_EVENTS_TOPIC)",
        )
    if type(data) is not dict:
        raise InvalidEventError("bad_command", "a customers/events command needs a data object")
    if not EVENT_FIELDS.issuperset(data):
        unknown = ", ".join(sorted(clip_name(str(key)) for key in data.keys() - EVENT_FIELDS))
        raise InvalidEventError("unknown_field", f"unknown data field(s): {unknown}")
    customer_id = customer_id_of(data.get("customer_ids"), rules.options.id_kinds)
    event_type = data.get("event_type")
    if type(event_type) is not str or not event_type:
        raise InvalidEventError("missing_event_type", "data.event_type must be a non-empty string")
    properties = data.get("properties", {})
    if type(properties) is not dict:
        raise InvalidEventError("bad_type", "data.properties must be an object")
    where = wide_integer_path(properties)
    if where is not None:
        raise out_of_range(f"properties.{where}")
    raw_ts = data.get("timestamp")
    timestamp = UNKNOWN_TS if raw_ts is None else to_epoch_ms(raw_ts, "timestamp")
    if timestamp == UNKNOWN_TS:
        timestamp = now_ms  # as Bloomreach: an event without a time happened when received
    if timestamp > now_ms + rules.max_clock_skew_ms:
        raise InvalidEventError("future_timestamp", f"event time {timestamp} ms > now + skew")
    value = _dumps(
        {
            "customer_id": customer_id,
            "customer_ids": data["customer_ids"],
            "source": rules.binding.source,
            "event_type": event_type,
            "timestamp": timestamp / 1000,
            "properties": properties,
        }
    )
    if len(value) > rules.max_event_bytes:
        raise InvalidEventError("too_large", f"{len(value)} bytes > {rules.max_event_bytes}")
    return customer_id.encode(), value


def _dumps(value: Any) -> bytes:
    try:
        return dumps_event(value)
    except (UnicodeEncodeError, orjson.JSONEncodeError) as exc:  # lone surrogates and such
        detail = f"not encodable as UTF-8 JSON ({type(exc).__name__})"
        raise InvalidEventError("bad_type", detail) from None


def _fail(done: Commands, index: int, exc: InvalidEventError) -> None:
    done.results[index] = failure(exc.reason, exc.detail or exc.reason)
    done.rejected_reasons[exc.reason] += 1
