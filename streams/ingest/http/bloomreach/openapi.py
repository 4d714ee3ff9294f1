"""The Bloomreach routes' part of the service's OpenAPI 3.1 document.

Every answer of these routes is Bloomreach-shaped, the service's own 408, 413 and 503 too, so
each operation lists them with ``BloomreachFailure`` (composing adds the service's ``Error``
only where a status is not documented).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.ingest.http.openapi import json_answer, schema_ref
from streams.web.bloomreach import API_CUSTOMER, EXPORT_ONE

JSON = "application/json"
SECURITY: list[dict[str, list[str]]] = [
    {"BloomreachBasic": []},
    {"BloomreachToken": []},
    {"BloomreachAccessToken": []},
]
PROJECT_TOKEN = {
    "name": "project_token",
    "in": "path",
    "required": True,
    "description": "A project token configured for the key (`projects` of `[[bloomreach.keys]]`).",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,100}$"},
}


AUTH_FAILURES = {
    "401": json_answer("Access key not provided, or not one configured.", "BloomreachFailure"),
    "403": json_answer("The key may not write to this project.", "BloomreachFailure"),
}
BODY_FAILURES = {
    "400": json_answer(
        "Malformed JSON or shape (a single-command route: the command is invalid).",
        "BloomreachFailure",
    ),
    "408": json_answer(
        "The body did not arrive within the service's body timeout.", "BloomreachFailure"
    ),
    "413": json_answer("Body over the size limit, or too many commands.", "BloomreachFailure"),
    "415": json_answer("Content-Type is not application/json.", "BloomreachFailure"),
    "503": json_answer(
        "Kafka did not acknowledge every record (or the service holds too many bodies): "
        "retry the whole request.",
        "BloomreachFailure",
        retry_after=True,
    ),
}


def _post(
    summary: str, operation_id: str, body: str, answer: str, description: str
) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "parameters": [PROJECT_TOKEN],
        "security": SECURITY,
        "requestBody": {"required": True, "content": {JSON: {"schema": schema_ref(body)}}},
        "responses": {
            "200": json_answer("Every record acknowledged by Kafka.", answer),
            **AUTH_FAILURES,
            **BODY_FAILURES,
        },
    }


READ_FAILURES = {
    "401": json_answer("Access key not provided, or not one configured.", "BloomreachFailure"),
    "403": json_answer(
        "A public key (reading needs a private one), or a project not the key's.",
        "BloomreachFailure",
    ),
    "404": json_answer("Customer does not exist.", "BloomreachFailure"),
    "502": json_answer("The owning worker refused this service's token.", "BloomreachFailure"),
    "503": json_answer(
        "No worker serves the customer right now (restoring, moving, not answering): retry.",
        "BloomreachFailure",
        retry_after=True,
    ),
}
CUSTOMER_ID = {
    "name": "customer_id",
    "in": "path",
    "required": True,
    "description": "The customer key (the first configured id kind's value).",
    "schema": {"type": "string", "minLength": 1},
}
INCLUDE_TIMESTAMPS = {
    "name": "include_timestamps",
    "in": "query",
    "required": False,
    "description": "`1`: each property as `{value, last_update}` (seconds, `-1` when unknown).",
    "schema": {"type": "string", "enum": ["0", "1"]},
}


def _read_paths() -> dict[str, Any]:
    return {
        API_CUSTOMER: {
            "get": {
                "summary": "Bloomreach: a customer's properties",
                "description": "Asked of the worker that owns the customer; the customer "
                "properties synchronization's formats.",
                "operationId": "bloomreachGetCustomer",
                "parameters": [CUSTOMER_ID, INCLUDE_TIMESTAMPS],
                "security": [{"BloomreachBasic": []}],
                "responses": {
                    "200": json_answer("The customer's properties.", "BloomreachCustomerDocument"),
                    **READ_FAILURES,
                },
            }
        },
        EXPORT_ONE: {
            "post": {
                "summary": "Bloomreach: export one customer",
                "description": "The customer the first configured id kind of `customer_ids` "
                "names, asked of the worker that owns it; `events` is always empty.",
                "operationId": "bloomreachExportOne",
                "parameters": [PROJECT_TOKEN],
                "security": [{"BloomreachBasic": []}],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": schema_ref("BloomreachExportOne")}},
                },
                "responses": {
                    "200": json_answer("The customer.", "BloomreachExportOneAnswer"),
                    **{**BODY_FAILURES, **READ_FAILURES},
                },
            }
        },
    }


def bloomreach_paths(prefix: str, max_commands: int) -> dict[str, Any]:
    return {
        **_read_paths(),
        f"{prefix}/batch": {
            "post": _post(
                "Bloomreach batch commands: customers, customers/events, system/time",
                "bloomreachBatch",
                "BloomreachBatch",
                "BloomreachBatchAnswer",
                f"At most {max_commands} commands. Each gets its result, in order, with its "
                '`command_id`; an invalid one `{"success": false, "errors": [...]}` while the '
                "others are accepted. Answered after Kafka acknowledged every record.",
            )
        },
        f"{prefix}/customers": {
            "post": _post(
                "Bloomreach: update one customer's properties",
                "bloomreachCustomers",
                "BloomreachCustomers",
                "BloomreachSuccess",
                "A change event on the input topic, written as the key's source; an older "
                "`update_timestamp` than the stored one is dropped by the merge (stale).",
            )
        },
        f"{prefix}/customers/events": {
            "post": _post(
                "Bloomreach: add one customer event",
                "bloomreachCustomerEvent",
                "BloomreachCustomerEvent",
                "BloomreachSuccess",
                "A customer event on the events topic, keyed by customer; refused (400, "
                "`events_not_configured`) when no events topic is configured.",
            )
        },
        f"{prefix}/system/time": {
            "get": {
                "summary": "Bloomreach: the server time in UNIX seconds",
                "operationId": "bloomreachSystemTime",
                "parameters": [PROJECT_TOKEN],
                "security": SECURITY,
                "responses": {
                    "200": json_answer("The server time.", "BloomreachTime"),
                    **AUTH_FAILURES,
                },
            }
        },
    }


def bloomreach_components(id_kinds: Sequence[str]) -> dict[str, dict[str, Any]]:
    timestamp = {
        "description": "UNIX seconds or ISO-8601; at most now plus the clock skew allowance.",
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"const": -1},
            {"type": "string", "format": "date-time"},
        ],
    }
    customer_ids = {
        "type": "object",
        "properties": {kind: {"type": ["string", "null"], "minLength": 1} for kind in id_kinds},
        "anyOf": [
            {"required": [kind], "properties": {kind: {"type": "string"}}} for kind in id_kinds
        ],
        "description": "The first configured id kind present (not null) names the customer "
        f"({', '.join(id_kinds)}); other kinds are ignored.",
    }
    scalar = {"type": ["string", "number", "integer", "boolean", "null"]}

    def command(name: str, data: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"name": {"const": name}, "command_id": {"type": "string"}}
        if data is not None:
            fields["data"] = schema_ref(data)
        return {
            "type": "object",
            "required": ["name", "data"] if data is not None else ["name"],
            "additionalProperties": False,
            "properties": fields,
        }

    return {
        "schemas": {
            "BloomreachBatch": {
                "type": "object",
                "required": ["commands"],
                "additionalProperties": False,
                "properties": {
                    "commands": {
                        "type": "array",
                        "minItems": 1,
                        "items": schema_ref("BloomreachCommand"),
                    }
                },
            },
            "BloomreachCommand": {
                "oneOf": [
                    command("customers", "BloomreachCustomers"),
                    command("customers/events", "BloomreachCustomerEvent"),
                    command("system/time", None),
                ]
            },
            "BloomreachCustomers": {
                "type": "object",
                "required": ["customer_ids"],
                "additionalProperties": False,
                "properties": {
                    "customer_ids": customer_ids,
                    "properties": {
                        "type": "object",
                        "propertyNames": {"minLength": 1},
                        "additionalProperties": scalar,
                    },
                    "update_timestamp": {
                        **timestamp,
                        "description": "Applies to every property; an older one than the "
                        "stored property's is dropped. Default: the receive time.",
                    },
                    "event_id": {"type": ["string", "null"]},
                },
            },
            "BloomreachCustomerEvent": {
                "type": "object",
                "required": ["customer_ids", "event_type"],
                "additionalProperties": False,
                "properties": {
                    "customer_ids": customer_ids,
                    "event_type": {"type": "string", "minLength": 1},
                    "properties": {"type": "object"},
                    "timestamp": {**timestamp, "description": "Default: the receive time."},
                },
            },
            "BloomreachBatchAnswer": {
                "type": "object",
                "required": ["success", "results"],
                "properties": {
                    "success": {"const": True},
                    "results": {"type": "array", "items": schema_ref("BloomreachResult")},
                    "start_time": {"type": "number"},
                    "end_time": {"type": "number"},
                },
            },
            "BloomreachResult": {
                "type": "object",
                "required": ["success"],
                "properties": {
                    "success": {"type": "boolean"},
                    "time": {"type": "number", "description": "system/time: server time, s."},
                    "errors": {"type": "array", "items": {"type": "string"}},
                    "reason": {"type": "string"},
                    "command_id": {"type": "string"},
                },
            },
            "BloomreachSuccess": {
                "type": "object",
                "required": ["success"],
                "properties": {"success": {"const": True}},
            },
            "BloomreachTime": {
                "type": "object",
                "required": ["success", "time"],
                "properties": {"success": {"const": True}, "time": {"type": "number"}},
            },
            "BloomreachExportOne": {
                "type": "object",
                "required": ["customer_ids"],
                "properties": {"customer_ids": customer_ids},
            },
            "BloomreachCustomerDocument": {
                "type": "object",
                "required": ["properties"],
                "properties": {"properties": {"type": "object"}},
            },
            "BloomreachExportOneAnswer": {
                "type": "object",
                "required": ["success", "ids", "properties", "events"],
                "properties": {
                    "success": {"const": True},
                    "ids": {"type": "object", "additionalProperties": {"type": "string"}},
                    "properties": {"type": "object"},
                    "events": {"type": "array", "maxItems": 0},
                },
            },
            "BloomreachFailure": {
                "type": "object",
                "required": ["success", "errors"],
                "properties": {
                    "success": {"const": False},
                    "errors": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "reason": {"type": "string", "description": "A short machine-readable code."},
                },
            },
        },
        "securitySchemes": {
            "BloomreachBasic": {
                "type": "http",
                "scheme": "basic",
                "description": "A private key: key_id:secret.",
            },
            "BloomreachToken": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "A public key: `Token <token>`.",
            },
            "BloomreachAccessToken": {
                "type": "apiKey",
                "in": "query",
                "name": "access_token",
                "description": "A public key, where no header can be set (never logged).",
            },
        },
    }
