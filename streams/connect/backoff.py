"""Exponential backoff with full jitter; a destination's Retry-After wins when it gives one."""

from __future__ import annotations

import random

from streams.connect.config import RetryConfig


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
