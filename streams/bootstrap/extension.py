"""The bootstrap's native helpers ``csvfast``, a submodule of the Rust kernel ``streams._native``
(native/src/csvfast/), or None where the package runs from a checkout whose kernel was not built:
then the bootstrap reads, converts and de-duplicates with Python and polars instead (same
results, slower)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams._native import CsvFast


def _load() -> CsvFast | None:
    try:
        module: CsvFast = importlib.import_module("streams._native").csvfast
    except (ImportError, AttributeError):  # not built, or built before csvfast was added
        return None
    return module


csvfast: CsvFast | None = _load()
