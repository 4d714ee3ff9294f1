"""JSON answers of the ingestion service, and its one error body for every feature:
``{"error": <what is wrong, for humans>, "reason": <machine-readable code>}`` plus ``index``
where one item of an array failed (OpenAPI: ``#/components/schemas/Error``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def error_body(reason: str, detail: str, *, index: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": detail, "reason": reason}
    if index is not None:
        body["index"] = index
    return body


def error(
    status: int,
    reason: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    *,
    index: int | None = None,
) -> web.Response:
    """The error answer every route of the service uses."""
    return json_response(error_body(reason, detail, index=index), status, headers)


class _JsonHTTPError(web.HTTPException):
    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None):
        self.status_code = status
        super().__init__(text=orjson.dumps(body).decode(), content_type=JSON, headers=headers)


def error_exception(
    status: int, reason: str, detail: str, headers: Mapping[str, str] | None = None
) -> web.HTTPException:
    """The same answer, to raise from a step deep inside a handler."""
    return _JsonHTTPError(status, error_body(reason, detail), headers)
