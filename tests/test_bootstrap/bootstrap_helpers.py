"""Helpers shared by the bootstrap tests (imported, not fixtures)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.bootstrap.mapping import BootstrapMapping, parse_mapping
from streams.codecs.events import EventDecoder
from streams.model import ChangeEvent
from streams.settings import Settings
from streams.testing import read_topic

BASIC_MAPPING: dict[str, Any] = {
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "properties": [
        {"from_column": "name", "to_property": "first_name", "type": "string"},
        {"from_column": "email", "to_property": "email", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "int"},
    ],
}


def mapping_of(**changes: Any) -> BootstrapMapping:
    return parse_mapping({**BASIC_MAPPING, **changes})


def topic_events(settings: Settings) -> list[tuple[bytes | None, ChangeEvent]]:
    """Every record on the input topic, decoded exactly as the processor decodes it."""
    decoder = EventDecoder.from_settings(settings)
    return [
        (record.key, decoder.decode(record.key, record.value, -1, 2**62))
        for record in read_topic(settings, settings.input_topic)
    ]


def event_lines(events: Sequence[tuple[bytes | None, ChangeEvent]]) -> list[int]:
    """Source lines named by the events' ids (``job:line``), sorted."""
    return sorted(int((event.event_id or ":").rsplit(":", 1)[1]) for _, event in events)
