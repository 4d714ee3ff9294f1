"""The jobs API's part of the service's OpenAPI 3.1 document."""

from __future__ import annotations

from typing import Any

from streams.ingest.http.job_bodies import JOB_ID, REQUESTS, RESPONSES
from streams.ingest.http.openapi import error_response, json_answer, model_schemas, schema_ref

JSON = "application/json"
_SECURITY: list[dict[str, list[str]]] = [{"JobsBearer": []}, {"JobsApiKey": []}]


_UNAUTHORIZED = error_response("missing or invalid token")


def _trigger(kind: str, request_schema: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"start{kind.capitalize()}Job",
            "summary": f"Start the {kind} job of a named [jobs.{kind}.<name>] configuration",
            "tags": ["jobs"],
            "security": _SECURITY,
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": schema_ref(request_schema)}},
            },
            "responses": {
                "202": json_answer(
                    "queued; poll the Location",
                    "JobAccepted",
                    headers={"Location": {"description": "the job", "schema": {"type": "string"}}},
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
                "200": json_answer("the jobs", "JobList"),
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
                "200": json_answer("the job", "Job"),
                "401": _UNAUTHORIZED,
                "404": error_response("no such job"),
            },
        }
    },
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "schemas": model_schemas(REQUESTS, RESPONSES),
    "securitySchemes": {
        "JobsBearer": {"type": "http", "scheme": "bearer"},
        "JobsApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    },
}
