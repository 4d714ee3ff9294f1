"""The service's OpenAPI 3.1 document, composed from the features' parts.

Each feature documents its own paths and components; composing refuses two features that claim
the same operation or define one component name differently, so the document cannot lie about
which feature answers. Composing also adds the answers every operation with a body may get
from the service itself (408, 413, 503: see :mod:`streams.ingest.http.body`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from streams import __version__
from streams.errors import ConfigError
from streams.ingest.http.feature import Feature

OPENAPI_VERSION = "3.1.0"
TITLE = "Profile Streams ingestion"
DESCRIPTION = (
    "HTTP ingestion into the profile-changes topic. Requests are answered only after Kafka "
    "acknowledged every accepted record; a 503 means retry the whole request (duplicates are "
    "harmless: the per-property last-writer-wins merge absorbs them)."
)
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong, for humans."},
        "reason": {"type": "string", "description": "A short machine-readable code."},
        "index": {
            "type": "integer",
            "minimum": 0,
            "description": "The failing item of an array, where one item failed.",
        },
    },
}
ERROR_REF: dict[str, Any] = {"$ref": "#/components/schemas/Error"}


class _Schemas(GenerateJsonSchema):
    """Model schemas as OpenAPI components: no per-field titles (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def model_schemas(
    requests: Iterable[type[BaseModel]], responses: Iterable[type[BaseModel]] = ()
) -> dict[str, Any]:
    """``components.schemas`` generated from the models that validate requests and build
    responses, so the document says what the service does."""
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in requests]
    modes += [(model, "serialization") for model in responses]
    _, top = models_json_schema(
        modes,
        ref_template="#/components/schemas/{model}",
        schema_generator=_Schemas,
    )
    return dict(top.get("$defs", {}))


def schema_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(
    description: str,
    schema: str,
    *,
    retry_after: bool = False,
    headers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A response object whose JSON body is the component ``schema``; ``retry_after`` documents
    the Retry-After header, ``headers`` any others."""
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema_ref(schema)}},
    }
    documented = dict(headers or {})
    if retry_after:
        documented["Retry-After"] = {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0},
        }
    if documented:
        answer["headers"] = documented
    return answer


def error_response(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    """A response object with the shared JSON error body (features may use it too)."""
    return json_answer(description, "Error", retry_after=retry_after)


BODY_RESPONSES: dict[str, Any] = {
    "408": error_response("The body did not arrive within the service's body timeout."),
    "413": error_response("The body is larger than the service (or the route) allows."),
    "503": error_response(
        "The service holds too many request bodies at once (or Kafka did not acknowledge): "
        "retry after Retry-After.",
        retry_after=True,
    ),
}


def compose_document(
    features: Iterable[Feature],
    core_paths: Mapping[str, Any],
    *,
    title: str = TITLE,
    version: str = __version__,
) -> dict[str, Any]:
    """One OpenAPI document: the service's own paths plus every feature's."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, dict[str, Any]] = {"schemas": {"Error": ERROR_SCHEMA}}
    _add_paths(paths, core_paths, "service")
    for feature in features:
        _add_paths(paths, feature.openapi_paths, feature.name)
        for section, entries in feature.openapi_components.items():
            target = components.setdefault(section, {})
            for name, definition in entries.items():
                if name in target and target[name] != definition:
                    raise ConfigError(
                        f"feature {feature.name} redefines OpenAPI component {section}.{name}"
                    )
                target[name] = copy.deepcopy(definition)
    for item in paths.values():
        for operation in item.values():
            if "requestBody" in operation:
                for status, response in BODY_RESPONSES.items():
                    operation["responses"].setdefault(status, copy.deepcopy(response))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": components,
    }


def _add_paths(paths: dict[str, dict[str, Any]], extra: Mapping[str, Any], owner: str) -> None:
    for path, item in extra.items():
        target = paths.setdefault(path, {})
        for method, operation in item.items():
            if method in target:
                raise ConfigError(f"{owner} documents {method.upper()} {path} a second time")
            target[method] = copy.deepcopy(operation)
