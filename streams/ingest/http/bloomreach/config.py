"""The ``[bloomreach]`` table: keys as ``[[tracking.keys]]`` (a source, the ops it may use) plus
the Bloomreach project tokens each may write to and whether it is a public key."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.ingest.binding import check_keys
from streams.ingest.http.track_routes import TrackingKey
from streams.ingest.producer import DEFAULT_RETRY_AFTER_SECONDS

# Bloomreach's project tokens are UUIDs; anything path-safe is accepted.
ProjectToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
BLOOMREACH_MAX_COMMANDS = 50  # Bloomreach's own limit per batch


class BloomreachKey(TrackingKey):
    """A private key (HTTP Basic ``id:secret``) or, with ``public = true``, a public one
    (``Authorization: Token <secret>`` or ``?access_token=<secret>``), for ``projects`` only."""

    projects: tuple[ProjectToken, ...] = Field(min_length=1)
    public: bool = False


class BloomreachSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[BloomreachKey] = Field(min_length=1)
    id_kinds: list[str] = Field(default_factory=lambda: ["registered"], min_length=1)
    max_commands: int = Field(default=BLOOMREACH_MAX_COMMANDS, ge=1, le=100_000)
    retry_after_seconds: int = Field(default=DEFAULT_RETRY_AFTER_SECONDS, ge=1, le=3600)

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> BloomreachSection:
        check_keys([key.secret.get_secret_value() for key in self.keys], [k.id for k in self.keys])
        return self
