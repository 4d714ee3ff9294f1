"""Compact bytes for a profile's state, used by the local store and the changelog topic."""

from __future__ import annotations

from typing import Any

import orjson

from streams.model import Profile, PropertyState


def encode_profile(profile: Profile) -> bytes:
    """``{"p": {name: [value, last_update, source]}, "d": watermark}``; orjson keeps 1 vs 1.0."""
    return orjson.dumps(
        {
            "p": {
                name: (state.value, state.last_update, state.source)
                for name, state in profile.properties.items()
            },
            "d": profile.deleted_at,
        }
    )


def decode_profile(data: bytes) -> Profile:
    raw: dict[str, Any] = orjson.loads(data)
    return Profile(
        {name: PropertyState(value, ts, source) for name, (value, ts, source) in raw["p"].items()},
        raw["d"],
    )
