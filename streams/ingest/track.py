"""Tracking request bodies to per-command results and change-event records (pure, no I/O).

A body is a Bloomreach-style batch ``{"commands": [...]}``, one native change event (DESIGN.md)
or a JSON array of them. The body is parsed once; each accepted command becomes one
``(key, value)`` record, built by :func:`change_event` (a native event is taken as written),
encoded and validated by :meth:`EventDecoder.encode` exactly as the processor will read it, so
nothing accepted here is dead-lettered later for the same reason.
Every event must then pass the caller's :class:`SourceBinding`: commands are written as its
source, and a native event naming another source, or an op it does not allow, is refused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.codecs.customer_ids import customer_id_of
from streams.codecs.events import EventDecoder, change_event
from streams.codecs.integers import loads_exact
from streams.errors import InvalidEventError, StreamsError
from streams.ingest.binding import SourceBinding
from streams.logs import clip_name

CUSTOMERS = "customers"
SYSTEM_TIME = "system/time"
SYSTEM_COOKIE = "system/cookie"
# Bloomreach commands this service does not implement: a clear per-command error, never a guess.
UNSUPPORTED = frozenset({SYSTEM_COOKIE, "customers/events", "customers/properties"})
COMMAND_FIELDS = frozenset({"name", "data"})
CUSTOMERS_FIELDS = frozenset({"customer_ids", "properties", "update_timestamp", "event_id"})
OK: dict[str, Any] = {"success": True}


class TrackRequestError(StreamsError):
    """The request as a whole is unacceptable (not a single command of it is looked at)."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TrackOptions:
    """``id_kinds``: which ``customer_ids`` entry names the customer, first present wins."""

    id_kinds: tuple[str, ...] = ("registered",)
    max_commands: int = 1000

    def __post_init__(self) -> None:
        if not self.id_kinds or self.max_commands < 1:
            raise ValueError("TrackOptions needs an id kind and max_commands >= 1")


@dataclass(slots=True)
class TrackBatch:
    """``results`` has one entry per command, in order; ``records`` the events to produce."""

    results: list[dict[str, Any]] = field(default_factory=list)
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return self.rejected_reasons.total()

    @property
    def accepted(self) -> int:
        return len(self.results) - self.rejected

    def fail(self, reason: str, detail: str) -> None:
        self.results.append({"success": False, "error": detail, "reason": reason})
        self.rejected_reasons[reason] += 1


def parse_track_body(
    body: bytes, decoder: EventDecoder, options: TrackOptions, binding: SourceBinding, now_ms: int
) -> TrackBatch:
    """Per-command results and the records to produce; ``binding``: what the caller's key may
    write; ``now_ms`` is the receive time.

    Raises :class:`TrackRequestError` for a body that is not JSON, has the wrong shape, holds no
    command or more than ``options.max_commands``."""
    try:
        doc = loads_exact(body)  # integers exact: one out of range is refused per command
    except orjson.JSONDecodeError as exc:
        raise TrackRequestError(400, "bad_json", f"{exc.msg} at char {exc.pos}") from exc
    if type(doc) is dict and "commands" in doc:
        if len(doc) != 1:
            unknown = ", ".join(sorted(clip_name(str(name)) for name in doc if name != "commands"))
            raise TrackRequestError(400, "bad_shape", f"unknown top-level field(s): {unknown}")
        commands = doc["commands"]
        if type(commands) is not list:
            raise TrackRequestError(400, "bad_shape", "commands must be an array")
        _check_count(len(commands), options)
        return _batch(commands, decoder, options, binding, now_ms, bloomreach=True)
    if type(doc) is dict:
        return _batch([doc], decoder, options, binding, now_ms, bloomreach=False)
    if type(doc) is list:
        _check_count(len(doc), options)
        return _batch(doc, decoder, options, binding, now_ms, bloomreach=False)
    raise TrackRequestError(
        400,
        "bad_shape",
        f'top level is {type(doc).__name__}: expected {{"commands": [...]}}, '
        "a change event or an array of change events",
    )


def _check_count(count: int, options: TrackOptions) -> None:
    if count == 0:
        raise TrackRequestError(400, "empty", "the request holds no command")
    if count > options.max_commands:
        raise TrackRequestError(
            413, "too_many_commands", f"{count} commands > {options.max_commands} per request"
        )


def _batch(
    items: list[Any],
    decoder: EventDecoder,
    options: TrackOptions,
    binding: SourceBinding,
    now_ms: int,
    *,
    bloomreach: bool,
) -> TrackBatch:
    batch = TrackBatch()
    results, records = batch.results, batch.records
    for item in items:
        try:
            if bloomreach:
                event = _command(item, options, binding.source, now_ms, results)
                if event is None:
                    continue
            elif type(item) is dict:
                event = item
            else:
                raise InvalidEventError("not_an_object", "a change event must be an object")
            # Native events without a time take the record's (CreateTime, stamped at produce).
            record = decoder.encode(event, now_ms)
            binding.check(record.event)
        except InvalidEventError as exc:
            batch.fail(exc.reason, exc.detail or exc.reason)
            continue
        results.append(OK)
        records.append((record.key, record.value))
    return batch


def _command(
    item: Any, options: TrackOptions, source: str, now_ms: int, results: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The native event of a ``customers`` command; ``None`` when the command was answered."""
    if type(item) is not dict:
        raise InvalidEventError("bad_command", "a command must be an object")
    name = item.get("name")
    if type(name) is not str:
        raise InvalidEventError("bad_command", "a command needs a string name")
    if not COMMAND_FIELDS.issuperset(item):
        unknown = ", ".join(sorted(clip_name(str(key)) for key in item.keys() - COMMAND_FIELDS))
        raise InvalidEventError("unknown_field", f"unknown command field(s): {unknown}")
    if name == CUSTOMERS:
        return _customers(item.get("data"), options, source, now_ms)
    if name == SYSTEM_TIME:
        results.append({"success": True, "time": now_ms / 1000})
        return None
    if name in UNSUPPORTED:
        raise InvalidEventError(
            "unsupported_command",
            f"{name} is not supported here: send customers commands with customer_ids",
        )
    raise InvalidEventError("unknown_command", f"unknown command {clip_name(name)!r}")


def _customers(data: Any, options: TrackOptions, source: str, now_ms: int) -> dict[str, Any]:
    if type(data) is not dict:
        raise InvalidEventError("bad_command", "a customers command needs a data object")
    if not CUSTOMERS_FIELDS.issuperset(data):
        unknown = ", ".join(sorted(clip_name(str(key)) for key in data.keys() - CUSTOMERS_FIELDS))
        raise InvalidEventError("unknown_field", f"unknown data field(s): {unknown}")
    customer_id = customer_id_of(data.get("customer_ids"), options.id_kinds)
    timestamp = data.get("update_timestamp")
    return change_event(
        customer_id,
        source,
        # Stamped now, not left to Kafka: a slow broker must not move the update time.
        now_ms / 1000 if timestamp is None else timestamp,
        data.get("properties", {}),
        event_id=data.get("event_id"),
    )
