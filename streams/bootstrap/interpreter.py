"""Interpreter settings the bootstrap loop changes while it runs, and restores.

Both are process-wide, and several jobs may run at once (``streams serve`` runs them on
threads): the first job in changes a setting, the last one out restores it.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The reader thread leaves the GIL for its C sections (reading, scanning, converting) several
# times per chunk, and each time waits for the producing thread, which holds it nearly always,
# to let it go: up to the switch interval (5 ms by default), a third of a chunk's work in all.
# 1 ms measured 5-14% more rows/s; shorter gained nothing more.
GIL_SWITCH_SECONDS = 0.001

_lock = threading.Lock()
_runs = 0
_saved_switch = 0.0
_saved_collecting = False


@contextmanager
def bootstrap_settings() -> Iterator[None]:
    """No cyclic GC (the loop makes no reference cycles; collecting them cost a quarter of its
    time) and a GIL handed over every :data:`GIL_SWITCH_SECONDS`."""
    global _runs, _saved_switch, _saved_collecting
    with _lock:
        if _runs == 0:
            _saved_switch, _saved_collecting = sys.getswitchinterval(), gc.isenabled()
            sys.setswitchinterval(GIL_SWITCH_SECONDS)
            gc.disable()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                sys.setswitchinterval(_saved_switch)
                if _saved_collecting:
                    gc.enable()
