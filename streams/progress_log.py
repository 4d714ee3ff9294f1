"""A long-running loop's progress in the log: one line every few seconds, a summary at its end.

The loop asks :meth:`ProgressLog.due` once per batch or step (a clock read) and builds its
figures only when a line is due, so the log costs nothing per record. Each counter is said
since the previous line and in total (``events=120 events_total=5400``); the figures also ride
on the record as ``extra=`` fields, so a JSON log carries them as numbers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping


class ProgressLog:
    """Progress lines every ``interval`` seconds (0: none) and a summary line, both INFO, both
    starting with ``label`` (``worker``, ``connector=crm``). The rate is of the first
    counter given (events, records)."""

    def __init__(
        self,
        logger: logging.Logger,
        label: str,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._label = label
        self._interval = interval
        self._clock = clock
        self._started = self._last_at = clock()
        self._next = self._started + interval if interval > 0 else math.inf
        self._last: dict[str, int] = {}

    def due(self) -> bool:
        return self._clock() >= self._next

    def report(self, counters: Mapping[str, int], **gauges: int) -> None:
        """The progress line: each of ``counters`` (running totals) since the last line and in
        total, the first one's rate over that time, then ``gauges`` as they are now."""
        now = self._clock()
        fields: dict[str, float] = {}
        for name, total in counters.items():
            fields[name] = total - self._last.get(name, 0)
            fields[f"{name}_total"] = total
        if counters:
            first = next(iter(counters))
            fields[f"{first}_per_s"] = _rate(fields[first], now - self._last_at)
        fields.update(gauges)
        self._last, self._last_at = dict(counters), now
        self._next = now + self._interval
        self._log("progress", fields)

    def summary(self, counters: Mapping[str, int]) -> None:
        """The run's line: ``counters``' totals, its duration and the first counter's mean rate."""
        duration = self._clock() - self._started
        fields: dict[str, float] = dict(counters)
        fields["duration_s"] = round(duration, 1)
        if counters:
            first = next(iter(counters))
            fields[f"{first}_per_s"] = _rate(counters[first], duration)
        self._log("summary", fields)

    def _log(self, kind: str, fields: Mapping[str, float]) -> None:
        text = " ".join(f"{name}={value}" for name, value in fields.items())
        self._logger.info("%s %s %s", self._label, kind, text, extra=fields)


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0
