"""The tracking feature: ``POST /track/batch`` (Bloomreach-style batch commands, native events).

The answer waits for Kafka's acknowledgement of every accepted record, produced in one
``send`` call per request. Any record Kafka did not acknowledge makes the whole request a 503
with ``Retry-After``: retrying it is safe, since the merge absorbs duplicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from streams.codecs.events import EventDecoder
from streams.errors import ConfigError
from streams.http_auth import matching_token, presented_token, unauthorized
from streams.ingest.binding import SourceBinding, check_keys
from streams.ingest.http.app import METRICS_KEY
from streams.ingest.http.body import read_body
from streams.ingest.http.feature import Feature, FeatureContext
from streams.ingest.http.openapi import ERROR_REF, error_response
from streams.ingest.http.responses import error, json_response
from streams.ingest.producer import DEFAULT_RETRY_AFTER_SECONDS
from streams.ingest.track import TrackOptions, TrackRequestError, parse_track_body
from streams.model import Op
from streams.validation import validation_problems

logger = logging.getLogger(__name__)

NAME = "tracking"
PATH = "/track/batch"
REALM = "profile-streams-tracking"
JSON = "application/json"


KEY_ID = r"^[A-Za-z0-9._-]{1,100}$"
OpName = Literal["upsert", "delete"]


class TrackingKey(BaseModel):
    """One ``[[tracking.keys]]`` entry: a secret whose events are written as ``source``, with
    the ``ops`` listed only (deletes need ``ops = ["upsert", "delete"]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=KEY_ID)  # names the key in logs, never the secret
    secret: SecretStr
    source: str = Field(min_length=1)
    ops: tuple[OpName, ...] = Field(default=("upsert",), min_length=1)

    def binding(self) -> SourceBinding:
        return SourceBinding(self.source, frozenset(Op(op) for op in self.ops))


class TrackingSection(BaseModel):
    """The ``[tracking]`` table; without keys, ``anonymous = true`` must say so.

    ``api_keys`` (the first form, kept as it reads) are bound to ``source`` and upsert only;
    ``keys`` bind each secret to a source and ops of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: list[SecretStr] = Field(default_factory=list)
    keys: list[TrackingKey] = Field(default_factory=list)
    anonymous: bool = False
    api_key_header: str = "X-API-Key"
    source: str = Field(default="track", min_length=1)
    id_kinds: list[str] = Field(default_factory=lambda: ["registered"], min_length=1)
    max_commands: int = Field(default=1000, ge=1, le=100_000)
    retry_after_seconds: int = Field(default=DEFAULT_RETRY_AFTER_SECONDS, ge=1, le=3600)

    @model_validator(mode="after")
    def _auth_is_explicit(self) -> TrackingSection:
        secrets = [key.get_secret_value() for key in self.api_keys]
        secrets += [key.secret.get_secret_value() for key in self.keys]
        if self.anonymous and secrets:
            raise ValueError("set either api_keys/keys or anonymous = true, not both")
        if not self.anonymous and not secrets:
            raise ValueError("api_keys is required (or keys, or anonymous = true to accept anyone)")
        check_keys(secrets, [key.id for key in self.keys])
        return self

    def credentials(self) -> list[tuple[str, SecretStr, SourceBinding]]:
        """(key id, secret, binding) of every key; ``api_keys[i]`` name the first form's."""
        legacy = SourceBinding(self.source)
        found = [(f"api_keys[{i}]", key, legacy) for i, key in enumerate(self.api_keys)]
        return found + [(key.id, key.secret, key.binding()) for key in self.keys]


