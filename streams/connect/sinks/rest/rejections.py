"""What a destination says it refused: the errors of a 400/422 body or of a bulk result."""

from __future__ import annotations

from typing import Any, NamedTuple

from streams.httpclient.failures import MAX_DETAIL
from streams.logs import mask_emails


class ErrorItem(NamedTuple):
    """One validation error from a 400/422 body or a bulk result."""

    position: int | None
    reason: str
    detail: str


def error_items(body: Any, status: int | None = None) -> list[ErrorItem]:
    """``{"errors": [{"index", "code", "field", "message"}]}`` (or ``{"error": ...}``)."""
    raw = body.get("errors", body.get("error")) if isinstance(body, dict) else body
    if isinstance(raw, dict | str):
        raw = [raw]
    items: list[ErrorItem] = []
    for entry in raw if isinstance(raw, list) else []:
        items.append(error_item(entry, status))
    return items or [ErrorItem(None, f"http_{status}" if status else "rejected", "")]


def error_item(entry: Any, status: int | None = None) -> ErrorItem:
    if not isinstance(entry, dict):
        return ErrorItem(None, str(entry)[:100] or "rejected", "")
    index = entry.get("index")
    message = str(entry.get("message") or "")
    reason = str(entry.get("code") or message or (f"http_{status}" if status else "rejected"))
    where = entry.get("field")
    detail = f"{where}: {message}" if where else message
    return ErrorItem(
        index if isinstance(index, int) else None,
        mask_emails(reason[:100]),
        mask_emails(detail[:MAX_DETAIL]),
    )
