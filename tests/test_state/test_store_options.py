"""The options a partition store is opened with, as RocksDB itself records them (its OPTIONS
file), and the lookups they serve."""

from __future__ import annotations

from pathlib import Path

from streams.state.store import MEMTABLE_BLOOM_RATIO, StateStores


def _recorded_options(path: Path) -> dict[str, str]:
    latest = max(path.glob("OPTIONS-*"), key=lambda file: int(file.name.split("-")[1]))
    pairs = (line.strip().split("=", 1) for line in latest.read_text().splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def test_memtables_have_a_whole_key_bloom_filter(tmp_path: Path) -> None:
    stores = StateStores(tmp_path)
    store = stores.open(0)
    try:
        recorded = _recorded_options(store.path)
    finally:
        stores.close()
    assert recorded["memtable_whole_key_filtering"] == "true"
    assert float(recorded["memtable_prefix_bloom_size_ratio"]) == MEMTABLE_BLOOM_RATIO


def test_lookups_in_the_memtable_find_stored_keys_and_miss_new_ones(tmp_path: Path) -> None:
    stores = StateStores(tmp_path)
    store = stores.open(3)
    try:
        stored = {f"c-{n}".encode(): f"state-{n}".encode() for n in range(5000)}
        store.write(stored, 41)
        keys = [*stored, *(f"new-{n}".encode() for n in range(5000))]
        found = store.get_many(keys)
    finally:
        stores.close()
    assert found == [*stored.values(), *([None] * 5000)]
