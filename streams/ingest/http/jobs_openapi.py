"""The jobs API's part of the service's OpenAPI 3.1 document."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
_SECURITY: list[dict[str, list[str]]] = [{"JobsBearer": []}, {"JobsApiKey": []}]
REQUIRED_JOB_FIELDS = [
    "id", "type", "config", "state", "records_processed", "total_records",
    "created_at", "started_at", "finished_at", "report", "error",
]  # fmt: skip
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref(schema)}},
    }
    if headers:
        answer["headers"] = headers
    return answer


_UNAUTHORIZED = _answer("missing or invalid token", "JobsError")


def _trigger(kind: str, request_schema: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"start{kind.capitalize()}Job",
            "summary": f"Start the {kind} job of a named [jobs.{kind}.<name>] configuration",
            "tags": ["jobs"],
            "security": _SECURITY,
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(request_schema)}}},
            "responses": {
                "202": _answer(
                    "queued; poll the Location",
                    "JobAccepted",
                    {"Location": {"description": "the job", "schema": {"type": "string"}}},
                ),
                "401": _UNAUTHORIZED,
                "404": _answer("no configuration (or job to resume) of that name", "JobsError"),
                "409": _answer("the job to resume did not fail", "JobsError"),
                "422": _answer("the body does not validate", "JobsError"),
                "429": _answer(
                    "max_concurrent jobs are running",
                    "JobsError",
                    {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
                ),
            },
        }
    }


PATHS: dict[str, Any] = {
    "/jobs/bootstrap": _trigger("bootstrap", "BootstrapJobRequest"),
    "/jobs/export": _trigger("export", "ExportJobRequest"),
    "/jobs": {
        "get": {
            "operationId": "listJobs",
            "summary": "Recent jobs, newest first",
            "tags": ["jobs"],
            "security": _SECURITY,
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "default": 50},
                }
            ],
            "responses": {
                "200": _answer("the jobs", "JobList"),
                "400": _answer("bad limit", "JobsError"),
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "A job's state and progress (records_processed of total_records)",
            "tags": ["jobs"],
            "security": _SECURITY,
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": _answer("the job", "Job"),
                "401": _UNAUTHORIZED,
                "404": _answer("no such job", "JobsError"),
            },
        }
    },
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "schemas": {
        "BootstrapJobRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["config"],
            "properties": {
                "config": {"type": "string", "description": "a [jobs.bootstrap.<name>]"},
                "since": {
                    "type": "string",
                    "description": "delta run: rows modified since (e.g. 24h, or ISO-8601)",
                },
                "max_rate": {"type": "number", "exclusiveMinimum": 0, "description": "rows/s"},
                "resume": {
                    "type": "string",
                    "description": "a failed bootstrap job's id: continue after its last "
                    "confirmed row, with its snapshot time and window (no since)",
                },
            },
        },
        "ExportJobRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["config"],
            "properties": {"config": {"type": "string"}},
        },
        "JobAccepted": {
            "type": "object",
            "required": ["id", "state", "links"],
            "properties": {
                "id": {"type": "string"},
                "state": {"const": "queued"},
                "links": {"type": "object", "properties": {"self": {"type": "string"}}},
            },
        },
        "Job": {
            "type": "object",
            "required": [
                "id",
                "type",
                "config",
                "state",
                "records_processed",
                "total_records",
                "created_at",
                "started_at",
                "finished_at",
                "report",
                "error",
            ],
            "properties": {
                "id": {"type": "string"},
                "type": {"enum": ["bootstrap", "export"]},
                "config": {"type": "string"},
                "params": {"type": "object"},
                "state": {"enum": ["queued", "running", "succeeded", "failed"]},
                "records_processed": {"type": ["integer", "null"]},
                "total_records": {
                    "type": ["integer", "null"],
                    "description": "null when the source cannot tell (a SQL query)",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": _TIME,
                "finished_at": _TIME,
                "report": {
                    "type": ["object", "null"],
                    "description": "the bootstrap's JSON report or the export's summary",
                },
                "error": {"type": ["string", "null"]},
                "links": {"type": "object", "properties": {"self": {"type": "string"}}},
            },
        },
        "JobList": {
            "type": "object",
            "required": ["jobs"],
            "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
        },
        "JobsError": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        },
    },
    "securitySchemes": {
        "JobsBearer": {"type": "http", "scheme": "bearer"},
        "JobsApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    },
}
