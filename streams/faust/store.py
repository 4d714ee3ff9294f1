"""The profiles in a Faust table's RocksDB store (``rocksdb://``, rocksdict driver), read and
written by partition.

A batch spans partitions, while Faust's own table access (``table[key]``) picks the partition
of the stream's current event; so reads go to the partition's database, and writes take
Faust's restore path (``apply_changelog_batch``: the states and the changelog offset that
recovery and standbys resume from), once the changelog has them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

from streams.errors import ConfigError


class _Message(NamedTuple):
    tp: Any
    offset: int
    partition: int
    key: bytes
    value: bytes


class _Applied(NamedTuple):
    """What ``apply_changelog_batch`` reads of a changelog event."""

    message: _Message


class TableStates:
    """Customer states of a Faust table whose store is RocksDB through rocksdict."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def _store(self) -> Any:
        store = self._table.data
        if not hasattr(store, "apply_changelog_batch") or not hasattr(store, "_db_for_partition"):
            raise ConfigError(
                f"table {self._table.name} must be stored in RocksDB (store='rocksdb://'), "
                f"not {type(store).__module__}"
            )
        return store

    def check(self) -> None:
        """Raise ConfigError when the table is not stored in RocksDB through rocksdict."""
        store = self._store
        if not getattr(store, "use_rocksdict", False):
            raise ConfigError(
                f"table {self._table.name} must use the rocksdict driver "
                "(options={'driver': 'rocksdict'})"
            )

    def get_many(self, partition: int, keys: Sequence[bytes]) -> list[bytes | None]:
        db = self._store._db_for_partition(partition)
        return cast(list[bytes | None], db.get(list(keys)))

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self._store._db_for_partition(partition).get(key)
        return value

    def write(self, tp: Any, states: Mapping[bytes, bytes], offsets: Mapping[bytes, int]) -> None:
        """Write ``states`` of changelog partition ``tp`` with the offsets the changelog gave
        them; the highest becomes the partition's persisted offset."""
        batch = [
            _Applied(_Message(tp, offsets[key], tp.partition, key, state))
            for key, state in states.items()
        ]
        self._store.apply_changelog_batch(batch, to_key=None, to_value=None)
