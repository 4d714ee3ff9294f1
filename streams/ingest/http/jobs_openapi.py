"""The jobs API's part of the service's OpenAPI 3.1 document."""

from __future__ import annotations

from typing import Any

from streams.ingest.http.job_runner import JOB_ID
from streams.ingest.http.openapi import error_response

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


_UNAUTHORIZED = error_response("missing or invalid token")


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
                "404": error_response("no configuration (or job to resume) of that name"),
                "409": error_response("the job to resume did not fail"),
                "415": error_response("Content-Type is not application/json"),
                "422": error_response("the body does not validate"),
                "429": error_response("max_concurrent jobs are running", retry_after=True),
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
                "400": error_response("bad limit"),
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
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": JOB_ID},
                }
            ],
            "responses": {
                "200": _answer("the job", "Job"),
                "401": _UNAUTHORIZED,
                "404": error_response("no such job"),
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
                "config": {
                    "type": "string",
                    "minLength": 1,
                    "description": "a [jobs.bootstrap.<name>]",
                },
                "since": {
                    "type": "string",
                    "minLength": 1,
                    "description": "delta run: rows modified since (e.g. 24h, or ISO-8601)",
                },
                "max_rate": {"type": "number", "exclusiveMinimum": 0, "description": "rows/s"},
                "resume": {
                    "type": "string",
                    "pattern": JOB_ID,
                    "description": "a failed bootstrap job's id: continue after its last "
                    "confirmed row, with its snapshot time and window (no since)",
                },
            },
        },
        "ExportJobRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["config"],
            "properties": {"config": {"type": "string", "minLength": 1}},
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
    },
    "securitySchemes": {
        "JobsBearer": {"type": "http", "scheme": "bearer"},
        "JobsApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    },
}
