"""The webhooks' part of the service's OpenAPI 3.1 document: one path per configured source,
its body described by the source's mapping."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from streams.field_types import FALSE_WORDS, TRUE_WORDS, FieldType
from streams.ingest.http.openapi import error_response, json_answer
from streams.ingest.webhooks.config import SourceConfig
from streams.ingest.webhooks.mapping import MAX_ID_LENGTH, split_path

JSON = "application/json"
# What Python's str.strip() removes (JSON Schema's \\s differs: \\x1c-\\x1f, \\x85, \\ufeff),
# for patterns of what the service strips before it looks.
_WS = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680"
    "\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# Not blank and not a dot segment once stripped (see fetch.is_safe_id).
_NOTIFY_ID = f"^(?![{_WS}]*\\.{{1,2}}[{_WS}]*$)[{_WS}]*[^{_WS}]"


_SOURCE = {
    "name": "source",
    "in": "path",
    "required": True,
    "description": "a configured origin, a [webhooks.<source>] table",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,100}$"},
}
_SECURITY: list[dict[str, list[str]]] = [
    {"WebhookToken": []},
    {"WebhookBearer": []},
    {"WebhookSignature": []},
    {"WebhookQueryToken": []},
]
_ERRORS = {
    "401": error_response("missing or invalid credentials"),
    "404": error_response("unknown source (or, for notify, a source without [fetch])"),
    "503": error_response("Kafka did not acknowledge: nothing is accepted, retry",
                          retry_after=True),
}  # fmt: skip

_NOTIFY: dict[str, Any] = {
    "parameters": [
        _SOURCE,
        {
            "name": "id",
            "in": "query",
            "required": True,
            "description": "the origin's id of the changed profile",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ID_LENGTH,
                "pattern": _NOTIFY_ID,
            },
        },
    ],
    "security": _SECURITY,
    "responses": {
        "200": json_answer("fetched, mapped and acknowledged by Kafka", "WebhookAccepted"),
        "202": json_answer(
            "the profile could not be fetched or mapped; the notification is in the dead-letter "
            "topic with the reason",
            "WebhookDeadLettered",
        ),
        "400": error_response("no id, or an id that is a dot segment (. or ..)"),
        **_ERRORS,
    },
}

PATHS: dict[str, Any] = {
    "/webhooks/{source}": {
        "post": {
            "operationId": "pushWebhookProfile",
            "summary": "A profile (or an array of profiles) pushed by an origin",
            "description": "Mapped by the source's configuration to change events; answered "
            "only after Kafka acknowledged every event. All or nothing: one bad profile "
            "rejects the request.",
            "tags": ["webhooks"],
            "parameters": [_SOURCE],
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": {
                            "oneOf": [
                                {"type": "object"},
                                {"type": "array", "items": {"type": "object"}, "minItems": 1},
                            ]
                        }
                    }
                },
            },
            "responses": {
                "200": json_answer("every event acknowledged by Kafka", "WebhookAccepted"),
                "400": error_response("not JSON, or an empty array"),
                "413": error_response("body or array larger than the source allows"),
                "415": error_response("Content-Type is not application/json"),
                "422": error_response("a profile does not map to a valid event"),
                **_ERRORS,
            },
        }
    },
    "/webhooks/{source}/notify": {
        "get": {
            "operationId": "notifyWebhookGet",
            "summary": "A bare notification: fetch the profile from the origin",
            "tags": ["webhooks"],
            **_NOTIFY,
        },
        "post": {
            "operationId": "notifyWebhookPost",
            "summary": "A bare notification (POST): fetch the profile from the origin",
            "tags": ["webhooks"],
            **_NOTIFY,
        },
    },
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "schemas": {
        "WebhookAccepted": {
            "type": "object",
            "required": ["status", "events"],
            "properties": {
                "status": {"const": "accepted"},
                "events": {"type": "integer", "minimum": 1},
                "attempts": {"type": "integer", "description": "origin fetch attempts (notify)"},
            },
        },
        "WebhookDeadLettered": {
            "type": "object",
            "required": ["status", "reason", "detail"],
            "properties": {
                "status": {"const": "dead_lettered"},
                "reason": {"type": "string", "examples": ["origin_not_found", "origin_error"]},
                "detail": {"type": "string"},
                "attempts": {"type": "integer"},
            },
        },
    },
    "securitySchemes": {
        "WebhookToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Webhook-Token",
            "description": "the source's token (token_header may rename the header)",
        },
        "WebhookBearer": {"type": "http", "scheme": "bearer"},
        "WebhookSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Webhook-Signature",
            "description": "sha256=<hex HMAC-SHA256 of the raw body under signing_secret>",
        },
        "WebhookQueryToken": {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": "only where the source sets allow_query_token",
        },
    },
}


def webhook_paths(sources: Mapping[str, SourceConfig]) -> dict[str, Any]:
    """One path per configured source (a notify path only where it fetches), its request body
    shaped by the source's mapping: the id, the required fields and the properties' types."""
    paths: dict[str, Any] = {}
    for name, config in sorted(sources.items()):
        push = copy.deepcopy(PATHS["/webhooks/{source}"]["post"])
        push["operationId"] = f"pushWebhookProfile.{name}"
        push["parameters"] = []
        push["security"] = security(name, config)
        profile = profile_schema(config)
        batch = {"type": "array", "items": profile, "minItems": 1, "maxItems": config.max_batch}
        push["requestBody"]["content"][JSON]["schema"] = {"oneOf": [profile, batch]}
        paths[f"/webhooks/{name}"] = {"post": push}
        if config.fetch is not None:
            notify = copy.deepcopy(PATHS["/webhooks/{source}/notify"])
            for method, operation in notify.items():
                operation["operationId"] = f"{operation['operationId']}.{name}"
                operation["parameters"] = [p for p in operation["parameters"] if p["in"] != "path"]
                operation["security"] = security(name, config)
                notify[method] = operation
            paths[f"/webhooks/{name}/notify"] = notify
    return paths


def security(name: str, config: SourceConfig) -> list[dict[str, list[str]]]:
    """The ways ``config`` lets a caller in (any one of them)."""
    schemes: list[str] = []
    if config.tokens:
        schemes += [_token_scheme(name, config), "WebhookBearer"]
        if config.allow_query_token:
            schemes.append("WebhookQueryToken")
    if config.signing_secret is not None:
        schemes.append(_signature_scheme(name, config))
    return [{scheme: []} for scheme in schemes]


def webhook_components(sources: Mapping[str, SourceConfig]) -> dict[str, dict[str, Any]]:
    """:data:`COMPONENTS` plus a header scheme per source that renames a header."""
    components = copy.deepcopy(COMPONENTS)
    schemes = components["securitySchemes"]
    for name, config in sources.items():
        for scheme, header in (
            (_token_scheme(name, config), config.token_header),
            (_signature_scheme(name, config), config.signature_header),
        ):
            if scheme not in schemes:
                schemes[scheme] = {"type": "apiKey", "in": "header", "name": header}
    return components


def _token_scheme(name: str, config: SourceConfig) -> str:
    default = config.token_header == SourceConfig.model_fields["token_header"].default
    return "WebhookToken" if default else f"WebhookToken.{name}"


def _signature_scheme(name: str, config: SourceConfig) -> str:
    default = config.signature_header == SourceConfig.model_fields["signature_header"].default
    return "WebhookSignature" if default else f"WebhookSignature.{name}"


def profile_schema(config: SourceConfig) -> dict[str, Any]:
    """The JSON Schema of one pushed profile under ``config``'s mapping (other fields are
    ignored, so allowed)."""
    root: dict[str, Any] = {"type": "object"}
    _place(root, split_path(config.id_field), _ID, required=True)
    if config.timestamp_field:
        _place(root, split_path(config.timestamp_field), _TIME, required=True)
    for rule in config.properties:
        _place(root, split_path(rule.from_path), _VALUE[rule.type], required=rule.required)
    return root


def _place(
    node: dict[str, Any], parts: Sequence[str], leaf: dict[str, Any], *, required: bool
) -> None:
    """Put ``leaf`` at ``parts`` below ``node``. A required path's objects are required; an
    optional path's may be anything (a path through a non-object is just absent). Where two
    rules meet (one path a prefix of another) the value is left unconstrained."""
    for index, part in enumerate(parts):
        properties = node.setdefault("properties", {})
        if required and part not in node.get("required", []):
            node.setdefault("required", []).append(part)
        last = index == len(parts) - 1
        child = properties.get(part)
        if child is not None and (last or "properties" not in child):
            properties[part] = {}
            return
        if last:
            properties[part] = copy.deepcopy(leaf)
            return
        node = properties.setdefault(part, {"properties": {}})
        if required:
            node["type"] = "object"


_INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_NULL = {"type": "null"}
_ID: dict[str, Any] = {
    "description": "the customer id (an integer is taken as its decimal string)",
    "anyOf": [
        {"type": "string", "maxLength": MAX_ID_LENGTH, "pattern": f"^[{_WS}]*[^{_WS}\\u0000]"},
        {"type": "integer"},
    ],
}
_DATE_TIME = {"type": "string", "format": "date-time"}
_TIME: dict[str, Any] = {
    "description": "the update time: epoch seconds or milliseconds, or ISO-8601",
    "anyOf": [{"type": "number"}, _DATE_TIME],
}
_EPOCH_MS = {"type": "number", "minimum": -62135596800000, "maximum": 253402300799999}
# What each property type takes for sure (the converters also take numeric strings, and
# the words of a boolean in any case).
_VALUE: dict[FieldType, dict[str, Any]] = {
    "string": {"type": ["string", "number", "boolean", "null"]},
    "int": {"anyOf": [_INT64, _NULL]},
    "float": {"type": ["number", "null"]},
    "bool": {
        "anyOf": [
            {"type": ["boolean", "null"]},
            {"enum": [0, 1, *sorted(TRUE_WORDS), *sorted(FALSE_WORDS)]},
        ]
    },
    "datetime": {"anyOf": [_DATE_TIME, _EPOCH_MS, _NULL]},
}