class TrackHandler:
    def __init__(self, section: TrackingSection, context: FeatureContext) -> None:
        self._section = section
        self._producer = context.producer
        self._decoder = EventDecoder.from_settings(context.settings)
        self._options = TrackOptions(
            id_kinds=tuple(section.id_kinds), max_commands=section.max_commands
        )
        credentials = section.credentials()
        self._key_ids = [key_id for key_id, _, _ in credentials]
        self._secrets = [secret for _, secret, _ in credentials]
        self._bindings = [binding for _, _, binding in credentials]
        self._anonymous = SourceBinding(section.source)

    def _caller(self, request: web.Request) -> tuple[str, SourceBinding]:
        """The caller's key id and what it may write; 401 without a valid key."""
        if self._section.anonymous:
            return "anonymous", self._anonymous
        token = presented_token(request, self._section.api_key_header)
        index = matching_token(token, self._secrets)
        if index is None:
            raise unauthorized(REALM)
        return self._key_ids[index], self._bindings[index]

    async def track_batch(self, request: web.Request) -> web.Response:
        key_id, binding = self._caller(request)
        if request.content_type != JSON:
            return error(415, "unsupported_media_type", f"Content-Type must be {JSON}")
        body = await read_body(request, request.client_max_size)
        metrics = request.app[METRICS_KEY]
        now_ms = time.time_ns() // 1_000_000
        try:
            batch = parse_track_body(body, self._decoder, self._options, binding, now_ms)
        except TrackRequestError as exc:
            metrics.rejected.labels(NAME, exc.reason).inc()
            return error(exc.status, exc.reason, exc.detail)
        answer = {"results": batch.results, "accepted": batch.accepted, "rejected": batch.rejected}
        for reason, count in batch.rejected_reasons.items():
            metrics.rejected.labels(NAME, reason).inc(count)
        if batch.rejected:
            logger.info(
                "track commands rejected key=%s count=%d reasons=%s",
                key_id,
                batch.rejected,
                ",".join(sorted(batch.rejected_reasons)),
            )
        if batch.accepted == 0:
            return json_response(answer, 400)
        if batch.records:
            unavailable = await self._produce(batch.records)
            if unavailable is not None:
                return unavailable
        metrics.accepted.labels(NAME).inc(batch.accepted)
        return json_response(answer)

    async def _produce(self, records: list[tuple[bytes, bytes]]) -> web.Response | None:
        """``None`` once Kafka acknowledged every record, else the 503 to answer."""
        failed = await self._producer.acknowledged(
            records, retry_after=self._section.retry_after_seconds, what="track"
        )
        if failed is None:
            return None
        headers = {"Retry-After": str(failed.retry_after)}
        return error(503, "broker_unavailable", failed.detail, headers)


def build_feature(section: Mapping[str, Any], context: FeatureContext) -> Feature:
    """The tracking feature from its ``[tracking]`` table (see :class:`TrackingSection`)."""
    try:
        options = TrackingSection.model_validate(dict(section))
    except ValidationError as exc:
        raise ConfigError(f"[{NAME}] {validation_problems(exc)}") from exc
    handler = TrackHandler(options, context)
    return Feature(
        name=NAME,
        routes=[web.post(PATH, handler.track_batch)],
        openapi_paths=track_paths(PATH, secured=not options.anonymous),
        openapi_components=track_components(options.api_key_header, options.id_kinds),
    )


def track_paths(path: str, *, secured: bool) -> dict[str, Any]:
    body = {"$ref": "#/components/schemas/TrackResponse"}
    operation: dict[str, Any] = {
        "summary": "Track profile changes: Bloomreach batch commands or native change events",
        "description": (
            "Answers after Kafka acknowledged every accepted record. Results are per command, "
            "in order. `system/time` answers the server time; `system/cookie`, "
            "`customers/events` and `customers/properties` are not supported (per-command "
            "`unsupported_command`). Events are written as the source bound to the API key: a "
            "native event naming another source (`source_not_allowed`) or an op the key may "
            "not use (`op_not_allowed`, deletes unless allowed) is refused per command. "
            "A 503 means retry the whole request: duplicates are harmless."
        ),
        "operationId": "trackBatch",
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/TrackRequest"}}},
        },
        "responses": {
            "200": {
                "description": "At least one command accepted; every record acknowledged.",
                "content": {JSON: {"schema": body}},
            },
            "400": {
                "description": "Malformed JSON or shape, an empty request, or every command "
                "invalid (then with the per-command results).",
                "content": {JSON: {"schema": {"oneOf": [body, ERROR_REF]}}},
            },
            "401": error_response("Missing or invalid API key."),
            "413": error_response("Body over the size limit or too many commands."),
            "415": error_response("Content-Type is not application/json."),
            "503": error_response(
                "Kafka did not acknowledge every record: retry the whole request.",
                retry_after=True,
            ),
        },
    }
    if secured:
        operation["security"] = [{"ApiKeyHeader": []}, {"BearerToken": []}]
    return {path: {"post": operation}}


