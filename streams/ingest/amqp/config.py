"""The ``[amqp]`` section of the ingest TOML file (or the CLI options): one validated model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from streams.errors import ConfigError
from streams.validation import validation_problems

AMQP_URL_ENV = "AMQP_URL"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def default_url() -> SecretStr:
    return SecretStr(os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL)


class AmqpSourceConfig(BaseModel):
    """Where to consume, how much to hold at once, and how Proca messages become events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr = Field(default_factory=default_url)
    queue: str = Field(min_length=1)
    # Declare the queue (durable, dead-lettering to our exchange) when missing; else it must exist.
    declare_queue: bool = True
    dead_letter_exchange: str = ""  # default: "<queue>.dead-letter"
    dead_letter_queue: str = ""  # default: "<queue>.dead-letter"
    source: str = Field(default="proca", min_length=1)
    max_in_flight: int = Field(default=256, ge=1, le=65_535)  # the channel's prefetch count
    batch_max_messages: int = Field(default=100, ge=1)
    batch_max_wait_ms: int = Field(default=50, ge=0)
    concurrency: int = Field(default=2, ge=1, le=64)  # batches awaiting Kafka at once
    send_timeout_seconds: float = Field(default=15.0, gt=0)
    max_backoff_seconds: float = Field(default=30.0, gt=0)
    # A message whose events Kafka refused this many times (Kafka answering, not an outage) is
    # dead-lettered as kafka_refused instead of requeued forever.
    max_kafka_attempts: int = Field(default=5, ge=1)
    close_timeout_seconds: float = Field(default=10.0, ge=0)
    exit_when_idle_seconds: float | None = Field(default=None, gt=0)
    skip_testing: bool = True  # Proca marks test actions "to be discarded"
    custom_field_prefix: str | None = None  # e.g. "action_": keep action.customFields too
    contact_ref_seed: SecretStr = SecretStr("")  # Proca's fpr_seed, to compute missing refs

    @property
    def dlx_name(self) -> str:
        return self.dead_letter_exchange or f"{self.queue}.dead-letter"

    @property
    def dlq_name(self) -> str:
        return self.dead_letter_queue or f"{self.queue}.dead-letter"

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], overrides: Mapping[str, Any]
    ) -> AmqpSourceConfig:
        """The TOML ``[amqp]`` table with CLI options (those not None) on top."""
        values = {**section, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"[amqp] {validation_problems(exc)}") from exc
