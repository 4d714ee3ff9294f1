"""Exponential backoff with full jitter; a destination's Retry-After wins when it gives one."""

from __future__ import annotations

import math
import random
import time
from email.utils import parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_backoff_ms: int = Field(default=200, ge=1)
    max_backoff_ms: int = Field(default=30_000, ge=1)
    multiplier: float = Field(default=2.0, ge=1.0)


class Backoff:
    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._attempt = 0
        self._rng = rng or random.Random()

    @property
    def attempts(self) -> int:
        return self._attempt

    def next_delay(self, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt."""
        self._attempt += 1
        if retry_after is not None and retry_after >= 0:
            return retry_after
        ceiling = min(
            self._config.max_backoff_ms,
            self._config.initial_backoff_ms * self._config.multiplier ** (self._attempt - 1),
        )
        return self._rng.uniform(self._config.initial_backoff_ms, max(ceiling, 1)) / 1000

    def reset(self) -> None:
        self._attempt = 0


def parse_retry_after(value: str | None, default: float, now: float | None = None) -> float:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; ``default`` if absent."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return default
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else default
