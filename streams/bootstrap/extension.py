"""The optional C extension ``_csvfast`` (streams/bootstrap/_csvfast.c), or None where the
install had no C compiler: then the bootstrap reads, converts and de-duplicates with Python and
polars instead (same results, slower)."""

from __future__ import annotations

import importlib
from types import ModuleType


def _load() -> ModuleType | None:
    try:
        return importlib.import_module("streams.bootstrap._csvfast")
    except ImportError:
        return None


csvfast: ModuleType | None = _load()
