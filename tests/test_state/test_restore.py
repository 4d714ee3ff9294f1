"""Restoring a partition from its changelog: every record of a key ends joined, however the
records are batched and whether the store starts empty or not."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any, cast
from unittest import mock

import pytest
from confluent_kafka import Message, Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.kafka.clients import producer_config
from streams.merge import MergePolicy, join_profiles
from streams.model import Profile, PropertyState
from streams.settings import Settings
from streams.state import restore
from streams.state.codec import decode_profile, encode_profile
from streams.state.restore import restore_partition, restore_partitions
from streams.state.store import PartitionStore, StateStores
from tests.test_core.test_merge_properties import canon

TOPIC = "changelog"
KEYS = [b"c-1", b"c-2", b"c-3"]
SOURCES = ["crm", "web"]
POLICY = MergePolicy({"crm": 1})
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class FakeMessage:
    """The part of a consumed changelog record a restore reads."""

    _key: bytes
    _value: bytes
    _offset: int

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return 0

    def topic(self) -> str:
        return TOPIC


states = st.builds(
    PropertyState,
    st.one_of(st.none(), st.integers(-2, 2), st.sampled_from(["a", "b"])),
    st.integers(0, 4),
    st.sampled_from(SOURCES),
)
profiles = st.builds(
    Profile,
    st.dictionaries(st.sampled_from(["first_name", "city"]), states),
    st.none() | st.integers(0, 4),
)
records = st.lists(st.tuples(st.sampled_from(KEYS), profiles), min_size=1, max_size=12)


def joined(*items: Profile) -> Profile:
    return reduce(lambda left, right: join_profiles(left, right, POLICY), items)


def fold(store: PartitionStore, items: list[tuple[bytes, Profile]], batch: int) -> None:
    """``items`` through a restore's fold, ``batch`` records per consumed batch."""
    messages = [
        FakeMessage(key, encode_profile(profile), offset)
        for offset, (key, profile) in enumerate(items)
    ]
    folding = restore._Fold(store, POLICY, cold=store.is_empty())
    for start in range(0, len(messages), batch):
        chunk = cast(list[Message], messages[start : start + batch])
        folding.apply(chunk, TOPIC, 0, len(messages))


@RELAXED
@given(records, st.integers(1, 5), st.lists(st.tuples(st.sampled_from(KEYS), profiles)))
def test_a_restore_joins_every_record_of_a_key_however_batched(
    items: list[tuple[bytes, Profile]], batch: int, before: list[tuple[bytes, Profile]]
) -> None:
    """Cold (an empty store: only repeated keys are joined) or warm (``before`` already
    stored: every key is looked up); with the cold path's key memory exhausted early too."""
    for limit in (restore.COLD_KEYS_LIMIT, 1):
        with (
            tempfile.TemporaryDirectory() as scratch,
            mock.patch.object(restore, "COLD_KEYS_LIMIT", limit),
        ):
            store = PartitionStore(Path(scratch) / "store", 0)
            try:
                stored: dict[bytes, Profile] = {}
                for key, profile in before:
                    stored[key] = joined(stored[key], profile) if key in stored else profile
                store.write({k: encode_profile(p) for k, p in stored.items()}, None)
                fold(store, items, batch)
                expected = dict(stored)
                for key, profile in items:
                    expected[key] = joined(expected[key], profile) if key in expected else profile
                for key in KEYS:
                    raw = store.get(key)
                    want = expected.get(key)
                    assert (raw is None) == (want is None)
                    if raw is not None and want is not None:
                        assert canon(decode_profile(raw)) == canon(want)
            finally:
                store.close()


def newer_and_older() -> tuple[Profile, Profile]:
    newer = Profile(
        {
            "first_name": PropertyState("Marian", 2000, "crm"),
            "city": PropertyState("Brno", 2000, "crm"),
        }
    )
    # Written after `newer` (a late write of a former owner), yet older: it must not win.
    older = Profile(
        {
            "first_name": PropertyState("Old", 1000, "crm"),
            "vip": PropertyState(True, 1000, "web"),
        }
    )
    return newer, older


def produce_changelog(settings: Any, items: list[tuple[int, bytes, Profile]]) -> None:
    producer = Producer(producer_config(settings))
    for partition, key, profile in items:
        producer.produce(settings.changelog_topic, encode_profile(profile), key, partition)
    assert producer.flush(30) == 0


def test_a_later_but_older_changelog_record_still_ends_joined(streams_settings) -> None:
    settings = streams_settings()
    newer, older = newer_and_older()
    produce_changelog(settings, [(0, b"c-1", newer), (0, b"c-2", older), (0, b"c-1", older)])
    expected = joined(newer, older)
    assert expected.properties["first_name"].value == "Marian"
    assert set(expected.properties) == {"first_name", "city", "vip"}
    # One record per batch: c-1 repeats across batches; one batch: it repeats within one.
    for batch_size in (1, 10_000):
        stores = StateStores(settings.data_dir / f"batch-{batch_size}")
        try:
            assert restore_partition(settings, stores, 0, batch_size=batch_size) == 3
            store = stores.open(0)
            raw = store.get(b"c-1")
            assert raw is not None
            assert canon(decode_profile(raw)) == canon(expected)
            assert store.get(b"c-2") == encode_profile(older)
            assert store.changelog_offset() == 2
        finally:
            stores.close()


def test_a_warm_restore_joins_new_records_with_what_the_store_holds(streams_settings) -> None:
    settings = streams_settings()
    newer, older = newer_and_older()
    produce_changelog(settings, [(1, b"c-1", newer)])
    stores = StateStores(settings.data_dir)
    try:
        restored: list[int] = []
        restore_partitions(settings, stores, [1, 2], restored.append)
        assert sorted(restored) == [1, 2]
        produce_changelog(settings, [(1, b"c-1", older)])
        assert restore_partition(settings, stores, 1) == 1  # from the checkpoint on
        raw = stores.open(1).get(b"c-1")
        assert raw is not None
        assert canon(decode_profile(raw)) == canon(joined(newer, older))
    finally:
        stores.close()


def test_a_failing_partition_ends_the_restore_with_its_error(monkeypatch, tmp_path) -> None:
    def failing(reader: Any, settings: Any, stores: Any, partition: int, *args: Any) -> int:
        if partition == 1:
            raise restore.RestoreError("changelog partition 1 unreadable")
        return 0

    monkeypatch.setattr(restore, "_restore", failing)
    restored: list[int] = []
    # Nothing listens on port 1: the readers are created but never asked anything.
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    with pytest.raises(restore.RestoreError, match="partition 1 unreadable"):
        restore_partitions(settings, StateStores(tmp_path), [0, 1, 2, 3], restored.append)
    assert 1 not in restored
