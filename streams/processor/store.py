"""Local profile state: one RocksDB (rocksdict) per input partition, written in batches."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

from rocksdict import Options, Rdict, WriteBatch

logger = logging.getLogger(__name__)

# Customer ids are UTF-8 text, so a key starting with NUL can never collide with one.
_CHANGELOG_OFFSET_KEY = b"\x00meta:changelog-offset"


class PartitionStore:
    """Profiles of one partition, keyed by customer id, plus the changelog checkpoint."""

    def __init__(self, path: Path, partition: int) -> None:
        self.path = path
        self.partition = partition
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self._db = Rdict(str(path), options)

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return cast(list[bytes | None], self._db.get(list(keys)))

    def changelog_offset(self) -> int | None:
        """Offset of the last changelog record this store includes, if any."""
        raw = self._db.get(_CHANGELOG_OFFSET_KEY)
        return int(raw) if raw is not None else None

    def write(self, states: Mapping[bytes, bytes], changelog_offset: int | None) -> None:
        """Write states and the checkpoint atomically."""
        batch = WriteBatch(raw_mode=True)
        for key, value in states.items():
            batch.put(key, value)
        if changelog_offset is not None:
            batch.put(_CHANGELOG_OFFSET_KEY, str(changelog_offset).encode())
        self._db.write(batch)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items():
            if isinstance(key, bytes) and not key.startswith(b"\x00"):
                yield key, value

    def close(self) -> None:
        self._db.close()


class StateStores:
    """The open partition stores of one worker's data directory; safe to read from threads."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "state"
        self._stores: dict[int, PartitionStore] = {}
        self._lock = threading.Lock()

    def open(self, partition: int) -> PartitionStore:
        with self._lock:
            store = self._stores.get(partition)
            if store is None:
                store = PartitionStore(self.root / f"partition-{partition}", partition)
                self._stores[partition] = store
            return store

    def get(self, partition: int) -> PartitionStore | None:
        return self._stores.get(partition)

    def wipe(self, partition: int) -> PartitionStore:
        """Drop a partition's local state so it is rebuilt from the changelog."""
        with self._lock:
            store = self._stores.pop(partition, None)
            if store is not None:
                store.close()
            shutil.rmtree(self.root / f"partition-{partition}", ignore_errors=True)
        logger.warning("wiped local state partition=%d", partition)
        return self.open(partition)

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
