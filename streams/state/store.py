"""Local profile state: one RocksDB (rocksdict) per input partition, written in batches.

The partitions of one worker share one block cache and one memtable budget
(``StoreMemory``), so a worker's memory is bounded by its settings, not by the number of
partitions it owns or of profiles it holds.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from rocksdict import (
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

from streams.settings import Settings

logger = logging.getLogger(__name__)

# Customer ids are UTF-8 text, so a key starting with NUL can never collide with one.
_CHANGELOG_OFFSET_KEY = b"\x00meta:changelog-offset"
# Each partition's memtables are at most this share of the worker's memtable budget: small
# memtables are flushed (and their memory freed) early, large ones write fewer small files.
MEMTABLES_PER_BUDGET = 4
BLOOM_BITS_PER_KEY = 10  # a query or event for a new customer skips the files without it
# The same for the memtables, whose skip list a lookup otherwise searches: a backfill looks up
# customers that are new. Its filter takes this share of each memtable's budget.
MEMTABLE_BLOOM_RATIO = 0.1
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoreMemory:
    """What the RocksDB stores of one worker may hold in memory, shared by its partitions:
    the block cache (data, index and filter blocks) and the memtables; and the files each
    partition keeps open."""

    block_cache_bytes: int = 64 * MIB
    write_buffer_bytes: int = 64 * MIB
    max_open_files: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreMemory:
        return cls(
            settings.rocksdb_block_cache_bytes,
            settings.rocksdb_write_buffer_bytes,
            settings.rocksdb_max_open_files,
        )


class _SharedMemory:
    """The cache and memtable budget every partition store of one worker is opened with."""

    def __init__(self, memory: StoreMemory) -> None:
        self.memory = memory
        self.cache = Cache(memory.block_cache_bytes)
        self.write_buffers = WriteBufferManager(memory.write_buffer_bytes, False)

    def options(self) -> Options:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(self.cache)
        # Index and filter blocks count against the cache instead of growing with the data.
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.write_buffers)
        options.set_write_buffer_size(
            max(self.memory.write_buffer_bytes // MEMTABLES_PER_BUDGET, MIB)
        )
        options.set_max_write_buffer_number(2)
        options.set_memtable_whole_key_filtering(True)
        options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
        options.set_max_open_files(self.memory.max_open_files)
        return options


class PartitionStore:
    """Profiles of one partition, keyed by customer id, plus the changelog checkpoint."""

    def __init__(self, path: Path, partition: int, options: Options | None = None) -> None:
        self.path = path
        self.partition = partition
        path.parent.mkdir(parents=True, exist_ok=True)
        if options is None:
            options = _SharedMemory(StoreMemory()).options()
        self._db = Rdict(str(path), options)
        # No write-ahead log: the changelog topic is the log. A crash loses at most the writes
        # since the last memtable flush, checkpoint included (one write batch holds both), and
        # the restore on start replays the changelog from that checkpoint.
        self._write_options = WriteOptions()
        # A property at run time; rocksdict's stubs declare it a method.
        self._write_options.disable_wal = True  # type: ignore[method-assign,assignment]

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return cast(list[bytes | None], self._db.get(list(keys)))

    def is_empty(self) -> bool:
        """No profile and no checkpoint."""
        cursor = self._db.iter()
        cursor.seek_to_first()
        return not cursor.valid()

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
        self._db.write(batch, self._write_options)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items():
            if isinstance(key, bytes) and not key.startswith(b"\x00"):
                yield key, value

    def close(self) -> None:
        self._db.close()


class StateStores:
    """The open partition stores of one worker's data directory; safe to read from threads."""

    def __init__(self, data_dir: Path, memory: StoreMemory | None = None) -> None:
        self.root = data_dir / "state"
        self._shared = _SharedMemory(memory or StoreMemory())
        self._stores: dict[int, PartitionStore] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> StateStores:
        return cls(settings.data_dir, StoreMemory.from_settings(settings))

    def open(self, partition: int) -> PartitionStore:
        with self._lock:
            store = self._stores.get(partition)
            if store is None:
                path = self.root / f"partition-{partition}"
                store = PartitionStore(path, partition, self._shared.options())
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