def track_components(
    api_key_header: str, id_kinds: Sequence[str] = ("registered",)
) -> dict[str, dict[str, Any]]:
    event_ref = {"$ref": "#/components/schemas/ChangeEvent"}
    timestamp = {
        "description": "UNIX seconds (int or float) or ISO-8601; -1 or null: unknown (the "
        "receive time). At most now plus the clock skew allowance.",
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"const": -1},
            {"type": "string", "format": "date-time"},
            {"type": "null"},
        ],
    }
    scalar = {"type": ["string", "number", "integer", "boolean", "null"]}
    properties = {
        "type": "object",
        "propertyNames": {"minLength": 1},
        "additionalProperties": scalar,
    }
    return {
        "schemas": {
            "TrackRequest": {
                "oneOf": [
                    {"$ref": "#/components/schemas/BatchCommands"},
                    event_ref,
                    {"type": "array", "items": event_ref, "minItems": 1},
                ]
            },
            "BatchCommands": {
                "type": "object",
                "required": ["commands"],
                "additionalProperties": False,
                "properties": {
                    "commands": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "#/components/schemas/Command"},
                    }
                },
            },
            "Command": {
                "description": "Other Bloomreach commands get a per-command "
                "unsupported_command or unknown_command.",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "data"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"const": "customers"},
                            "data": {"$ref": "#/components/schemas/CustomersData"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": {"const": "system/time"}},
                    },
                ],
            },
            "CustomersData": {
                "type": "object",
                "required": ["customer_ids"],
                "additionalProperties": False,
                "properties": {
                    "customer_ids": {
                        "type": "object",
                        "properties": {
                            kind: {"type": ["string", "null"], "minLength": 1} for kind in id_kinds
                        },
                        "anyOf": [
                            {"required": [kind], "properties": {kind: {"type": "string"}}}
                            for kind in id_kinds
                        ],
                        "description": "The first configured id kind present (not null) "
                        "names the customer (default: registered); other kinds are ignored.",
                    },
                    "properties": properties,
                    "update_timestamp": {
                        **timestamp,
                        "description": "Applies to every property of the command; "
                        "default: the time the server received the request.",
                    },
                    "event_id": {"type": ["string", "null"]},
                },
            },
            "ChangeEvent": {
                "type": "object",
                "required": ["customer_id", "source"],
                "additionalProperties": False,
                "properties": {
                    "customer_id": {"type": "string", "minLength": 1},
                    "source": {"type": "string", "minLength": 1},
                    "event_id": {"type": ["string", "null"]},
                    "op": {"enum": ["upsert", "delete"]},
                    "update_timestamp": timestamp,
                    "properties": properties,
                    "property_timestamps": {
                        "type": ["object", "null"],
                        "propertyNames": {"minLength": 1},
                        "additionalProperties": timestamp,
                    },
                },
            },
            "TrackResponse": {
                "type": "object",
                "required": ["results", "accepted", "rejected"],
                "properties": {
                    "results": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/CommandResult"},
                    },
                    "accepted": {"type": "integer", "minimum": 0},
                    "rejected": {"type": "integer", "minimum": 0},
                },
            },
            "CommandResult": {
                "type": "object",
                "required": ["success"],
                "properties": {
                    "success": {"type": "boolean"},
                    "time": {"type": "number", "description": "system/time: server time, s."},
                    "error": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
        "securitySchemes": {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": api_key_header},
            "BearerToken": {"type": "http", "scheme": "bearer"},
        },
    }
