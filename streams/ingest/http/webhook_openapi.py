"""The webhooks' part of the service's OpenAPI 3.1 document."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from streams.ingest.http.openapi import error_response

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str, *, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref(schema)}},
    }
    if retry_after:
        answer["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


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
            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
        },
    ],
    "security": _SECURITY,
    "responses": {
        "200": _answer("fetched, mapped and acknowledged by Kafka", "WebhookAccepted"),
        "202": _answer(
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
                "200": _answer("every event acknowledged by Kafka", "WebhookAccepted"),
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


def webhook_paths(sources: Sequence[str]) -> dict[str, Any]:
    """:data:`PATHS` with ``{source}`` limited to the configured ``sources``."""
    paths = copy.deepcopy(PATHS)
    for item in paths.values():
        for operation in item.values():
            for parameter in operation["parameters"]:
                if parameter["name"] == "source":
                    parameter["schema"] = {"enum": list(sources)}
    return paths
