"""Factories for REST sink tests: records, sink options and a CRM server per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams.connect.records import SinkRecord
from streams.connect.sinks.rest import RestSink
from streams.model import Op, PropertyState, Upsert, Value
from streams.settings import Settings
from tests.test_connect.crm_server import CrmServer

T0 = 1_700_000_000_000  # epoch ms: 2023-11-14T22:13:20Z
TOPIC = "profile-upserts"

MAPPING: list[dict[str, str]] = [
    {"from_property": "first_name", "to_field": "first_name", "type": "string"},
    {"from_property": "email", "to_field": "email", "type": "string"},
    {"from_property": "age", "to_field": "age", "type": "int"},
    {"from_property": "score", "to_field": "score", "type": "float"},
    {"from_property": "vip", "to_field": "vip", "type": "bool"},
    {"from_property": "signed_up", "to_field": "signed_up_at", "type": "datetime"},
]

MODE_OPTIONS: dict[str, dict[str, Any]] = {
    "upsert": {"upsert": {"method": "PUT", "path": "/people/{id}"}},
    "create_or_update": {
        "create_or_update": {
            "search_path": "/contacts/search",
            "create_path": "/contacts",
            "update_path": "/contacts/{contact_id}",
            "contact_id_key": "contact_id",
        }
    },
    "bulk": {"bulk": {"path": "/imports", "poll_interval_s": 0.02, "max_wait_s": 5}},
}

_offsets = itertools.count()


def upsert_record(
    customer_id: str,
    properties: Mapping[str, tuple[Value, int]],
    *,
    source: str = "crm",
    offset: int | None = None,
) -> SinkRecord:
    """One record of ``profile-upserts``: ``{name: (value, last_update)}``."""
    states = {name: PropertyState(v, ts, source) for name, (v, ts) in properties.items()}
    upsert = Upsert(customer_id, Op.UPSERT, states, None, source, None, T0)
    return _record(upsert, offset)


def delete_record(customer_id: str, at: int, *, offset: int | None = None) -> SinkRecord:
    return _record(Upsert(customer_id, Op.DELETE, {}, at, "crm", None, T0), offset)


def as_record(upsert: Upsert) -> SinkRecord:
    return _record(upsert, None)


def _record(upsert: Upsert, offset: int | None) -> SinkRecord:
    position = next(_offsets) if offset is None else offset
    key = upsert.customer_id.encode()
    return SinkRecord(TOPIC, 0, position, key, b"original-bytes", upsert)


def sink_options(server: CrmServer, mode: str = "upsert", **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "base_url": f"{server.url}/api",
        "timeout_s": 2.0,
        "mapping": MAPPING,
        "mode": mode,
        **MODE_OPTIONS[mode],
    }
    if server.auth == "api_key":
        options["auth"] = {"type": "api_key", "header": server.api_key_header, "key": server.secret}
    elif server.auth == "basic":
        options["auth"] = {"type": "basic", "username": server.username, "password": server.secret}
    elif server.auth == "bearer":
        options["auth"] = {"type": "bearer", "token": server.secret}
    elif server.auth == "oauth2":
        options["auth"] = {
            "type": "oauth2",
            "token_url": f"{server.url}/oauth/token",
            "client_id": server.username,
            "client_secret": server.secret,
        }
    options.update(overrides)
    return options


class SinkFactory:
    """``make(server, mode, **options)``: a RestSink with its own state dir; closed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sinks: list[RestSink] = []

    def __call__(
        self,
        server: CrmServer,
        mode: str = "upsert",
        *,
        name: str = "crm",
        settings: Settings | None = None,
        **overrides: Any,
    ) -> RestSink:
        overrides.setdefault("state_dir", str(self.root / f"state-{name}"))
        sink = RestSink(
            sink_options(server, mode, **overrides),
            name=name,
            settings=settings or Settings(data_dir=self.root),
        )
        sink.setup()
        self.sinks.append(sink)
        return sink

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


@contextmanager
def running_crm(**options: Any) -> Iterator[CrmServer]:
    server = CrmServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


def visible(contact: Mapping[str, Any] | None, id_field: str = "id") -> dict[str, Any]:
    """A contact's fields without its id and unset (null) fields."""
    if contact is None:
        return {}
    return {k: v for k, v in contact.items() if v is not None and k != id_field}
