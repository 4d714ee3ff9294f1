"""``[webhooks]``: scalar options, then one ``[webhooks.<source>]`` table per origin."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from streams.errors import ConfigError
from streams.ingest.binding import SourceBinding
from streams.ingest.webhooks.fetch import FetchConfig
from streams.ingest.webhooks.mapping import PropertyRule
from streams.validation import validation_problems

SOURCE_NAME = r"^[A-Za-z0-9._-]{1,100}$"
SIGNATURE_PREFIX = "sha256="


class SourceConfig(BaseModel):
    """One origin: who may call, how its payload maps to an event, how to fetch on notify."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[SecretStr] = Field(default_factory=list)  # several: rotate without downtime
    token_header: str = Field(default="X-Webhook-Token", min_length=1)
    allow_query_token: bool = False  # ``?token=`` for origins that can only configure a URL
    signing_secret: SecretStr | None = None  # HMAC-SHA256 of the raw body
    signature_header: str = Field(default="X-Webhook-Signature", min_length=1)
    source: str | None = Field(default=None, min_length=1)  # the events' source; default: name
    id_field: str = Field(min_length=1)
    timestamp_field: str | None = None  # absent: the time the webhook was received
    event_id_field: str | None = None
    properties: list[PropertyRule] = Field(min_length=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_batch: int = Field(default=1000, ge=1)
    fetch: FetchConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.tokens and self.signing_secret is None:
            raise ValueError("set tokens or signing_secret: a webhook is never open")
        names = [rule.to_property for rule in self.properties]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"properties written twice: {twice}")
        return self

    def binding(self, name: str) -> SourceBinding:
        """What this source's credentials may write: its events, as upserts."""
        return SourceBinding(self.source or name)

    def signature_matches(self, presented: str | None, body: bytes) -> bool:
        """``sha256=<hex>`` (or bare hex) of the body under the signing secret, constant time."""
        if self.signing_secret is None or not presented:
            return False
        expected = hmac.new(
            self.signing_secret.get_secret_value().encode(), body, hashlib.sha256
        ).hexdigest()
        given = presented.strip().removeprefix(SIGNATURE_PREFIX).lower()
        return hmac.compare_digest(given.encode(), expected.encode())


class WebhookOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dlq_timeout_s: float = Field(default=15.0, gt=0)


def parse_section(section: Mapping[str, Any]) -> tuple[WebhookOptions, dict[str, SourceConfig]]:
    """Tables are sources, scalars are options; raise ConfigError naming the bad key."""
    options = {key: value for key, value in section.items() if not isinstance(value, Mapping)}
    try:
        parsed_options = WebhookOptions.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(f"[webhooks]: {validation_problems(exc)}") from exc
    sources: dict[str, SourceConfig] = {}
    for name, table in section.items():
        if not isinstance(table, Mapping):
            continue
        if not re.match(SOURCE_NAME, name):
            raise ConfigError(f"[webhooks.{name}]: a source name is letters, digits, . _ -")
        try:
            sources[name] = SourceConfig.model_validate(table)
        except ValidationError as exc:
            raise ConfigError(f"[webhooks.{name}]: {validation_problems(exc)}") from exc
    if not sources:
        raise ConfigError("[webhooks] configures no source: add a [webhooks.<source>] table")
    return parsed_options, sources
