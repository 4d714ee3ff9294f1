"""Bloomreach Engagement's read answers, a thin translation of the query API's own answer
(:class:`ProfileAnswer` of ``GET /customers/{id}``), written once for the worker and for
``streams serve``:

- ``GET /api/customers/{id}`` and ``?include_timestamps=1``: the customer properties
  synchronization's two formats, which ``/customers/{id}`` already answers (``-1`` for an
  unknown update time).
  https://documentation.bloomreach.com/engagement/docs/customer-properties-synchronization
- ``POST /data/v2/projects/{project_token}/customers/export-one``: ``{"success": true, "ids",
  "properties", "events": []}`` (events are not kept here).
  https://documentation.bloomreach.com/engagement/reference/export-a-customer-2

Failures are Bloomreach's ``{"success": false, "errors": [...]}`` with the service's ``reason``;
an unknown customer is Bloomreach's 404 "Customer does not exist"
(https://support.bloomreach.com/hc/en-us/articles/19231102135453-Most-common-API-requests-errors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streams.codecs.customer_ids import customer_id_entry
from streams.errors import InvalidEventError
from streams.web.answer import ProfileAnswer

API_CUSTOMER = "/api/customers/{customer_id}"  # as documented (OpenAPI)
# The route: any id, braces and encoded slashes included, so every answer is Bloomreach's.
API_CUSTOMER_ROUTE = "/api/customers/{customer_id:.+}"
EXPORT_ONE = "/data/v2/projects/{project_token}/customers/export-one"
NOT_FOUND = "Customer does not exist"
_PASSED_HEADERS = ("Retry-After", "WWW-Authenticate", "X-Served-By")


class ReadRequestError(InvalidEventError):
    """An export-one body that names no customer: a 400."""


def failure(reason: str, detail: str) -> dict[str, Any]:
    """Bloomreach's failure body, with the service's machine-readable ``reason``."""
    return {"success": False, "errors": [detail], "reason": reason}


def failure_answer(
    status: int, reason: str, detail: str, headers: Mapping[str, str] | None = None
) -> ProfileAnswer:
    return ProfileAnswer(status, orjson.dumps(failure(reason, detail)), dict(headers or {}))


def export_one_customer(body: bytes, id_kinds: Sequence[str]) -> tuple[str, str]:
    """The ``(id kind, customer)`` of an export-one body ``{"customer_ids": {...}}``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReadRequestError("bad_json", f"invalid JSON: {exc.msg} at char {exc.pos}") from exc
    if type(doc) is not dict or "customer_ids" not in doc:
        raise ReadRequestError("bad_shape", 'the body must be {"customer_ids": {...}}')
    try:
        return customer_id_entry(doc["customer_ids"], id_kinds)
    except InvalidEventError as exc:
        raise ReadRequestError(exc.reason, exc.detail or exc.reason) from exc


def customer_document(answer: ProfileAnswer) -> ProfileAnswer:
    """``GET /api/customers/{id}``: the properties document as the query API gives it."""
    return answer if answer.status == 200 else _failed(answer)


def export_one_document(answer: ProfileAnswer, kind: str, customer_id: str) -> ProfileAnswer:
    """export-one from the query API's plain answer: the id it was asked by, the properties."""
    if answer.status != 200:
        return _failed(answer)
    document = {
        "success": True,
        "ids": {kind: customer_id},
        "properties": orjson.loads(answer.body)["properties"],
        "events": [],
    }
    return ProfileAnswer(200, orjson.dumps(document), _passed(answer))


def _failed(answer: ProfileAnswer) -> ProfileAnswer:
    """The query API's ``{"error", "reason"}`` (any status) in Bloomreach's failure shape."""
    try:
        body = orjson.loads(answer.body)
        reason, detail = str(body["reason"]), str(body["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        reason, detail = "http_error", f"the worker answered {answer.status}"
    if answer.status == 404:
        detail = NOT_FOUND
    return failure_answer(answer.status, reason, detail, _passed(answer))


def _passed(answer: ProfileAnswer) -> dict[str, str]:
    return {name: answer.headers[name] for name in _PASSED_HEADERS if name in answer.headers}
