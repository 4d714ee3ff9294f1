"""What one credential may write: the source its events carry and the ops it may use.

A tracking key or a webhook token speaks for one source. Without this check a key given to a
web page could write as the CRM (and win its ties, or outdate its next update) or delete the
CRM's profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.errors import InvalidEventError
from streams.logs import clip_name
from streams.model import ChangeEvent, Op

UPSERTS_ONLY = frozenset({Op.UPSERT})


@dataclass(frozen=True, slots=True)
class SourceBinding:
    source: str
    ops: frozenset[Op] = UPSERTS_ONLY

    def __post_init__(self) -> None:
        if not self.source or not self.ops:
            raise ValueError("a SourceBinding needs a source and at least one op")

    def check(self, event: ChangeEvent) -> None:
        """Raise :class:`InvalidEventError` unless this credential may write ``event``."""
        if event.source != self.source:
            raise InvalidEventError(
                "source_not_allowed",
                f"this credential writes as source {self.source!r}, "
                f"not {clip_name(event.source)!r}",
            )
        if event.op not in self.ops:
            allowed = ", ".join(sorted(self.ops))
            raise InvalidEventError(
                "op_not_allowed", f"this credential may not {event.op}: allowed ops are {allowed}"
            )


def check_keys(secrets: list[str], ids: list[str]) -> None:
    """Raise ValueError (for a pydantic validator) unless every key has a secret of its own and
    a distinct id: one secret binds one source."""
    if not all(secrets):
        raise ValueError("keys must not contain an empty secret")
    if len(set(secrets)) != len(secrets):
        raise ValueError("a secret is configured twice: each key binds one source")
    twice = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
    if twice:
        raise ValueError(f"key ids used twice: {twice}")
