"""Give the C heap's free pages back to the system once a worker is idle.

librdkafka's fetched records and RocksDB's flushed memtables are freed after use, but glibc
keeps most of those pages in its arenas: without this, a worker's RSS stays at its busiest
level (after a restore or a burst of input) for as long as it runs. ``malloc_trim`` returns
them; where it does not exist (another libc) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

TRIM_INTERVAL_SECONDS = 10.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def release_free_memory() -> None:
    """Return free heap pages to the system (a few ms; takes the allocator's locks)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class IdleTrim:
    """Calls ``release_free_memory`` when the worker is idle after work, at most once per
    ``interval`` seconds, so a steady trickle of input does not trim all the time."""

    def __init__(self, interval: float = TRIM_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._worked = False
        self._trimmed_at = float("-inf")

    def busy(self) -> None:
        self._worked = True

    def idle(self) -> None:
        now = time.monotonic()
        if self._worked and now - self._trimmed_at >= self._interval:
            self._worked = False
            self._trimmed_at = now
            release_free_memory()
