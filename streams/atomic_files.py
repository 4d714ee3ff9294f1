"""Files replaced whole: a crash leaves the old file or the new one, never a part of either."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_writer(path: Path, temp_name: str | None = None) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends without an error.

    It is written beside ``path`` as ``temp_name`` (default ``.<name>.<random>.tmp``), then
    flushed, fsynced and renamed over ``path``. On an error the temporary file is removed and
    ``path`` is left as it was. Making the rename itself durable (fsync of the directory) is the
    caller's choice: a sink does it once per batch of files.
    """
    temp = path.with_name(temp_name or f".{path.name}.{secrets.token_hex(8)}.tmp")
    handle = temp.open("xb")
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, path)
    except BaseException:
        handle.close()
        temp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (creating its directory), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as out:
        out.write(data)
