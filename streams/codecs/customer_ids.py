"""Bloomreach-style ``customer_ids`` objects to the product's customer key: the first configured
id kind present names the customer (tracking, the Bloomreach routes, reading them back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.errors import InvalidEventError


def customer_id_entry(ids: Any, id_kinds: Sequence[str]) -> tuple[str, str]:
    """The ``(kind, customer)`` a ``customer_ids`` object names: its first ``id_kinds`` entry
    present (not null)."""
    if type(ids) is not dict:
        raise InvalidEventError("missing_customer_id", "data.customer_ids must be an object")
    for kind in id_kinds:
        value = ids.get(kind)
        if value is None:
            continue
        if type(value) is not str or not value:
            raise InvalidEventError("bad_type", f"customer_ids.{kind} must be a non-empty string")
        return kind, value
    kinds = ", ".join(id_kinds)
    raise InvalidEventError("missing_customer_id", f"customer_ids has none of: {kinds}")


def customer_id_of(ids: Any, id_kinds: Sequence[str]) -> str:
    """The customer a ``customer_ids`` object names (see :func:`customer_id_entry`)."""
    return customer_id_entry(ids, id_kinds)[1]
